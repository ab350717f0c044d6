// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.engine;

import dev.dpserve.api.model.CausalLm;
import dev.dpserve.api.model.ModelInfo;
import dev.dpserve.api.model.SequenceCache;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A scheduling test double: its "KV cache" is the token history, and the logits for the next
 * token are a pure function of the whole history. Any scheduling mistake (a token fed twice,
 * skipped, or at the wrong position) changes every later output. It also records each forward
 * batch and counts open caches so tests can check budgets and leaks.
 */
final class HistoryHashModel implements CausalLm {

    final int vocab;
    final List<int[]> batchShapes = new ArrayList<>(); // tokens per entry, per forward call
    int openCaches;

    HistoryHashModel(int vocab) {
        this.vocab = vocab;
    }

    final class History implements SequenceCache {
        final int capacity;
        int[] tokens = new int[0];
        boolean closed;

        History(int capacity) {
            this.capacity = capacity;
        }

        @Override public int length() { return tokens.length; }
        @Override public int capacity() { return capacity; }
        @Override public void truncate(int length) { tokens = Arrays.copyOf(tokens, length); }

        @Override
        public void close() {
            if (!closed) openCaches--;
            closed = true;
        }
    }

    @Override
    public ModelInfo info() {
        return new ModelInfo("test", "HistoryHash", vocab, 4096, 8, 1, 0, 0, "F32", 0);
    }

    @Override
    public SequenceCache newSequence(int capacity) {
        openCaches++;
        return new History(capacity);
    }

    @Override
    public float[][] forward(List<BatchEntry> batch) {
        float[][] out = new float[batch.size()][];
        int[] shape = new int[batch.size()];
        for (int i = 0; i < batch.size(); i++) {
            History h = (History) batch.get(i).cache();
            if (h.closed) throw new IllegalStateException("forward on a closed cache");
            int[] add = batch.get(i).tokens();
            shape[i] = add.length;
            int[] all = Arrays.copyOf(h.tokens, h.tokens.length + add.length);
            System.arraycopy(add, 0, all, h.tokens.length, add.length);
            if (all.length > h.capacity) throw new IllegalStateException("cache overflow");
            h.tokens = all;
            out[i] = logitsFor(all);
        }
        batchShapes.add(shape);
        return out;
    }

    /** Deterministic pseudo-logits in [-4, 4) from the full history. */
    float[] logitsFor(int[] history) {
        long h = 1469598103934665603L;
        for (int t : history) h = (h ^ t) * 1099511628211L;
        float[] logits = new float[vocab];
        long x = h;
        for (int v = 0; v < vocab; v++) {
            x ^= x << 13;
            x ^= x >>> 7;
            x ^= x << 17;
            logits[v] = ((x >>> 40) / (float) (1L << 24)) * 8f - 4f;
        }
        return logits;
    }

    @Override
    public void close() {
    }
}
