// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tensor;

import dev.dpserve.api.tensor.DType;
import dev.dpserve.api.tensor.KernelBackend;
import dev.dpserve.api.tensor.PagedAttention;
import dev.dpserve.api.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.osgi.service.component.annotations.Component;

/**
 * The pure-Java reference kernels: plain loops, single-threaded, F32 accumulation in index order
 * (sums of squares and softmax denominators in double). It is the oracle the other backends are
 * tested against (see {@link dev.dpserve.tensor.conformance.KernelConformance}), and scores lowest
 * so that any other backend supporting the op is preferred. It supports every op.
 */
@Component(service = KernelBackend.class, property = KernelBackend.NAME + "=java")
public final class JavaKernelBackend implements KernelBackend {

    /** The score of this backend: the lowest of all. */
    public static final int SCORE = 0;

    @Override
    public String name() {
        return "java";
    }

    @Override
    public int score() {
        return SCORE;
    }

    @Override
    public boolean supports(Op op, DType type) {
        return switch (op) {
            case MATMUL -> MatmulArgs.isFloatWeight(type);
            case MATMUL_INT8 -> type == DType.I8;
            default -> type == DType.F32;
        };
    }

    @Override
    public void matmul(float[] x, int xOff, int n, Tensor w, float[] out, int outOff) {
        int k = MatmulArgs.check(x, xOff, n, w, out, outOff);
        int m = w.dim(0);
        DType type = w.dtype();
        MemorySegment data = w.data();
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < m; j++) {
                float sum = 0f;
                for (int p = 0; p < k; p++) {
                    sum += x[xOff + i * k + p] * MatmulArgs.weight(type, data, (long) j * k + p);
                }
                out[outOff + i * m + j] = sum;
            }
        }
    }

    @Override
    public void matmulInt8(byte[] q, int qOff, int n, float[] rowScale, Tensor w, int[] accBias, float[] colScale,
                           float[] out, int outOff) {
        int k = MatmulArgs.checkInt8(q, qOff, n, rowScale, w, accBias, colScale, out, outOff);
        int m = w.dim(0);
        MemorySegment data = w.data();
        for (int i = 0; i < n; i++) {
            float rs = rowScale == null ? 1f : rowScale[i];
            for (int j = 0; j < m; j++) {
                int acc = 0;
                for (int p = 0; p < k; p++) {
                    acc += q[qOff + i * k + p] * data.get(ValueLayout.JAVA_BYTE, (long) j * k + p);
                }
                if (accBias != null) acc += accBias[j];
                out[outOff + i * m + j] = (float) acc * rs * colScale[j];
            }
        }
    }

    @Override
    public void quantizeRows(float[] x, int xOff, int rows, int k, byte[] q, int qOff, float[] scale, int scaleOff) {
        for (int r = 0; r < rows; r++) {
            int x0 = xOff + r * k;
            float max = 0f;
            for (int i = 0; i < k; i++) max = Math.max(max, Math.abs(x[x0 + i]));
            float s = max == 0f ? 1f : max / 127f;
            scale[scaleOff + r] = s;
            for (int i = 0; i < k; i++) {
                float v = (float) Math.rint(x[x0 + i] / s);
                q[qOff + r * k + i] = (byte) Math.clamp(v, -127f, 127f);
            }
        }
    }

    @Override
    public void rmsNorm(float[] x, int xOff, int xStride, int rows, float[] weight, float eps,
                        float[] out, int outOff, int outStride) {
        int dim = weight.length;
        for (int r = 0; r < rows; r++) {
            int i0 = xOff + r * xStride;
            int o0 = outOff + r * outStride;
            double ss = 0;
            for (int i = 0; i < dim; i++) ss += (double) x[i0 + i] * x[i0 + i];
            float inv = (float) (1.0 / Math.sqrt(ss / dim + eps));
            for (int i = 0; i < dim; i++) out[o0 + i] = weight[i] * (x[i0 + i] * inv);
        }
    }

    @Override
    public void rope(float[] x, int off, int rows, int rowStride, int heads, int headStride, int rotaryDim,
                     float[] cos, float[] sin, boolean interleaved) {
        int half = rotaryDim / 2;
        for (int r = 0; r < rows; r++) {
            for (int h = 0; h < heads; h++) {
                int base = off + r * rowStride + h * headStride;
                for (int i = 0; i < half; i++) {
                    float c = cos[r * half + i];
                    float s = sin[r * half + i];
                    int ia = interleaved ? base + 2 * i : base + i;
                    int ib = interleaved ? ia + 1 : ia + half;
                    float a = x[ia];
                    float b = x[ib];
                    x[ia] = a * c - b * s;
                    x[ib] = b * c + a * s;
                }
            }
        }
    }

    @Override
    public void softmax(float[] x, int off, int rows, int len, int stride) {
        for (int r = 0; r < rows; r++) softmaxRow(x, off + r * stride, len);
    }

    private static void softmaxRow(float[] x, int from, int len) {
        float max = Float.NEGATIVE_INFINITY;
        for (int p = from; p < from + len; p++) max = Math.max(max, x[p]);
        double sum = 0;
        for (int p = from; p < from + len; p++) {
            x[p] = (float) Math.exp(x[p] - max);
            sum += x[p];
        }
        float inv = (float) (1.0 / sum);
        for (int p = from; p < from + len; p++) x[p] *= inv;
    }

    @Override
    public void siluMul(float[] gate, int gOff, float[] up, int uOff, int n) {
        for (int i = 0; i < n; i++) {
            float g = gate[gOff + i];
            gate[gOff + i] = g / (1f + (float) Math.exp(-g)) * up[uOff + i];
        }
    }

    @Override
    public void attention(PagedAttention a) {
        int group = a.numHeads() / a.numKvHeads();
        float[] scores = new float[a.contextLength()];
        for (int t = 0; t < a.numTokens(); t++) {
            int pos = a.startPosition() + t;
            int from = a.window() > 0 ? Math.max(0, pos - a.window() + 1) : 0;
            for (int h = 0; h < a.numHeads(); h++) {
                int kvHead = h / group;
                int q0 = a.qOff() + t * a.qTokenStride() + h * a.qHeadStride();
                for (int p = from; p <= pos; p++) {
                    float[] block = a.blocks()[a.blockTable()[p / a.blockSize()]];
                    int k0 = slot(a, p) + a.kOffset() + kvHead * a.kHeadStride();
                    float dot = 0f;
                    for (int d = 0; d < a.kDim(); d++) dot += a.q()[q0 + d] * block[k0 + d];
                    scores[p] = dot * a.scale();
                }
                softmaxRow(scores, from, pos + 1 - from);
                int o0 = a.outOff() + t * a.outTokenStride() + h * a.outHeadStride();
                for (int d = 0; d < a.vDim(); d++) a.out()[o0 + d] = 0f;
                for (int p = from; p <= pos; p++) {
                    float w = scores[p];
                    float[] block = a.blocks()[a.blockTable()[p / a.blockSize()]];
                    int v0 = slot(a, p) + a.vOffset() + kvHead * a.vHeadStride();
                    for (int d = 0; d < a.vDim(); d++) a.out()[o0 + d] += w * block[v0 + d];
                }
            }
        }
    }

    /** Where position p's slot of this layer starts inside its block. */
    static int slot(PagedAttention a, int p) {
        return a.layerOffset() + (p % a.blockSize()) * a.slotStride();
    }

    @Override
    public void topK(float[] x, int off, int len, int k, int[] idx, float[] val) {
        if (k < 0 || k > len) throw new IllegalArgumentException("top " + k + " of " + len);
        boolean[] taken = new boolean[len];
        for (int j = 0; j < k; j++) {
            int best = -1;
            for (int i = 0; i < len; i++) {
                if (taken[i]) continue;
                // NaN never beats a number; the first untaken index is the fallback
                if (best < 0 || x[off + i] > x[off + best] || Float.isNaN(x[off + best]) && !Float.isNaN(x[off + i])) best = i;
            }
            taken[best] = true;
            idx[j] = best;
            val[j] = x[off + best];
        }
    }
}
