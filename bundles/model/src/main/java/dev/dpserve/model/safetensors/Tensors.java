// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model.safetensors;

import dev.dpserve.api.tensor.DType;
import dev.dpserve.api.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/** Scalar reads and dtype conversion of float tensors (F32, BF16, F16), for the non-matmul parts of a model. */
public final class Tensors {

    static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private Tensors() {
    }

    /** Element {@code index} (row-major) widened to F32. */
    public static float get(Tensor t, long index) {
        MemorySegment d = t.data();
        return switch (t.dtype()) {
            case F32 -> d.get(F32_LE, index * 4);
            case BF16 -> Float.intBitsToFloat((d.get(I16_LE, index * 2) & 0xFFFF) << 16);
            case F16 -> Float.float16ToFloat(d.get(I16_LE, index * 2));
            default -> throw new IllegalArgumentException(t + " is not a float tensor");
        };
    }

    /** Copies row {@code row} of a 2-D tensor into {@code dst[off, off + cols)}. */
    public static void readRow(Tensor t, int row, float[] dst, int off) {
        int cols = t.dim(1);
        if (t.dtype() == DType.F32) {
            MemorySegment.copy(t.data(), F32_LE, (long) row * cols * 4, dst, off, cols);
            return;
        }
        long base = (long) row * cols;
        for (int i = 0; i < cols; i++) dst[off + i] = get(t, base + i);
    }

    /** The whole tensor as F32 (for small tensors: norms, biases). */
    public static float[] toFloats(Tensor t) {
        float[] out = new float[Math.toIntExact(t.numel())];
        for (int i = 0; i < out.length; i++) out[i] = get(t, i);
        return out;
    }

    /** A copy of {@code t} in dtype {@code to}, allocated in {@code arena}; {@code t} itself if already {@code to}. */
    public static Tensor convert(Tensor t, DType to, Arena arena) {
        if (t.dtype() == to) return t;
        long n = t.numel();
        MemorySegment out = arena.allocate(n * to.byteSize(), 64);
        for (long i = 0; i < n; i++) {
            float v = get(t, i);
            switch (to) {
                case F32 -> out.set(F32_LE, i * 4, v);
                case BF16 -> out.set(I16_LE, i * 2, toBf16(v));
                case F16 -> out.set(I16_LE, i * 2, Float.floatToFloat16(v));
                default -> throw new IllegalArgumentException("cannot convert " + t + " to " + to);
            }
        }
        return new Tensor(t.name(), to, t.shape(), out);
    }

    /** F32 to BF16 bits, round to nearest even (NaN stays NaN). */
    public static short toBf16(float v) {
        int bits = Float.floatToRawIntBits(v);
        if (Float.isNaN(v)) return (short) ((bits >>> 16) | 0x40);
        return (short) ((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16);
    }
}
