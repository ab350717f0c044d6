// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.dpserve.api.tensor.DType;
import dev.dpserve.api.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.SplittableRandom;
import java.util.concurrent.ThreadPoolExecutor;
import org.junit.jupiter.api.Test;

/** The Vector API backend as DS activates it: one pool sized to the processors the process has. */
class VectorPoolTest {

    @Test
    void activationSizesThePoolToTheProcessorsAndCloseReleasesIt() {
        int cores = Runtime.getRuntime().availableProcessors();
        VectorKernelBackend b = new VectorKernelBackend();
        b.activate();
        try {
            assertEquals(cores, b.threads(), "the caller plus the pool's workers");
            if (cores == 1) {
                assertNull(b.pool());
            } else {
                ThreadPoolExecutor p = (ThreadPoolExecutor) b.pool();
                assertEquals(cores - 1, p.getMaximumPoolSize(), "the caller works too");
            }
            // a GEMM big enough to be split over the pool still matches a double-precision reference
            int n = 33;
            int k = 300;
            int m = 257;
            SplittableRandom rnd = new SplittableRandom(5);
            float[] x = new float[n * k];
            for (int i = 0; i < x.length; i++) x[i] = (float) (rnd.nextDouble() * 2 - 1);
            try (Arena arena = Arena.ofShared()) { // the pool's workers read it too
                MemorySegment seg = arena.allocate((long) m * k * 4, 64);
                float[] w = new float[m * k];
                for (int i = 0; i < w.length; i++) {
                    w[i] = (float) (rnd.nextDouble() * 2 - 1);
                    seg.setAtIndex(ValueLayout.JAVA_FLOAT.withOrder(ByteOrder.LITTLE_ENDIAN), i, w[i]);
                }
                float[] out = new float[n * m];
                b.matmul(x, 0, n, new Tensor("w", DType.F32, new long[] {m, k}, seg), out, 0);
                for (int t = 0; t < n; t++) {
                    for (int j = 0; j < m; j++) {
                        double ref = 0;
                        double mag = 0;
                        for (int c = 0; c < k; c++) {
                            ref += (double) x[t * k + c] * w[j * k + c];
                            mag += Math.abs((double) x[t * k + c] * w[j * k + c]);
                        }
                        assertEquals(ref, out[t * m + j], 1e-5 * mag + 1e-6, "out[" + t + "][" + j + "]");
                    }
                }
            }
        } finally {
            b.deactivate();
        }
        assertEquals(1, b.threads());
        assertNull(b.pool());
    }
}
