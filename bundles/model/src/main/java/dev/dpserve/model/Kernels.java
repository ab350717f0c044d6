// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model;

import dev.dpserve.api.tensor.DType;
import dev.dpserve.api.tensor.KernelBackend;
import dev.dpserve.api.tensor.KernelBackend.Op;
import dev.dpserve.api.tensor.PagedAttention;
import dev.dpserve.api.tensor.Tensor;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;

/**
 * One resolved choice of kernel backend per op and dtype, immutable: a model takes one from
 * {@link KernelRegistry#await} at the start of a forward step and runs the whole step on it, so
 * backends coming and going (or a pin) apply at the next step boundary.
 */
public final class Kernels {

    /** An op on a dtype (the weight dtype for the GEMMs, F32 for the rest). */
    public record Need(Op op, DType dtype) {
        public static Need of(Op op) {
            return new Need(op, DType.F32);
        }

        @Override
        public String toString() {
            return op + "/" + dtype;
        }
    }

    private final Map<Need, KernelBackend> chosen;

    Kernels(Map<Need, KernelBackend> chosen) {
        this.chosen = Map.copyOf(chosen);
    }

    /** The backend for an op on a dtype, or null when none supports it. */
    public KernelBackend backend(Op op, DType dtype) {
        return chosen.get(new Need(op, dtype));
    }

    /** The needs no backend covers. */
    public List<Need> missing(Collection<Need> needs) {
        List<Need> out = new ArrayList<>();
        for (Need n : needs) if (!chosen.containsKey(n)) out.add(n);
        return out;
    }

    private KernelBackend get(Op op, DType dtype) {
        KernelBackend b = chosen.get(new Need(op, dtype));
        if (b == null) throw new IllegalStateException("no kernel backend supports " + op + " on " + dtype);
        return b;
    }

    /** {@link KernelBackend#matmul} by the backend chosen for w's dtype. */
    public void matmul(float[] x, int xOff, int n, Tensor w, float[] out, int outOff) {
        get(Op.MATMUL, w.dtype()).matmul(x, xOff, n, w, out, outOff);
    }

    /**
     * Dynamic W8A8: quantizes the n rows of x (n, K) per token to int8, then the int8 GEMM against
     * the I8 weight (M, K) with its per-channel scales: {@code out ≈ x·Wᵀ}.
     */
    public void matmulDynamicInt8(float[] x, int n, Tensor w, float[] weightScale, float[] out) {
        matmulInt8(quantizeRows(x, n, w.dim(1)), n, w, weightScale, out);
    }

    /**
     * x (n, k) quantized per row into this thread's scratch (valid until the next call on the
     * thread), for several int8 GEMMs over the same input.
     */
    public Int8Rows quantizeRows(float[] x, int n, int k) {
        Int8Rows s = SCRATCH.get().ensure(n, k);
        get(Op.QUANTIZE_ROWS, DType.F32).quantizeRows(x, 0, n, k, s.q, 0, s.scale, 0);
        return s;
    }

    /** The int8 GEMM of rows {@link #quantizeRows} produced against an I8 weight with per-channel scales. */
    public void matmulInt8(Int8Rows xq, int n, Tensor w, float[] weightScale, float[] out) {
        get(Op.MATMUL_INT8, DType.I8).matmulInt8(xq.q, 0, n, xq.scale, w, null, weightScale, out, 0);
    }

    private static final ThreadLocal<Int8Rows> SCRATCH = ThreadLocal.withInitial(Int8Rows::new);

    /** Int8 rows with their scales; grows to the largest (n, K) seen on its thread, which all projections reuse. */
    public static final class Int8Rows {
        private byte[] q = new byte[0];
        private float[] scale = new float[0];

        private Int8Rows ensure(int n, int k) {
            if (q.length < (long) n * k) q = new byte[Math.multiplyExact(n, k)];
            if (scale.length < n) scale = new float[n];
            return this;
        }
    }

    public void rmsNorm(float[] x, int xOff, int xStride, int rows, float[] weight, float eps,
                        float[] out, int outOff, int outStride) {
        get(Op.RMS_NORM, DType.F32).rmsNorm(x, xOff, xStride, rows, weight, eps, out, outOff, outStride);
    }

    /** RMSNorm of {@code rows} contiguous rows of {@code weight.length} floats. */
    public void rmsNorm(float[] x, float[] weight, float eps, float[] out, int rows) {
        rmsNorm(x, 0, weight.length, rows, weight, eps, out, 0, weight.length);
    }

    public void rope(float[] x, int off, int rows, int rowStride, int heads, int headStride, int rotaryDim,
                     float[] cos, float[] sin, boolean interleaved) {
        get(Op.ROPE, DType.F32).rope(x, off, rows, rowStride, heads, headStride, rotaryDim, cos, sin, interleaved);
    }

    public void softmax(float[] x, int off, int rows, int len, int stride) {
        get(Op.SOFTMAX, DType.F32).softmax(x, off, rows, len, stride);
    }

    public void siluMul(float[] gate, int gOff, float[] up, int uOff, int n) {
        get(Op.SILU_MUL, DType.F32).siluMul(gate, gOff, up, uOff, n);
    }

    public void attention(PagedAttention a) {
        get(Op.ATTENTION, DType.F32).attention(a);
    }

    public void topK(float[] x, int off, int len, int k, int[] idx, float[] val) {
        get(Op.TOP_K, DType.F32).topK(x, off, len, k, idx, val);
    }
}
