// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tensor;

import dev.dpserve.api.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.concurrent.ExecutorService;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * Int8 × int8 → int32 GEMM on the Vector API: the activation rows are widened to int once per
 * call, each weight row is read once per tile of activation rows straight from its segment, widened
 * {@code byte → int} and multiplied with four activation rows at a time. Integer accumulation is
 * exact, so results equal the reference bit for bit (same float scaling order).
 */
final class VectorInt8Gemm {

    private static final VectorSpecies<Integer> IS = IntVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Byte> BS = VectorSpecies.of(byte.class, VectorShape.forBitSize(IS.vectorBitSize() / 4));
    private static final int LANES = IS.length();
    private static final long PARALLEL_MIN_WORK = 1L << 17;
    private static final int MIN_ROWS_PER_TASK = 16;

    private VectorInt8Gemm() {
    }

    static void matmul(ExecutorService pool, int threads, byte[] q, int qOff, int n, float[] rowScale, Tensor w,
                       int[] accBias, float[] colScale, float[] out, int outOff) {
        int k = MatmulArgs.checkInt8(q, qOff, n, rowScale, w, accBias, colScale, out, outOff);
        int m = w.dim(0);
        if (n == 0 || m == 0) return;
        int[] qi = new int[n * k];
        for (int i = 0; i < n * k; i++) qi[i] = q[qOff + i];
        MemorySegment data = w.data();
        if (pool == null || threads == 1 || (long) n * m * k < PARALLEL_MIN_WORK) {
            rows(qi, n, k, rowScale, data, accBias, colScale, out, outOff, m, 0, m, 0, n);
            return;
        }
        int tile = VectorKernelBackend.BATCH_TILE;
        int tiles = (n + tile - 1) / tile;
        int chunks = Math.clamp((threads * 4L + tiles - 1) / tiles, 1, Math.max(1, m / MIN_ROWS_PER_TASK));
        Tasks.run(pool, threads, tiles * chunks, task -> {
            int t = task / chunks;
            int c = task % chunks;
            int j0 = (int) ((long) m * c / chunks);
            int j1 = (int) ((long) m * (c + 1) / chunks);
            rows(qi, n, k, rowScale, data, accBias, colScale, out, outOff, m, j0, j1, t * tile, Math.min(n, (t + 1) * tile));
        });
    }

    private static void rows(int[] qi, int n, int k, float[] rowScale, MemorySegment w, int[] accBias, float[] colScale,
                             float[] out, int outOff, int m, int j0, int j1, int i0, int i1) {
        int[] acc = new int[4];
        for (int j = j0; j < j1; j++) {
            long wo = (long) j * k;
            int bias = accBias == null ? 0 : accBias[j];
            float cs = colScale[j];
            for (int i = i0; i < i1; i += 4) {
                int rowsHere = Math.min(4, i1 - i);
                dot4(qi, i * k, k, rowsHere, w, wo, acc);
                for (int r = 0; r < rowsHere; r++) {
                    float rs = rowScale == null ? 1f : rowScale[i + r];
                    out[outOff + (i + r) * m + j] = (float) (acc[r] + bias) * rs * cs;
                }
            }
        }
    }

    /** acc[r] = Σ_p qi[q0 + r·k + p] · w[wo + p] for r below {@code rows} (≤ 4). */
    private static void dot4(int[] qi, int q0, int k, int rows, MemorySegment w, long wo, int[] acc) {
        IntVector a0 = IntVector.zero(IS);
        IntVector a1 = a0;
        IntVector a2 = a0;
        IntVector a3 = a0;
        int x1 = q0 + (rows > 1 ? k : 0);
        int x2 = q0 + (rows > 2 ? 2 * k : 0);
        int x3 = q0 + (rows > 3 ? 3 * k : 0);
        int p = 0;
        for (int bound = k - LANES; p <= bound; p += LANES) {
            IntVector wv = (IntVector) ByteVector.fromMemorySegment(BS, w, wo + p, ByteOrder.LITTLE_ENDIAN)
                    .convertShape(VectorOperators.B2I, IS, 0);
            a0 = a0.add(IntVector.fromArray(IS, qi, q0 + p).mul(wv));
            if (rows > 1) a1 = a1.add(IntVector.fromArray(IS, qi, x1 + p).mul(wv));
            if (rows > 2) a2 = a2.add(IntVector.fromArray(IS, qi, x2 + p).mul(wv));
            if (rows > 3) a3 = a3.add(IntVector.fromArray(IS, qi, x3 + p).mul(wv));
        }
        int s0 = a0.reduceLanes(VectorOperators.ADD);
        int s1 = a1.reduceLanes(VectorOperators.ADD);
        int s2 = a2.reduceLanes(VectorOperators.ADD);
        int s3 = a3.reduceLanes(VectorOperators.ADD);
        for (; p < k; p++) {
            int wk = w.get(ValueLayout.JAVA_BYTE, wo + p);
            s0 += qi[q0 + p] * wk;
            s1 += qi[x1 + p] * wk;
            s2 += qi[x2 + p] * wk;
            s3 += qi[x3 + p] * wk;
        }
        acc[0] = s0;
        acc[1] = s1;
        acc[2] = s2;
        acc[3] = s3;
    }
}
