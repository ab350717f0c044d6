// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model;

import dev.dpserve.api.model.CausalLm;
import dev.dpserve.api.model.CausalLm.BatchEntry;
import java.util.Arrays;
import java.util.List;

/**
 * A minimal stand-in for the engine's block manager in model tests: allocates the model's paged
 * KV cache and hands each sequence private blocks, from the highest id down, so block tables are
 * never the identity.
 */
public final class PagedSequences {

    private final CausalLm model;
    private final int blockSize;
    private int nextBlock;

    public PagedSequences(CausalLm model, int numBlocks, int blockSize) {
        this.model = model;
        this.blockSize = blockSize;
        this.nextBlock = numBlocks - 1;
        model.allocateKvCache(numBlocks, blockSize);
    }

    public Seq newSequence() {
        return new Seq();
    }

    /** One sequence: its block table and how many positions are cached. */
    public final class Seq {
        private int[] table = new int[0];
        private int length;

        /** The entry running {@code tokens} next (allocating blocks for them); call {@link #advance} after the forward. */
        public BatchEntry entry(int[] tokens, boolean wantLogits) {
            int need = (length + tokens.length + blockSize - 1) / blockSize;
            while (table.length < need) {
                if (nextBlock < 1) throw new IllegalStateException("test KV cache is full");
                table = Arrays.copyOf(table, table.length + 1);
                table[table.length - 1] = nextBlock--;
            }
            return new BatchEntry(table.clone(), length, tokens, wantLogits);
        }

        public BatchEntry entry(int[] tokens) {
            return entry(tokens, true);
        }

        public void advance(int n) {
            length += n;
        }

        /** Forward of this sequence alone; returns the logits. */
        public float[] forward(int[] tokens) {
            float[] logits = model.forward(List.of(entry(tokens)))[0];
            advance(tokens.length);
            return logits;
        }

        public int length() {
            return length;
        }

        /** Forgets positions from {@code newLength} on (they are recomputed by later forwards). */
        public void truncate(int newLength) {
            length = newLength;
        }

        /** Shares this sequence's first {@code numBlocks} blocks as the start of {@code other}'s table (prefix caching). */
        public void shareBlocksWith(Seq other, int numBlocks) {
            other.table = Arrays.copyOf(table, numBlocks);
            other.length = numBlocks * blockSize;
        }
    }
}
