// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model;

import dev.dpserve.api.model.CausalLm;
import dev.dpserve.api.model.CausalLm.BatchEntry;
import java.util.ArrayList;
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

    /**
     * Greedy runs of all prompts in shared batches: sequence i joins at step i with its prompt, so
     * most steps mix one prefill with decodes of the others. Returns per prompt the logits of its
     * prefill and of its {@code decodeSteps} decode steps.
     */
    public List<List<float[]>> staggered(int[][] prompts, int decodeSteps) {
        List<List<float[]>> got = new ArrayList<>();
        Seq[] seqs = new Seq[prompts.length];
        int[] next = new int[prompts.length];
        for (int step = 0; step < prompts.length + decodeSteps; step++) {
            List<BatchEntry> batch = new ArrayList<>();
            List<Integer> members = new ArrayList<>();
            for (int i = 0; i < prompts.length; i++) {
                if (step == i) {
                    seqs[i] = newSequence();
                    got.add(new ArrayList<>());
                    batch.add(seqs[i].entry(prompts[i]));
                    members.add(i);
                } else if (step > i && step - i <= decodeSteps) {
                    batch.add(seqs[i].entry(new int[] {next[i]}));
                    members.add(i);
                }
            }
            float[][] logits = model.forward(batch);
            if (logits.length != batch.size()) throw new AssertionError(logits.length + " results for " + batch.size() + " entries");
            for (int b = 0; b < logits.length; b++) {
                int i = members.get(b);
                seqs[i].advance(batch.get(b).tokens().length);
                got.get(i).add(logits[b]);
                next[i] = Fixtures.argmax(logits[b]);
            }
        }
        return got;
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
