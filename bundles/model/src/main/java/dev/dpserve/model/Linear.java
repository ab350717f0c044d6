// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model;

import dev.dpserve.api.tensor.Tensor;

/** A projection {@code y = x·Wᵀ + b}, run by the kernel backend the step's {@link Kernels} chose for W's dtype. */
public record Linear(Tensor weight, float[] bias) { // weight (out, in), bias (out,) or null

    /** y (n, out) = x (n, in) · Wᵀ + b. */
    public void apply(Kernels kernels, float[] x, int n, float[] y) {
        kernels.matmul(x, 0, n, weight, y, 0);
        if (bias != null) {
            int out = bias.length;
            for (int t = 0; t < n; t++) {
                for (int j = 0; j < out; j++) y[t * out + j] += bias[j];
            }
        }
    }
}
