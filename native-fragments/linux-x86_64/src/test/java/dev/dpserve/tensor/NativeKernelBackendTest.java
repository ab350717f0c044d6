// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.dpserve.api.tensor.DType;
import dev.dpserve.api.tensor.KernelBackend;
import dev.dpserve.api.tensor.KernelBackend.Op;
import dev.dpserve.api.tensor.PagedAttention;
import dev.dpserve.api.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The native backend against independent references written here (double-precision GEMM, exact
 * integer GEMM, plain loops for the element-wise ops), over every supported op × dtype × awkward
 * shape, on each code path the CPU can run (baseline, AVX2+FMA, AVX-VNNI, AVX-512), single- and
 * multi-threaded. Runs with {@code -Djava.library.path} at the freshly built library.
 */
class NativeKernelBackendTest {

    private static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private static int detectedLevel;

    @BeforeAll
    static void load() {
        assertTrue(NativeKernelBackend.available(), "libdpserve_kernels must load from java.library.path");
        detectedLevel = NativeKernels.level();
    }

    @AfterEach
    void restoreLevel() {
        NativeKernels.forceLevel(detectedLevel);
    }

    @AfterAll
    static void restore() {
        NativeKernels.forceLevel(detectedLevel);
    }

    /** Every dispatch level up to the one this CPU supports. */
    static List<Integer> levels() {
        List<Integer> l = new ArrayList<>();
        for (int i = 0; i <= NativeKernels.level(); i++) l.add(i);
        return l;
    }

    static Stream<Arguments> levelsTypesThreads() {
        List<Arguments> all = new ArrayList<>();
        NativeKernels.load();
        for (int level : levels()) {
            if (level == NativeKernels.LEVEL_AVX2_VNNI) continue; // float GEMM: same code as AVX2
            for (DType t : List.of(DType.F32, DType.BF16, DType.F16)) {
                for (int threads : new int[] {1, 3}) all.add(Arguments.of(level, t, threads));
            }
        }
        return all.stream();
    }

    static Stream<Arguments> levelsThreads() {
        List<Arguments> all = new ArrayList<>();
        NativeKernels.load();
        for (int level : levels()) for (int threads : new int[] {1, 3}) all.add(Arguments.of(level, threads));
        return all.stream();
    }

    @Test
    void reportsWhatItImplements() {
        try (NativeKernelBackend b = new NativeKernelBackend(1)) {
            assertEquals("native", b.name());
            assertTrue(b.score() > VectorKernelBackend.SCORE);
            for (DType t : List.of(DType.F32, DType.BF16, DType.F16)) assertTrue(b.supports(Op.MATMUL, t));
            assertFalse(b.supports(Op.MATMUL, DType.I8));
            assertTrue(b.supports(Op.MATMUL_INT8, DType.I8));
            for (Op op : List.of(Op.QUANTIZE_ROWS, Op.RMS_NORM, Op.ROPE, Op.SOFTMAX, Op.SILU_MUL, Op.TOP_K, Op.ATTENTION)) {
                assertTrue(b.supports(op, DType.F32), op.toString());
                assertFalse(b.supports(op, DType.BF16), op.toString());
            }
        }
    }

    @ParameterizedTest(name = "level {0} {1} threads {2}")
    @MethodSource("levelsTypesThreads")
    void matmulMatchesDoublePrecisionReference(int level, DType type, int threads) {
        NativeKernels.forceLevel(level);
        SplittableRandom rnd = new SplittableRandom(7 + level);
        try (Arena arena = Arena.ofShared(); NativeKernelBackend b = new NativeKernelBackend(threads)) {
            for (int n : new int[] {1, 2, 3, 4, 5, 7, 8, 16, 17, 33, 50, 64, 70}) {
                for (int k : new int[] {1, 7, 9, 33, 520, 1030}) {
                    for (int m : new int[] {1, 5, 130}) {
                        checkMatmul(b, rnd, type, n, k, m, nativeSegment(arena, (long) m * k * type.byteSize()));
                    }
                }
            }
            // decode rows with a 16-float step after the 32-float ones, and a K tail
            checkMatmul(b, rnd, type, 1, 51, 9, nativeSegment(arena, 9L * 51 * type.byteSize()));
            checkMatmul(b, rnd, type, 2, 51, 9, nativeSegment(arena, 9L * 51 * type.byteSize()));
            // more weight rows than the packed kernel takes per pass (one thread: one block of all rows)
            checkMatmul(b, rnd, type, 10, 20, 4100, nativeSegment(arena, 4100L * 20 * type.byteSize()));
            // large enough to be split over the pool, rows not a multiple of 4
            checkMatmul(b, rnd, type, 9, 300, 301, nativeSegment(arena, 301L * 300 * type.byteSize()));
            checkMatmul(b, rnd, type, 130, 64, 70, nativeSegment(arena, 70L * 64 * type.byteSize()));
        }
    }

