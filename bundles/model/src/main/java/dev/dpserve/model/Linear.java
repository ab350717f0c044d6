// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model;

import dev.dpserve.api.tensor.DType;
import dev.dpserve.api.tensor.Tensor;

/**
 * A projection {@code y = x·Wᵀ + b}, run by the kernel backend the step's {@link Kernels} chose for
 * W's dtype. An I8 weight carries one scale per output channel ({@code W ≈ q·scale[row]}); its
 * activations are quantized per token at run time (dynamic W8A8).
 */
public record Linear(Tensor weight, float[] bias, float[] weightScale) { // weight (out, in), bias (out,) or null

    public Linear {
        if ((weight.dtype() == DType.I8) != (weightScale != null)) {
            throw new IllegalArgumentException(weight + ": an I8 weight needs per-channel scales, other dtypes none");
        }
        if (weightScale != null && weightScale.length != weight.dim(0)) {
            throw new IllegalArgumentException(weight + ": " + weightScale.length + " scales for " + weight.dim(0) + " rows");
        }
    }

    /** A float projection. */
    public Linear(Tensor weight, float[] bias) {
        this(weight, bias, null);
    }

    /** y (n, out) = x (n, in) · Wᵀ + b. */
    public void apply(Kernels kernels, float[] x, int n, float[] y) {
        if (weightScale != null) {
            kernels.matmulDynamicInt8(x, n, weight, weightScale, y);
        } else {
            kernels.matmul(x, 0, n, weight, y, 0);
        }
        addBias(n, y);
    }

    /**
     * {@code ya = a(x)}, {@code yb = b(x)} and, unless c is null, {@code yc = c(x)}: projections of one
     * input. When all are int8 the input is quantized once for them.
     */
    public static void applyAll(Kernels kernels, float[] x, int n, Linear a, float[] ya, Linear b, float[] yb, Linear c, float[] yc) {
        boolean shared = a.weightScale != null && b.weightScale != null && (c == null || c.weightScale != null)
                && a.weight.dim(1) == b.weight.dim(1) && (c == null || c.weight.dim(1) == a.weight.dim(1));
        if (!shared) {
            a.apply(kernels, x, n, ya);
            b.apply(kernels, x, n, yb);
            if (c != null) c.apply(kernels, x, n, yc);
            return;
        }
        Kernels.Int8Rows xq = kernels.quantizeRows(x, n, a.weight.dim(1));
        a.applyQuantized(kernels, xq, n, ya);
        b.applyQuantized(kernels, xq, n, yb);
        if (c != null) c.applyQuantized(kernels, xq, n, yc);
    }

    private void applyQuantized(Kernels kernels, Kernels.Int8Rows xq, int n, float[] y) {
        kernels.matmulInt8(xq, n, weight, weightScale, y);
        addBias(n, y);
    }

    private void addBias(int n, float[] y) {
        if (bias != null) {
            int out = bias.length;
            for (int t = 0; t < n; t++) {
                for (int j = 0; j < out; j++) y[t * out + j] += bias[j];
            }
        }
    }
}
