// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The element-wise and row-wise ops of {@link VectorKernelBackend} on the preferred float species:
 * RMSNorm, softmax, SiLU·mul and neox RoPE. Each follows the reference formula element by element
 * (same operation order per element); only reductions (sums of squares, maxima, softmax sums) and
 * {@code exp} differ from {@link JavaKernelBackend}, within the conformance kit's tolerances.
 */
final class VectorOps {

    private static final VectorSpecies<Float> FS = FloatVector.SPECIES_PREFERRED;
    private static final int LANES = FS.length();

    private VectorOps() {
    }

    static void rmsNorm(float[] x, int xOff, int xStride, int rows, float[] weight, float eps,
                        float[] out, int outOff, int outStride) {
        int dim = weight.length;
        for (int r = 0; r < rows; r++) {
            int i0 = xOff + r * xStride;
            int o0 = outOff + r * outStride;
            FloatVector a0 = FloatVector.zero(FS);
            FloatVector a1 = a0;
            int i = 0;
            for (int bound = dim - 2 * LANES; i <= bound; i += 2 * LANES) {
                FloatVector v0 = FloatVector.fromArray(FS, x, i0 + i);
                FloatVector v1 = FloatVector.fromArray(FS, x, i0 + i + LANES);
                a0 = v0.fma(v0, a0);
                a1 = v1.fma(v1, a1);
            }
            double ss = a0.add(a1).reduceLanes(VectorOperators.ADD);
            for (; i < dim; i++) ss += (double) x[i0 + i] * x[i0 + i];
            float inv = (float) (1.0 / Math.sqrt(ss / dim + eps));
            i = 0;
            for (int bound = FS.loopBound(dim); i < bound; i += LANES) {
                FloatVector.fromArray(FS, weight, i)
                        .mul(FloatVector.fromArray(FS, x, i0 + i).mul(inv))
                        .intoArray(out, o0 + i);
            }
            for (; i < dim; i++) out[o0 + i] = weight[i] * (x[i0 + i] * inv);
        }
    }

    static void softmax(float[] x, int off, int rows, int len, int stride) {
        for (int r = 0; r < rows; r++) softmaxRow(x, off + r * stride, len);
    }

    /** Softmax of {@code x[from, from + len)} in place. */
    static void softmaxRow(float[] x, int from, int len) {
        int bound = FS.loopBound(len);
        float max = Float.NEGATIVE_INFINITY;
        int i = 0;
        if (bound > 0) {
            FloatVector m = FloatVector.broadcast(FS, Float.NEGATIVE_INFINITY);
            for (; i < bound; i += LANES) m = m.max(FloatVector.fromArray(FS, x, from + i));
            max = m.reduceLanes(VectorOperators.MAX);
        }
        for (; i < len; i++) max = Math.max(max, x[from + i]);
        FloatVector acc = FloatVector.zero(FS);
        i = 0;
        for (; i < bound; i += LANES) {
            FloatVector e = FloatVector.fromArray(FS, x, from + i).sub(max).lanewise(VectorOperators.EXP);
            e.intoArray(x, from + i);
            acc = acc.add(e);
        }
        double sum = acc.reduceLanes(VectorOperators.ADD);
        for (; i < len; i++) {
            x[from + i] = (float) Math.exp(x[from + i] - max);
            sum += x[from + i];
        }
        float inv = (float) (1.0 / sum);
        i = 0;
        for (; i < bound; i += LANES) FloatVector.fromArray(FS, x, from + i).mul(inv).intoArray(x, from + i);
        for (; i < len; i++) x[from + i] *= inv;
    }

    static void siluMul(float[] gate, int gOff, float[] up, int uOff, int n) {
        int i = 0;
        for (int bound = FS.loopBound(n); i < bound; i += LANES) {
            FloatVector g = FloatVector.fromArray(FS, gate, gOff + i);
            g.div(g.neg().lanewise(VectorOperators.EXP).add(1f))
                    .mul(FloatVector.fromArray(FS, up, uOff + i))
                    .intoArray(gate, gOff + i);
        }
        for (; i < n; i++) {
            float g = gate[gOff + i];
            gate[gOff + i] = g / (1f + (float) Math.exp(-g)) * up[uOff + i];
        }
    }

    /** Neox RoPE (pairs i, i + rotaryDim/2); interleaved pairs run the scalar loop of the reference. */
    static void rope(float[] x, int off, int rows, int rowStride, int heads, int headStride, int rotaryDim,
                     float[] cos, float[] sin, boolean interleaved) {
        int half = rotaryDim / 2;
        int bound = FS.loopBound(half);
        for (int r = 0; r < rows; r++) {
            int cs = r * half;
            for (int h = 0; h < heads; h++) {
                int base = off + r * rowStride + h * headStride;
                int i = 0;
                if (!interleaved) {
                    for (; i < bound; i += LANES) {
                        FloatVector c = FloatVector.fromArray(FS, cos, cs + i);
                        FloatVector s = FloatVector.fromArray(FS, sin, cs + i);
                        FloatVector a = FloatVector.fromArray(FS, x, base + i);
                        FloatVector b = FloatVector.fromArray(FS, x, base + half + i);
                        a.mul(c).sub(b.mul(s)).intoArray(x, base + i);
                        b.mul(c).add(a.mul(s)).intoArray(x, base + half + i);
                    }
                }
                for (; i < half; i++) {
                    float c = cos[cs + i];
                    float s = sin[cs + i];
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
}