    @Test
    void matmulReadsHeapWeights() {
        SplittableRandom rnd = new SplittableRandom(3);
        try (NativeKernelBackend b = new NativeKernelBackend(2)) {
            for (DType type : List.of(DType.F32, DType.BF16, DType.F16)) {
                int m = 37;
                int k = 45;
                byte[] heap = new byte[m * k * type.byteSize() + 3];
                checkMatmul(b, rnd, type, 4, k, m, MemorySegment.ofArray(heap).asSlice(3));
            }
        }
    }

    @Test
    void mappedWeightsAreReadInPlace(@TempDir Path dir) throws IOException {
        SplittableRandom rnd = new SplittableRandom(11);
        int m = 70;
        int k = 300;
        Path file = dir.resolve("weights.bin");
        Files.write(file, new byte[m * k * 4 + 4]);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE);
                Arena arena = Arena.ofShared();
                NativeKernelBackend b = new NativeKernelBackend(2)) {
            // an odd file offset, as a tensor inside a safetensors file can have
            MemorySegment mapped = ch.map(FileChannel.MapMode.READ_WRITE, 0, m * k * 4 + 4, arena).asSlice(4);
            assertTrue(mapped.isMapped());
            try (NativeKernelBackend.Weights w = NativeKernelBackend.Weights.of(mapped)) {
                assertEquals(mapped.address(), w.address, "the kernels get the mapping's own address, no copy");
            }
            MemorySegment heap = MemorySegment.ofArray(new byte[64]);
            try (NativeKernelBackend.Weights w = NativeKernelBackend.Weights.of(heap)) {
                assertTrue(w.address != 0, "a heap segment is copied to native memory for the call");
            }
            for (int n : new int[] {1, 5, 64}) checkMatmul(b, rnd, DType.F32, n, k, m, mapped);
        }
    }

    @Test
    void attentionRefusesIndicesOutsideItsArrays() {
        try (NativeKernelBackend b = new NativeKernelBackend(2)) {
            int dim = 8;
            int slot = 2 * dim;
            float[][] blocks = {new float[4 * slot], new float[4 * slot]};
            float[] q = new float[dim];
            float[] out = new float[dim];
            // position 5 lives in table entry 1, which names block 7 of 2
            assertThrows(IllegalArgumentException.class, () -> b.attention(new PagedAttention(q, 0, dim, dim, 1, 1, 1,
                    dim, dim, blocks, new int[] {0, 7}, 4, 0, slot, 0, dim, dim, dim, 5, 0, 1f, out, 0, dim, dim)));
            // a cache block too short for its last slot
            float[][] shortBlocks = {new float[4 * slot], new float[slot + dim]};
            assertThrows(IllegalArgumentException.class, () -> b.attention(new PagedAttention(q, 0, dim, dim, 1, 1, 1,
                    dim, dim, shortBlocks, new int[] {0, 1}, 4, 0, slot, 0, dim, dim, dim, 5, 0, 1f, out, 0, dim, dim)));
            // an output too short
            assertThrows(IllegalArgumentException.class, () -> b.attention(new PagedAttention(q, 0, dim, dim, 1, 1, 1,
                    dim, dim, blocks, new int[] {0, 1}, 4, 0, slot, 0, dim, dim, dim, 5, 0, 1f, new float[dim - 1], 0,
                    dim, dim)));
            // the same call with valid arrays runs: one position per block slot, the output a convex mix of V rows
            b.attention(new PagedAttention(q, 0, dim, dim, 1, 1, 1, dim, dim, blocks, new int[] {0, 1}, 4, 0, slot, 0,
                    dim, dim, dim, 5, 0, 1f, out, 0, dim, dim));
            for (float o : out) assertEquals(0f, o, "V is all zeros");
        }
    }

    /** An unaligned native segment of {@code bytes} bytes, as a safetensors tensor can be. */
    private static MemorySegment nativeSegment(Arena arena, long bytes) {
        return arena.allocate(bytes + 1).asSlice(1, bytes);
    }

    private static void checkMatmul(KernelBackend b, SplittableRandom rnd, DType type, int n, int k, int m,
                                    MemorySegment data) {
        int xOff = 3;
        int outOff = 5;
        float[] x = new float[xOff + n * k];
        for (int i = xOff; i < x.length; i++) x[i] = (float) (rnd.nextDouble() * 2 - 1);
        float[] wv = new float[m * k];
        for (int i = 0; i < wv.length; i++) wv[i] = store(type, data, i, (float) (rnd.nextDouble() * 2 - 1));
        Tensor w = new Tensor("w", type, new long[] {m, k}, data);
        float[] out = new float[outOff + n * m + 1];
        out[out.length - 1] = 4242f;
        out[outOff - 1] = 4141f;
        b.matmul(x, xOff, n, w, out, outOff);
        assertEquals(4242f, out[out.length - 1], "wrote past the output");
        assertEquals(4141f, out[outOff - 1], "wrote before the output");
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
                    fail(type + " n=" + n + " k=" + k + " m=" + m + " out[" + i + "][" + j + "]=" + got
                            + " expected " + ref + " ± " + tol);
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
                short h = (short) (Float.floatToRawIntBits(v) >>> 16); // truncation: any bf16 will do
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

    @Test
    void halfPrecisionSpecialValuesWiden() {
        // subnormal, negative zero, infinities, max finite of F16; large/small BF16
        short[] f16 = {0x0001, (short) 0x8000, 0x7C00, (short) 0xFC00, 0x7BFF, 0x03FF, 0x3C00, (short) 0xC000};
        short[] bf16 = {0x0001, (short) 0x8000, 0x7F80, (short) 0xFF80, 0x7F7F, 0x3F80, (short) 0xC000, 0x0080};
        for (int level : levels()) {
            NativeKernels.forceLevel(level);
            try (Arena arena = Arena.ofConfined(); NativeKernelBackend b = new NativeKernelBackend(1)) {
                for (DType type : List.of(DType.F16, DType.BF16)) {
                    short[] bits = type == DType.F16 ? f16 : bf16;
                    int m = bits.length;
                    int k = 9; // one full 8-wide step plus a scalar tail
                    MemorySegment data = arena.allocate(2L * m * k);
                    float[] x = new float[k];
                    x[0] = 1f;
                    x[8] = 1f;
                    for (int j = 0; j < m; j++) {
                        data.set(I16_LE, 2L * j * k, bits[j]);
                        data.set(I16_LE, 2L * (j * k + 8), bits[j]);
                    }
                    float[] out = new float[m];
                    b.matmul(x, 0, 1, new Tensor("w", type, new long[] {m, k}, data), out, 0);
                    for (int j = 0; j < m; j++) {
                        float one = type == DType.F16 ? Float.float16ToFloat(bits[j])
                                : Float.intBitsToFloat((bits[j] & 0xFFFF) << 16);
                        // == so that a sum of -0 and -0 starting from +0 may give +0
                        assertTrue(one + one == out[j], "level " + level + " " + type + " bits " + Integer.toHexString(bits[j] & 0xFFFF)
                                + ": " + out[j] + " != " + (one + one));
                    }
                }
            }
        }
    }

    @ParameterizedTest(name = "level {0} threads {1}")
    @MethodSource("levelsThreads")
    void int8GemmIsExact(int level, int threads) {
        NativeKernels.forceLevel(level);
        SplittableRandom rnd = new SplittableRandom(11 + level);
        try (Arena arena = Arena.ofShared(); NativeKernelBackend b = new NativeKernelBackend(threads)) {
            for (int n : new int[] {1, 2, 3, 4, 5, 7, 8, 67}) {
                for (int k : new int[] {1, 15, 16, 31, 32, 33, 63, 64, 65, 100, 1000}) {
                    for (int m : new int[] {1, 4, 6, 131}) {
                        checkInt8(b, arena, rnd, n, k, m, rnd.nextBoolean(), rnd.nextBoolean());
                    }
                }
            }
            checkInt8(b, arena, rnd, 70, 4096, 64, true, true);
            // packed AVX-512 path: 9 tokens (one partial lane vector), K slices with a k % 4 tail,
            // a partial row block, more than one block of 256 tokens, and more than 4096 rows
            checkInt8(b, arena, rnd, 9, 2053, 25, true, false);
            checkInt8(b, arena, rnd, 41, 4098, 13, false, true);
            checkInt8(b, arena, rnd, 300, 70, 37, true, true);
            checkInt8(b, arena, rnd, 9, 8, 4100, false, false);
        }
    }

    private static void checkInt8(KernelBackend b, Arena arena, SplittableRandom rnd, int n, int k, int m,
                                  boolean withBias, boolean withRowScale) {
        int qOff = 7;
        int outOff = 2;
        byte[] q = new byte[qOff + n * k];
        for (int i = qOff; i < q.length; i++) q[i] = (byte) rnd.nextInt(-128, 128); // -128 included
        MemorySegment data = nativeSegment(arena, (long) m * k);
        byte[] wv = new byte[m * k];
        for (int i = 0; i < wv.length; i++) {
            wv[i] = (byte) rnd.nextInt(-128, 128);
            data.set(ValueLayout.JAVA_BYTE, i, wv[i]);
        }
        if (k >= 2) {
            // extremes, so the products at the edges of the int8 range are checked
            q[qOff] = -128;
            wv[0] = -128;
            data.set(ValueLayout.JAVA_BYTE, 0, wv[0]);
        }
        int[] bias = withBias ? rnd.ints(m, -100000, 100000).toArray() : null;
        float[] rowScale = withRowScale ? new float[n] : null;
        if (rowScale != null) for (int i = 0; i < n; i++) rowScale[i] = (float) rnd.nextDouble(0.001, 0.1);
        float[] colScale = new float[m];
        for (int j = 0; j < m; j++) colScale[j] = (float) rnd.nextDouble(0.001, 0.1);
        float[] out = new float[outOff + n * m + 1];
        out[out.length - 1] = 99f;
        b.matmulInt8(q, qOff, n, rowScale, new Tensor("w", DType.I8, new long[] {m, k}, data), bias, colScale, out, outOff);
        assertEquals(99f, out[out.length - 1], "wrote past the output");
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < m; j++) {
                long acc = 0;
                for (int p = 0; p < k; p++) acc += (long) q[qOff + i * k + p] * wv[j * k + p];
                if (bias != null) acc += bias[j];
                float expected = (float) acc;
                if (rowScale != null) expected *= rowScale[i];
                expected *= colScale[j];
                float got = out[outOff + i * m + j];
                if (got != expected) {
                    fail("int8 n=" + n + " k=" + k + " m=" + m + " bias=" + withBias + " rowScale=" + withRowScale
                            + " out[" + i + "][" + j + "]=" + got + " expected " + expected);
                }
            }
        }
    }

    @Test
    void quantizeRowsRoundsHalfToEvenAndClamps() {
        try (NativeKernelBackend b = new NativeKernelBackend(1)) {
            SplittableRandom rnd = new SplittableRandom(5);
            int rows = 5;
            int k = 37;
            int xOff = 2;
            float[] x = new float[xOff + rows * k];
            for (int i = xOff; i < x.length; i++) x[i] = (float) (rnd.nextDouble() * 20 - 10);
            for (int p = 0; p < k; p++) x[xOff + k + p] = 0f; // an all-zero row: scale 1
            // row 2: max 127 so the scale is 1 and x/scale hits exact halves
            float[] halves = {127f, 2.5f, -2.5f, 3.5f, -3.5f, 0.5f, -0.5f, 126.5f};
            for (int p = 0; p < halves.length; p++) x[xOff + 2 * k + p] = halves[p];
            byte[] q = new byte[1 + rows * k + 1];
            float[] scale = new float[rows + 3];
            b.quantizeRows(x, xOff, rows, k, q, 1, scale, 3);
            for (int r = 0; r < rows; r++) {
                float max = 0f;
                for (int p = 0; p < k; p++) max = Math.max(max, Math.abs(x[xOff + r * k + p]));
                float s = max == 0f ? 1f : max / 127f;
                assertEquals(s, scale[3 + r], "scale of row " + r);
                for (int p = 0; p < k; p++) {
                    double v = Math.rint(x[xOff + r * k + p] / s);
                    byte expected = (byte) Math.max(-127, Math.min(127, v));
                    assertEquals(expected, q[1 + r * k + p], "row " + r + " col " + p);
                }
            }
            assertEquals(2, q[1 + 2 * k + 1]);
            assertEquals(-2, q[1 + 2 * k + 2]);
            assertEquals(4, q[1 + 2 * k + 3]);
            assertEquals(126, q[1 + 2 * k + 7]);
            assertEquals(0, q[0]);
            assertEquals(0, q[q.length - 1]);
        }
    }

    @Test
    void rmsNormWithStridesAndInPlace() {
        try (NativeKernelBackend b = new NativeKernelBackend(1)) {
            SplittableRandom rnd = new SplittableRandom(9);
            for (int len : new int[] {1, 7, 64, 769}) {
                int rows = 3;
                int xStride = len + 5;
                float[] weight = randoms(rnd, len);
                float[] x = randoms(rnd, 4 + rows * xStride);
                float[] out = new float[1 + rows * (len + 2)];
                b.rmsNorm(x, 4, xStride, rows, weight, 1e-5f, out, 1, len + 2);
                float[] inPlace = x.clone();
                b.rmsNorm(inPlace, 4, xStride, rows, weight, 1e-5f, inPlace, 4, xStride);
                for (int r = 0; r < rows; r++) {
                    double ss = 0;
                    for (int p = 0; p < len; p++) ss += (double) x[4 + r * xStride + p] * x[4 + r * xStride + p];
                    double inv = 1 / Math.sqrt(ss / len + 1e-5);
                    for (int p = 0; p < len; p++) {
                        double ref = weight[p] * x[4 + r * xStride + p] * inv;
                        assertClose(ref, out[1 + r * (len + 2) + p], 1e-5, "rmsNorm len " + len);
                        assertClose(ref, inPlace[4 + r * xStride + p], 1e-5, "rmsNorm in place len " + len);
                    }
                }
                assertEquals(0f, out[0]);
            }
        }
    }

    @Test
    void ropeNeoxAndInterleaved() {
        try (NativeKernelBackend b = new NativeKernelBackend(1)) {
            SplittableRandom rnd = new SplittableRandom(13);
            for (boolean interleaved : new boolean[] {false, true}) {
                int rows = 3;
                int heads = 2;
                int headDim = 10;
                int rotaryDim = 6; // partial rotary: the rest of each head is untouched
                int headStride = headDim + 1;
                int rowStride = heads * headStride + 3;
                int off = 2;
                float[] x = randoms(rnd, off + rows * rowStride);
                float[] cos = new float[rows * rotaryDim / 2];
                float[] sin = new float[rows * rotaryDim / 2];
                for (int i = 0; i < cos.length; i++) {
                    double a = rnd.nextDouble() * 6;
                    cos[i] = (float) Math.cos(a);
                    sin[i] = (float) Math.sin(a);
                }
                float[] got = x.clone();
                b.rope(got, off, rows, rowStride, heads, headStride, rotaryDim, cos, sin, interleaved);
                float[] ref = x.clone();
                int half = rotaryDim / 2;
                for (int r = 0; r < rows; r++) {
                    for (int h = 0; h < heads; h++) {
                        int base = off + r * rowStride + h * headStride;
                        for (int i = 0; i < half; i++) {
                            int ia = interleaved ? base + 2 * i : base + i;
                            int ib = interleaved ? base + 2 * i + 1 : base + i + half;
                            double c = cos[r * half + i];
                            double s = sin[r * half + i];
                            double a = x[ia];
                            double bb = x[ib];
                            ref[ia] = (float) (a * c - bb * s);
                            ref[ib] = (float) (bb * c + a * s);
                        }
                    }
                }
                for (int i = 0; i < x.length; i++) assertClose(ref[i], got[i], 1e-6, "rope interleaved=" + interleaved + " at " + i);
            }
        }
    }

    @Test
    void softmaxRows() {
        try (NativeKernelBackend b = new NativeKernelBackend(1)) {
            SplittableRandom rnd = new SplittableRandom(17);
            for (int len : new int[] {1, 5, 33, 1000}) {
                int rows = 3;
                int stride = len + 4;
                float[] x = new float[1 + rows * stride];
                for (int i = 0; i < x.length; i++) x[i] = (float) (rnd.nextDouble() * 40 - 20);
                float[] got = x.clone();
                b.softmax(got, 1, rows, len, stride);
                for (int r = 0; r < rows; r++) {
                    double max = Double.NEGATIVE_INFINITY;
                    for (int p = 0; p < len; p++) max = Math.max(max, x[1 + r * stride + p]);
                    double sum = 0;
                    for (int p = 0; p < len; p++) sum += Math.exp(x[1 + r * stride + p] - max);
                    for (int p = 0; p < len; p++) {
                        assertClose(Math.exp(x[1 + r * stride + p] - max) / sum, got[1 + r * stride + p], 1e-5, "softmax");
                    }
                    // between rows nothing changes
                    for (int p = len; p < stride && 1 + r * stride + p < x.length; p++) {
                        assertEquals(x[1 + r * stride + p], got[1 + r * stride + p]);
                    }
                }
            }
        }
    }

    @Test
    void siluMulIncludingOneArray() {
        try (NativeKernelBackend b = new NativeKernelBackend(1)) {
            SplittableRandom rnd = new SplittableRandom(19);
            int n = 77;
            float[] gate = randoms(rnd, n + 3);
            float[] up = randoms(rnd, n + 1);
            float[] got = gate.clone();
            b.siluMul(got, 3, up, 1, n);
            for (int i = 0; i < n; i++) {
                double g = gate[3 + i] * 8;
                gate[3 + i] = (float) g;
            }
            // one array: gate in the first half, up in the second
            float[] both = new float[2 * n];
            for (int i = 0; i < 2 * n; i++) both[i] = (float) (rnd.nextDouble() * 16 - 8);
            float[] bothGot = both.clone();
            b.siluMul(bothGot, 0, bothGot, n, n);
            for (int i = 0; i < n; i++) {
                double g = both[i];
                assertClose(g / (1 + Math.exp(-g)) * both[n + i], bothGot[i], 1e-5, "siluMul one array at " + i);
                assertEquals(both[n + i], bothGot[n + i]);
            }
            float[] g2 = randoms(rnd, n + 3);
            float[] g2Got = g2.clone();
            b.siluMul(g2Got, 3, up, 1, n);
            for (int i = 0; i < n; i++) {
                double g = g2[3 + i];
                assertClose(g / (1 + Math.exp(-g)) * up[1 + i], g2Got[3 + i], 1e-5, "siluMul at " + i);
            }
        }
    }

    @Test
    void topKDescendingTiesToLowerIndex() {
        try (NativeKernelBackend b = new NativeKernelBackend(1)) {
            float[] x = {9f, 1f, 5f, 7f, 5f, 7f, -2f, 9f, 0f};
            int[] idx = new int[4];
            float[] val = new float[4];
            b.topK(x, 1, 8, 4, idx, val);
            // relative to off=1: values 1,5,7,5,7,-2,9,0
            assertArrayEquals(new int[] {6, 2, 4, 1}, idx);
            assertArrayEquals(new float[] {9f, 7f, 7f, 5f}, val);
            SplittableRandom rnd = new SplittableRandom(23);
            for (int len : new int[] {1, 10, 1000}) {
                float[] y = new float[len];
                for (int i = 0; i < len; i++) y[i] = rnd.nextInt(50); // many ties
                for (int k : new int[] {1, Math.min(len, 3), len}) {
                    int[] gi = new int[k];
                    float[] gv = new float[k];
                    b.topK(y, 0, len, k, gi, gv);
                    Integer[] order = new Integer[len];
                    for (int i = 0; i < len; i++) order[i] = i;
                    java.util.Arrays.sort(order, (p, q) -> y[p] != y[q] ? Float.compare(y[q], y[p]) : Integer.compare(p, q));
                    for (int i = 0; i < k; i++) {
                        assertEquals(order[i], gi[i], "top-" + k + " of " + len + " rank " + i);
                        assertEquals(y[order[i]], gv[i]);
                    }
                }
            }
        }
    }

    @Test
    void rejectsBadArgumentsInsteadOfCrashing() {
        try (Arena arena = Arena.ofConfined(); NativeKernelBackend b = new NativeKernelBackend(1)) {
            Tensor w = new Tensor("w", DType.F32, new long[] {4, 8}, arena.allocate(4 * 8 * 4));
            assertThrows(IllegalArgumentException.class, () -> b.matmul(new float[15], 0, 2, w, new float[8], 0));
            assertThrows(IllegalArgumentException.class, () -> b.matmul(new float[16], 0, 2, w, new float[7], 0));
            Tensor w8 = new Tensor("w8", DType.I8, new long[] {4, 8}, arena.allocate(32));
            assertThrows(IllegalArgumentException.class,
                    () -> b.matmulInt8(new byte[8], 1, 1, null, w8, null, new float[4], new float[4], 0));
            assertThrows(IllegalArgumentException.class,
                    () -> b.matmulInt8(new byte[8], 0, 1, null, w8, null, new float[3], new float[4], 0));
            assertThrows(IllegalArgumentException.class, () -> b.softmax(new float[10], 0, 2, 6, 5));
            assertThrows(IllegalArgumentException.class, () -> b.rmsNorm(new float[10], 0, 5, 2, new float[6], 1e-5f,
                    new float[12], 0, 6));
            assertThrows(IllegalArgumentException.class, () -> b.rope(new float[10], 0, 1, 10, 1, 10, 12,
                    new float[6], new float[6], false));
            assertThrows(IllegalArgumentException.class, () -> b.topK(new float[10], 0, 10, 11, new int[11], new float[11]));
            assertThrows(IllegalArgumentException.class, () -> b.siluMul(new float[10], 5, new float[10], 0, 6));
            assertThrows(IllegalArgumentException.class,
                    () -> b.quantizeRows(new float[10], 0, 2, 5, new byte[9], 0, new float[2], 0));
        }
    }

    @Test
    void refusesReleasedWeightMemory() {
        Tensor w;
        try (Arena arena = Arena.ofConfined()) {
            w = new Tensor("w", DType.F32, new long[] {4, 8}, arena.allocate(4 * 8 * 4));
        }
        try (NativeKernelBackend b = new NativeKernelBackend(1)) {
            assertThrows(IllegalStateException.class, () -> b.matmul(new float[8], 0, 1, w, new float[4], 0));
        }
    }

    @Test
    void concurrentCallersShareThePool() throws Exception {
        SplittableRandom rnd = new SplittableRandom(29);
        try (Arena arena = Arena.ofShared(); NativeKernelBackend b = new NativeKernelBackend(2)) {
            int m = 200;
            int k = 300;
            MemorySegment data = arena.allocate(4L * m * k);
            float[] wv = randoms(rnd, m * k);
            for (int i = 0; i < wv.length; i++) data.set(F32_LE, 4L * i, wv[i]);
            Tensor w = new Tensor("w", DType.F32, new long[] {m, k}, data);
            int n = 9;
            float[] x = randoms(rnd, n * k);
            float[] expected = new float[n * m];
            b.matmul(x, 0, n, w, expected, 0);
            List<Thread> threads = new ArrayList<>();
            List<Throwable> failures = java.util.Collections.synchronizedList(new ArrayList<>());
            for (int t = 0; t < 4; t++) {
                threads.add(Thread.ofPlatform().start(() -> {
                    try {
                        for (int r = 0; r < 50; r++) {
                            float[] out = new float[n * m];
                            b.matmul(x, 0, n, w, out, 0);
                            assertArrayEquals(expected, out);
                        }
                    } catch (Throwable e) {
                        failures.add(e);
                    }
                }));
            }
            for (Thread t : threads) t.join();
            assertTrue(failures.isEmpty(), () -> "concurrent matmul failed: " + failures);
        }
    }

    private static float[] randoms(SplittableRandom rnd, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) (rnd.nextDouble() * 2 - 1);
        return a;
    }

    private static void assertClose(double expected, float got, double rel, String what) {
        double tol = rel * Math.max(1, Math.abs(expected));
        if (!(Math.abs(got - expected) <= tol)) fail(what + ": got " + got + " expected " + expected + " ± " + tol);
    }
}
