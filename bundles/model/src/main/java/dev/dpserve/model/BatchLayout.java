// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model;

import dev.dpserve.api.model.CausalLm.BatchEntry;
import dev.dpserve.api.tensor.Tensor;
import dev.dpserve.model.safetensors.Tensors;
import java.util.List;

/**
 * A validated forward batch and where its entries sit in the (T, ·) token matrices: entry e owns
 * rows {@code [first(e), first(e) + count(e))}, holding positions {@code start(e)} on.
 */
public final class BatchLayout {

    private final List<BatchEntry> entries;
    private final int[] first;    // (E,) row of the entry's first token
    private final int total;      // T
    private final int withLogits; // entries that want logits

    BatchLayout(List<BatchEntry> entries) {
        this.entries = entries;
        this.first = new int[entries.size()];
        int t = 0;
        int logits = 0;
        for (int e = 0; e < first.length; e++) {
            first[e] = t;
            t += entries.get(e).tokens().length;
            if (entries.get(e).wantLogits()) logits++;
        }
        this.total = t;
        this.withLogits = logits;
    }

    public int size() {
        return first.length;
    }

    public BatchEntry entry(int e) {
        return entries.get(e);
    }

    public int first(int e) {
        return first[e];
    }

    public int count(int e) {
        return entries.get(e).tokens().length;
    }

    /** Position of the entry's first token. */
    public int start(int e) {
        return entries.get(e).startPosition();
    }

    public int totalTokens() {
        return total;
    }

    public int withLogits() {
        return withLogits;
    }

    /** Rows to give activation buffers for {@code tokens}: a power of two, so that a slowly growing batch does not reallocate every step. */
    public static int roundUp(int tokens) {
        return tokens <= 1 ? 1 : Integer.highestOneBit(tokens - 1) << 1;
    }

    /** Writes the embedding row of every token into x (T, hidden). */
    public void embed(Tensor embedTokens, float[] x) {
        int hidden = embedTokens.dim(1);
        for (int e = 0, t = 0; e < first.length; e++) {
            for (int tok : entries.get(e).tokens()) Tensors.readRow(embedTokens, tok, x, t++ * hidden);
        }
    }
}
