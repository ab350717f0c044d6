// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.engine;

import dev.dpserve.api.model.CausalLm;
import dev.dpserve.api.model.KvCacheLayout;
import dev.dpserve.api.model.ModelInfo;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A scheduling test double: its paged "KV cache" stores, per slot, the token and the position
 * written there, and the logits for the next token are a pure function of the whole history read
 * back through the block table. Any scheduling or paging mistake (a token fed twice, skipped, at
 * the wrong position, a wrong or stale block, a bad prefix share) either fails the read check or
 * changes every later output. It also records each forward batch so tests can check budgets.
 */
final class HistoryHashModel implements CausalLm {

    final int vocab;
    final List<int[]> batchShapes = new ArrayList<>(); // tokens per entry, per forward call
    private int[] slotTokens;    // (numBlocks * blockSize,)
    private int[] slotPositions; // (numBlocks * blockSize,) -1 = never written
    private int blockSize;

    HistoryHashModel(int vocab) {
        this.vocab = vocab;
    }

    @Override
    public ModelInfo info() {
        return new ModelInfo("test", "HistoryHash", vocab, 4096, 8, 1, 0, 0, "F32", 8);
    }

    @Override
    public KvCacheLayout kvCacheLayout() {
        return new KvCacheLayout(1, 2, KvCacheLayout.DENSE);
    }

    @Override
    public void allocateKvCache(int numBlocks, int blockSize) {
        this.blockSize = blockSize;
        slotTokens = new int[numBlocks * blockSize];
        slotPositions = new int[numBlocks * blockSize];
        Arrays.fill(slotPositions, -1);
    }

    @Override
    public synchronized float[][] forward(List<BatchEntry> batch) {
        if (slotTokens == null) throw new IllegalStateException("no KV cache");
        float[][] out = new float[batch.size()][];
        int[] shape = new int[batch.size()];
        for (int i = 0; i < batch.size(); i++) {
            BatchEntry e = batch.get(i);
            int[] add = e.tokens();
            if (add.length == 0) throw new IllegalArgumentException("empty entry");
            shape[i] = add.length;
            for (int j = 0; j < add.length; j++) {
                int slot = slot(e.blockTable(), e.startPosition() + j);
                slotTokens[slot] = add[j];
                slotPositions[slot] = e.startPosition() + j;
            }
        }
        for (int i = 0; i < batch.size(); i++) {
            BatchEntry e = batch.get(i);
            if (!e.wantLogits()) continue;
            int[] history = new int[e.startPosition() + e.tokens().length];
            for (int p = 0; p < history.length; p++) {
                int slot = slot(e.blockTable(), p);
                if (slotPositions[slot] != p) {
                    throw new IllegalStateException("position " + p + " reads slot " + slot + " holding position " + slotPositions[slot]);
                }
                history[p] = slotTokens[slot];
            }
            out[i] = logitsFor(history);
        }
        batchShapes.add(shape);
        return out;
    }

    private int slot(int[] table, int p) {
        int b = p / blockSize;
        if (b >= table.length) throw new IllegalArgumentException("position " + p + " beyond a table of " + table.length + " blocks");
        if (table[b] == 0) throw new IllegalArgumentException("position " + p + " in the null block");
        return table[b] * blockSize + p % blockSize;
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

    synchronized List<int[]> shapes() {
        return new ArrayList<>(batchShapes);
    }

    @Override
    public void close() {
    }
}
