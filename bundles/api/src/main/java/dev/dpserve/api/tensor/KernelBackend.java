// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.tensor;

import org.osgi.annotation.versioning.ConsumerType;

/**
 * A set of compute kernels. Registered as a DS service; consumers pick, per op, the highest
 * {@link #score()} among backends that {@link #supports} the op (and weight dtype for the GEMMs).
 * Activations are F32 heap arrays, row-major; weights are {@link Tensor} views in their stored
 * dtype (memory-mapped: backends read them in place, never copy them per call).
 *
 * <p>Only {@link #matmul} is mandatory; the other ops have defaults that throw
 * UnsupportedOperationException, so a backend may implement a subset and say so in
 * {@link #supports}. Every op's result must match the pure-Java reference backend within the
 * tolerance of F32 accumulation in a different order (the conformance kit checks this).
 *
 * <p>Threading: a backend may use its own worker threads inside one call, but calls from one
 * caller are sequential; implementations must be safe for concurrent calls from different threads.
 */
@ConsumerType
public interface KernelBackend {

    /** Service property: the backend name (e.g. "java", "vector", "native"). */
    String NAME = "dpserve.backend.name";

    /** The ops; {@link #supports} takes the weight dtype for MATMUL/MATMUL_INT8 and F32 for the rest. */
    enum Op { MATMUL, MATMUL_INT8, QUANTIZE_ROWS, RMS_NORM, ROPE, SOFTMAX, SILU_MUL, ATTENTION, TOP_K }

    String name();

    /** Higher is preferred. The pure-Java reference scores lowest. */
    int score();

    boolean supports(Op op, DType type);

    /**
     * {@code out[i][j] = sum_k x[i][k] * w[j][k]} for i in [0, n): x is (n, K), w is (M, K) row-major
     * (F32, BF16 or F16), out is (n, M). Reads x from {@code xOff}, writes out from {@code outOff}.
     */
    void matmul(float[] x, int xOff, int n, Tensor w, float[] out, int outOff);

    /**
     * Int8 GEMM with int32 accumulation: {@code out[i][j] = (sum_k q[i][k]·w[j][k] + accBias[j])
     * · rowScale[i] · colScale[j]}. q is (n, K) int8 from {@code qOff}, w is I8 (M, K); accBias
     * (M,) may be null (no bias); rowScale (n,) may be null (1); colScale is (M,).
     */
    default void matmulInt8(byte[] q, int qOff, int n, float[] rowScale, Tensor w, int[] accBias, float[] colScale,
                            float[] out, int outOff) {
        throw unsupported(Op.MATMUL_INT8);
    }

    /**
     * Symmetric per-row int8 quantization of x (rows, k): {@code scale[r] = max|x_r| / 127} (1 for
     * an all-zero row), {@code q = clamp(round-half-even(x / scale), -127, 127)}.
     */
    default void quantizeRows(float[] x, int xOff, int rows, int k, byte[] q, int qOff, float[] scale, int scaleOff) {
        throw unsupported(Op.QUANTIZE_ROWS);
    }

    /**
     * RMSNorm of {@code rows} rows of {@code weight.length} floats: {@code out = weight · x / sqrt(mean(x²) + eps)}.
     * Row r of x starts at {@code xOff + r·xStride}, of out at {@code outOff + r·outStride}; out may alias x.
     */
    default void rmsNorm(float[] x, int xOff, int xStride, int rows, float[] weight, float eps,
                         float[] out, int outOff, int outStride) {
        throw unsupported(Op.RMS_NORM);
    }

    /**
     * Rotary embedding in place on the first {@code rotaryDim} floats of each head: row r, head h
     * starts at {@code off + r·rowStride + h·headStride}. cos/sin hold row r's angles at
     * {@code r·rotaryDim/2}. Pairs are {@code (i, i + rotaryDim/2)} (neox) or {@code (2i, 2i+1)}
     * (interleaved, GPT-J); each pair (a, b) becomes {@code (a·cos − b·sin, b·cos + a·sin)}.
     */
    default void rope(float[] x, int off, int rows, int rowStride, int heads, int headStride, int rotaryDim,
                      float[] cos, float[] sin, boolean interleaved) {
        throw unsupported(Op.ROPE);
    }

    /** Softmax in place of {@code rows} rows of {@code len} floats, row r at {@code off + r·stride}. */
    default void softmax(float[] x, int off, int rows, int len, int stride) {
        throw unsupported(Op.SOFTMAX);
    }

    /** {@code gate[gOff+i] = silu(gate[gOff+i]) · up[uOff+i]} for i below n, with {@code silu(g) = g / (1 + e^-g)}. */
    default void siluMul(float[] gate, int gOff, float[] up, int uOff, int n) {
        throw unsupported(Op.SILU_MUL);
    }

    /** Causal attention of one sequence over its paged cache; see {@link PagedAttention}. */
    default void attention(PagedAttention a) {
        throw unsupported(Op.ATTENTION);
    }

    /**
     * The k largest of {@code x[off, off+len)}, in descending order, ties to the lower index:
     * indices (relative to off) into {@code idx[0, k)}, values into {@code val[0, k)}.
     */
    default void topK(float[] x, int off, int len, int k, int[] idx, float[] val) {
        throw unsupported(Op.TOP_K);
    }

    private UnsupportedOperationException unsupported(Op op) {
        return new UnsupportedOperationException("kernel backend " + name() + " does not implement " + op);
    }
}
