// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model;

import java.util.Arrays;

/** The final RMSNorm and the vocabulary projection, run only on the last token of entries that want logits. */
public final class LmHead {

    private final float[] norm; // (hidden,)
    private final float eps;
    private final Linear head;  // (vocab, hidden)
    private final int vocab;
    private int rows;           // capacity of the buffers below
    private float[] lastHidden; // (rows, hidden) last token of each entry that wants logits
    private float[] lastNormed; // (rows, hidden)
    private float[] logits;     // (rows, vocab)

    public LmHead(float[] norm, double eps, Linear head) {
        this.norm = norm;
        this.eps = (float) eps;
        this.head = head;
        this.vocab = head.weight().dim(0);
    }

    /** Per entry of the batch, the logits after its last token, or null where it wants none; x is (T, hidden). */
    public float[][] logits(Kernels kernels, BatchLayout batch, float[] x) {
        float[][] out = new float[batch.size()][];
        int n = batch.withLogits();
        if (n == 0) return out;
        int hidden = norm.length;
        if (rows < n) {
            rows = n;
            lastHidden = new float[n * hidden];
            lastNormed = new float[n * hidden];
            logits = new float[n * vocab];
        }
        for (int e = 0, r = 0; e < batch.size(); e++) {
            int last = batch.first(e) + batch.count(e) - 1;
            if (batch.entry(e).wantLogits()) System.arraycopy(x, last * hidden, lastHidden, r++ * hidden, hidden);
        }
        kernels.rmsNorm(lastHidden, norm, eps, lastNormed, n);
        head.apply(kernels, lastNormed, n, logits);
        for (int e = 0, r = 0; e < batch.size(); e++) {
            if (batch.entry(e).wantLogits()) out[e] = Arrays.copyOfRange(logits, r * vocab, ++r * vocab);
        }
        return out;
    }
}
