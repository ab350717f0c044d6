// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tensor;

import dev.dpserve.api.tensor.DType;
import dev.dpserve.api.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/** Argument checks and scalar weight reads shared by the backends. */
final class MatmulArgs {

    static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private MatmulArgs() {
    }

    static boolean isFloatWeight(DType t) {
        return t == DType.F32 || t == DType.BF16 || t == DType.F16;
    }

    /** Validates a matmul call; returns K (the shared inner dimension). */
    static int check(float[] x, int xOff, int n, Tensor w, float[] out, int outOff) {
        if (w.rank() != 2) {
            throw new IllegalArgumentException("matmul weight " + w + " must be 2-D (M, K)");
        }
        if (!isFloatWeight(w.dtype())) {
            throw new IllegalArgumentException("matmul does not support weight dtype " + w.dtype() + " of " + w.name());
        }
        int m = w.dim(0);
        int k = w.dim(1);
        if (n < 0 || xOff < 0 || outOff < 0) {
            throw new IllegalArgumentException("negative n/offset: n=" + n + " xOff=" + xOff + " outOff=" + outOff);
        }
        if ((long) xOff + (long) n * k > x.length) {
            throw new IllegalArgumentException("x too short: need " + ((long) xOff + (long) n * k) + ", have " + x.length);
        }
        if ((long) outOff + (long) n * m > out.length) {
            throw new IllegalArgumentException("out too short: need " + ((long) outOff + (long) n * m) + ", have " + out.length);
        }
        return k;
    }

    /** Validates an int8 matmul call; returns K. */
    static int checkInt8(byte[] q, int qOff, int n, float[] rowScale, Tensor w, int[] accBias, float[] colScale,
                         float[] out, int outOff) {
        if (w.rank() != 2 || w.dtype() != DType.I8) {
            throw new IllegalArgumentException("int8 matmul weight " + w + " must be 2-D (M, K) I8");
        }
        int m = w.dim(0);
        int k = w.dim(1);
        if (n < 0 || qOff < 0 || outOff < 0) {
            throw new IllegalArgumentException("negative n/offset: n=" + n + " qOff=" + qOff + " outOff=" + outOff);
        }
        if ((long) qOff + (long) n * k > q.length) {
            throw new IllegalArgumentException("q too short: need " + ((long) qOff + (long) n * k) + ", have " + q.length);
        }
        if ((long) outOff + (long) n * m > out.length) {
            throw new IllegalArgumentException("out too short: need " + ((long) outOff + (long) n * m) + ", have " + out.length);
        }
        if (colScale.length < m || accBias != null && accBias.length < m || rowScale != null && rowScale.length < n) {
            throw new IllegalArgumentException("int8 matmul scales/bias shorter than (n=" + n + ", m=" + m + ")");
        }
        return k;
    }

    /** Element {@code index} of a float weight, widened to F32. */
    static float weight(DType type, MemorySegment data, long index) {
        return switch (type) {
            case F32 -> data.get(F32_LE, index * 4);
            case BF16 -> Float.intBitsToFloat((data.get(I16_LE, index * 2) & 0xFFFF) << 16);
            case F16 -> Float.float16ToFloat(data.get(I16_LE, index * 2));
            default -> throw new IllegalArgumentException("not a float weight dtype: " + type);
        };
    }
}
