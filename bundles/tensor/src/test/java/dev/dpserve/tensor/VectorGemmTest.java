// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import dev.dpserve.api.tensor.DType;
import dev.dpserve.api.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The vector backend's batched matmul paths ({@link VectorGemm}: pair kernels for small batches,
 * outer products for larger ones, dot products below the crossover) at shapes that cross their
 * blocks: several token panels and chunks with a partial last one, row blocks with a remainder
 * that is not a multiple of the micro-tile, column blocks with a short last one, odd K — against
 * a naive double-precision matmul.
 */
class VectorGemmTest {

    private static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @ParameterizedTest(name = "{0} threads={1}")
    @CsvSource({"F32, 1", "F32, 3", "BF16, 1", "BF16, 2", "F16, 1", "F16, 2"})
    void matchesDoublePrecisionReference(DType type, int threads) {
        SplittableRandom rnd = new SplittableRandom(7);
        try (Arena arena = Arena.ofShared(); VectorKernelBackend backend = new VectorKernelBackend(threads)) {
            int[][] shapes = {
                {2, 9, 20}, {4, 7, 9}, {5, 600, 17}, {8, 1100, 33}, {8, 1, 8}, {9, 513, 25}, {12, 2, 13}, {16, 3, 12},
                {16, 1, 6}, {16, 5, 7}, {17, 33, 12}, {31, 130, 5}, {40, 600, 53}, {64, 513, 49},
                {100, 1100, 97}, {257, 64, 13}, {300, 520, 60}, {513, 9, 6},
            };
            for (int[] s : shapes) check(backend, arena, rnd, type, s[0], s[1], s[2]);
        }
    }

    private static void check(VectorKernelBackend backend, Arena arena, SplittableRandom rnd, DType type, int n, int k, int m) {
        int xOff = 3;
        int outOff = 5;
        float[] x = new float[xOff + n * k + 2];
        for (int i = xOff; i < x.length; i++) x[i] = (float) (rnd.nextDouble() * 2 - 1);
        // unaligned weights, as in a safetensors file
        MemorySegment data = arena.allocate((long) m * k * type.byteSize() + 1).asSlice(1);
        float[] wv = new float[m * k];
        for (int i = 0; i < wv.length; i++) wv[i] = store(type, data, i, (float) (rnd.nextDouble() * 2 - 1));
        Tensor w = new Tensor("w", type, new long[] {m, k}, data);
        float[] out = new float[outOff + n * m + 2];
        out[0] = 12345f;
        out[out.length - 1] = 12345f;
        backend.matmul(x, xOff, n, w, out, outOff);
        assertEquals(12345f, out[0], "wrote before the output");
        assertEquals(12345f, out[out.length - 1], "wrote past the output");
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < m; j++) {
                double ref = 0;
                double abs = 0;
                for (int p = 0; p < k; p++) {
                    double prod = (double) x[xOff + i * k + p] * wv[j * k + p];
                    ref += prod;
                    abs += Math.abs(prod);
                }
                double tol = 1.2e-7 * (k + 2) * abs + 1e-30;
                double got = out[outOff + i * m + j];
                if (!(Math.abs(got - ref) <= tol)) {
                    fail(type + " n=" + n + " k=" + k + " m=" + m + " out[" + i + "][" + j + "]=" + got + " expected " + ref
                            + " ± " + tol);
                }
            }
        }
    }

    /** Stores v as {@code type} at element i and returns the value actually stored. */
    private static float store(DType type, MemorySegment data, int i, float v) {
        switch (type) {
            case F32 -> {
                data.set(F32_LE, 4L * i, v);
                return v;
            }
            case BF16 -> {
                short h = (short) (Float.floatToRawIntBits(v) >>> 16);
                data.set(I16_LE, 2L * i, h);
                return Float.intBitsToFloat((h & 0xFFFF) << 16);
            }
            case F16 -> {
                short h = Float.floatToFloat16(v);
                data.set(I16_LE, 2L * i, h);
                return Float.float16ToFloat(h);
            }
            default -> throw new IllegalArgumentException(type.toString());
        }
    }
}
