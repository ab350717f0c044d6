// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.dpserve.api.tensor.DType;
import dev.dpserve.api.tensor.KernelBackend;
import dev.dpserve.api.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Supplier;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Every backend × weight dtype × awkward shape against a naive double-precision matmul. */
class MatmulConformanceTest {

    private static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    static Stream<Arguments> backendsAndTypes() {
        List<Arguments> all = new ArrayList<>();
        List<Supplier<KernelBackend>> backends = List.of(
                JavaKernelBackend::new,
                () -> new VectorKernelBackend(1),
                () -> new VectorKernelBackend(3));
        String[] names = {"java", "vector-1-thread", "vector-3-threads"};
        for (int b = 0; b < backends.size(); b++) {
            for (DType t : List.of(DType.F32, DType.BF16, DType.F16)) all.add(Arguments.of(names[b], backends.get(b), t));
        }
        return all.stream();
    }

    @ParameterizedTest(name = "{0} {2}")
    @MethodSource("backendsAndTypes")
    void matchesDoublePrecisionReference(String name, Supplier<KernelBackend> factory, DType type) {
        KernelBackend backend = factory.get();
        // shared: the vector backend reads the weights from its pool threads
        try (Arena arena = Arena.ofShared()) {
            assertTrue(backend.supports(KernelBackend.Op.MATMUL, type));
            SplittableRandom rnd = new SplittableRandom(42);
            for (int n : new int[] {1, 3, 17, 70}) {
                for (int k : new int[] {1, 7, 33, 257, 1043}) {
                    for (int m : new int[] {1, 5, 130}) {
                        check(backend, arena, rnd, type, n, k, m);
                    }
                }
            }
        } finally {
            if (backend instanceof AutoCloseable c) close(c);
        }
    }

    /**
     * One random (n, k) × (m, k)ᵀ matmul on {@code backend} against a naive double-precision one,
     * with guards before and after the output (also used by {@link VectorGemmTest}).
     */
    static void check(KernelBackend backend, Arena arena, SplittableRandom rnd, DType type, int n, int k, int m) {
        // odd offsets so both x and the weight segment are unaligned, as in a safetensors file
        int xOff = 3;
        int outOff = 5;
        float[] x = new float[xOff + n * k];
        for (int i = xOff; i < x.length; i++) x[i] = (float) (rnd.nextDouble() * 2 - 1);
        float[] wValues = new float[m * k];
        MemorySegment data = arena.allocate((long) m * k * type.byteSize() + 1).asSlice(1);
        for (int i = 0; i < wValues.length; i++) wValues[i] = store(type, data, i, (float) (rnd.nextDouble() * 2 - 1));
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
                    double prod = (double) x[xOff + i * k + p] * wValues[j * k + p];
                    ref += prod;
                    abs += Math.abs(prod);
                }
                double tol = 1.2e-7 * (k + 2) * abs + 1e-30;
                double got = out[outOff + i * m + j];
                if (Math.abs(got - ref) > tol) {
                    fail(backend.name() + " " + type + " n=" + n + " k=" + k + " m=" + m + " out[" + i + "][" + j + "]="
                            + got + " expected " + ref + " ± " + tol);
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
                int bits = Float.floatToRawIntBits(v);
                short h = (short) ((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16);
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
    void vectorF16DecodesSubnormalsExtremesAndSpecials() {
        short[] halves = {0x0000, (short) 0x8000, 0x0001, (short) 0x8001, 0x03FF, 0x0400, 0x3C00, (short) 0xBC00,
                0x7BFF, (short) 0xFBFF, 0x3555, 0x7C00, (short) 0xFC00, 0x7E00, 0x1234, 0x5678};
        try (Arena arena = Arena.ofConfined(); VectorKernelBackend vector = new VectorKernelBackend(1)) {
            MemorySegment data = arena.allocate(2L * halves.length * halves.length);
            // row j holds halves[j] at column j and zeros elsewhere, so out[j] = halves[j] exactly
            for (int j = 0; j < halves.length; j++) data.set(I16_LE, 2L * (j * halves.length + j), halves[j]);
            Tensor w = new Tensor("w", DType.F16, new long[] {halves.length, halves.length}, data);
            float[] x = new float[halves.length];
            for (int j = 0; j < halves.length; j++) {
                x[j] = 1f;
                float[] out = new float[halves.length];
                vector.matmul(x, 0, 1, w, out, 0);
                float expected = Float.float16ToFloat(halves[j]);
                // 0 * Inf = NaN for the other columns, so only compare the finite rows fully
                if (Float.isFinite(expected)) assertEquals(expected, out[j], 0f, "half 0x" + Integer.toHexString(halves[j] & 0xFFFF));
                x[j] = 0f;
            }
        }
    }

    @Test
    void rejectsBadArguments() {
        KernelBackend java = new JavaKernelBackend();
        try (Arena arena = Arena.ofConfined()) {
            Tensor w = new Tensor("w", DType.F32, new long[] {4, 8}, arena.allocate(4 * 8 * 4));
            assertThrows(IllegalArgumentException.class, () -> java.matmul(new float[7], 0, 1, w, new float[4], 0));
            assertThrows(IllegalArgumentException.class, () -> java.matmul(new float[8], 0, 1, w, new float[3], 0));
            Tensor ints = new Tensor("i", DType.I32, new long[] {4, 8}, arena.allocate(4 * 8 * 4));
            assertThrows(IllegalArgumentException.class, () -> java.matmul(new float[8], 0, 1, ints, new float[4], 0));
            assertTrue(!java.supports(KernelBackend.Op.MATMUL, DType.I8));
        }
    }

    @Test
    void vectorOutranksJava() {
        try (VectorKernelBackend vector = new VectorKernelBackend(1)) {
            assertTrue(vector.score() > new JavaKernelBackend().score());
        }
    }

    private static void close(AutoCloseable c) {
        try {
            c.close();
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }
}
