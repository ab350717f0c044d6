// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model;

/** The element-wise pieces of a decoder step, on F32 row-major arrays. */
public final class FloatOps {

    private FloatOps() {
    }

    /** RMSNorm of {@code rows} contiguous rows of {@code weight.length}: {@code out = weight * x / rms(x)}; out may be x. */
    public static void rmsNorm(float[] x, float[] weight, double eps, float[] out, int rows) {
        rmsNorm(x, 0, weight.length, rows, weight, eps, out, 0, weight.length);
    }

    /** RMSNorm of the first {@code weight.length} floats of {@code rows} rows laid out with the given offsets and strides. */
    public static void rmsNorm(float[] x, int xOff, int xStride, int rows, float[] weight, double eps,
                               float[] out, int outOff, int outStride) {
        int dim = weight.length;
        for (int r = 0; r < rows; r++) {
            int i0 = xOff + r * xStride;
            int o0 = outOff + r * outStride;
            double ss = 0;
            for (int i = 0; i < dim; i++) ss += (double) x[i0 + i] * x[i0 + i];
            float scale = (float) (1.0 / Math.sqrt(ss / dim + eps));
            for (int i = 0; i < dim; i++) out[o0 + i] = weight[i] * (x[i0 + i] * scale);
        }
    }

    public static void addInPlace(float[] acc, float[] delta, int n) {
        for (int i = 0; i < n; i++) acc[i] += delta[i];
    }

    /** {@code gate[i] = silu(gate[i]) * up[i]} for i below n. */
    public static void siluMul(float[] gate, float[] up, int n) {
        for (int i = 0; i < n; i++) {
            float g = gate[i];
            gate[i] = g / (1f + (float) Math.exp(-g)) * up[i];
        }
    }

    /** Softmax of {@code x[from, to)} in place (attention weights from scaled scores). */
    public static void softmax(float[] x, int from, int to) {
        float max = Float.NEGATIVE_INFINITY;
        for (int p = from; p < to; p++) max = Math.max(max, x[p]);
        float sum = 0f;
        for (int p = from; p < to; p++) {
            x[p] = (float) Math.exp(x[p] - max);
            sum += x[p];
        }
        float inv = 1f / sum;
        for (int p = from; p < to; p++) x[p] *= inv;
    }

    /**
     * RoPE cos/sin rows of the batch's tokens: row t holds {@code mscale·cos(position·invFreq[i])}
     * and the sine alike, for token t at its position.
     */
    public static void ropeAngles(BatchLayout batch, double[] invFreq, double mscale, float[] cos, float[] sin) {
        int half = invFreq.length;
        for (int e = 0, t = 0; e < batch.size(); e++) {
            int start = batch.start(e);
            for (int j = 0; j < batch.count(e); j++, t++) {
                int position = start + j;
                for (int i = 0; i < half; i++) {
                    double angle = position * invFreq[i];
                    cos[t * half + i] = (float) (Math.cos(angle) * mscale);
                    sin[t * half + i] = (float) (Math.sin(angle) * mscale);
                }
            }
        }
    }
}
