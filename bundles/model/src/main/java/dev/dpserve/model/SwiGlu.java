// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model;

/** The SwiGLU MLP {@code down(silu(gate(x)) * up(x))}. */
public record SwiGlu(Linear gate,   // (inter, hidden)
                     Linear up,     // (inter, hidden)
                     Linear down) { // (hidden, inter)

    public int intermediate() {
        return gate.weight().dim(0);
    }

    /**
     * {@code out (n, hidden) = down(silu(gate(x)) * up(x))} for x (n, hidden); {@code gateBuf} and
     * {@code upBuf} hold at least (n, intermediate) and are overwritten.
     */
    public void apply(Kernels kernels, float[] x, int n, float[] gateBuf, float[] upBuf, float[] out) {
        Linear.applyAll(kernels, x, n, gate, gateBuf, up, upBuf, null, null);
        kernels.siluMul(gateBuf, 0, upBuf, 0, n * intermediate());
        down.apply(kernels, gateBuf, n, out);
    }
}
