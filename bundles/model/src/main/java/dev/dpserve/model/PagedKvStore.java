// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model;

import dev.dpserve.api.model.CausalLm.BatchEntry;
import dev.dpserve.api.model.KvCacheLayout;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The F32 storage behind a paged KV cache: blocks of {@code blockSize} token slots, each slot
 * holding {@code floatsPerTokenPerLayer} floats per layer, laid out (layer, slot, float) inside a
 * block. A block's array is created when a batch first writes to it, so an engine may size the
 * cache to a budget it rarely fills.
 */
public final class PagedKvStore {

    private final int numLayers;
    private final int width;  // floats per token per layer
    private float[][] blocks; // (numBlocks,) each (numLayers, blockSize, width) or null until first written
    private int blockSize;

    public PagedKvStore(KvCacheLayout layout) {
        this.numLayers = layout.numLayers();
        this.width = layout.floatsPerTokenPerLayer();
    }

    public void allocate(int numBlocks, int blockSize) {
        if (numBlocks < 1 || blockSize < 1) throw new IllegalArgumentException("KV cache of " + numBlocks + " blocks x " + blockSize + " tokens");
        long floats = (long) numLayers * blockSize * width;
        if (floats > Integer.MAX_VALUE - 8) throw new IllegalArgumentException("block size " + blockSize + " makes a block too large");
        this.blocks = new float[numBlocks][];
        this.blockSize = blockSize;
    }

    public void release() {
        blocks = null;
    }

    /**
     * Checks a forward batch against the cache and the vocabulary, then creates the blocks it will
     * write. IllegalStateException before {@link #allocate}; IllegalArgumentException for malformed
     * entries, before anything is created.
     */
    public BatchLayout prepare(List<BatchEntry> batch, int vocabSize) {
        if (blocks == null) throw new IllegalStateException("allocateKvCache first");
        Set<Long> written = new HashSet<>();
        for (int i = 0; i < batch.size(); i++) {
            BatchEntry entry = batch.get(i);
            int n = entry.tokens().length;
            if (n == 0) throw new IllegalArgumentException("batch entry " + i + ": no tokens");
            int start = entry.startPosition();
            if (start < 0) throw new IllegalArgumentException("batch entry " + i + ": negative start position " + start);
            int end = start + n;
            if ((long) entry.blockTable().length * blockSize < end) {
                throw new IllegalArgumentException("batch entry " + i + ": a block table of " + entry.blockTable().length
                        + " blocks cannot hold positions up to " + end);
            }
            for (int b = 0; b < (end + blockSize - 1) / blockSize; b++) {
                int id = entry.blockTable()[b];
                if (id < 0 || id >= blocks.length) throw new IllegalArgumentException("batch entry " + i + ": block " + id + " outside the cache");
                if (b * blockSize < start && blocks[id] == null) {
                    throw new IllegalArgumentException("batch entry " + i + ": block " + id + " holds no cached positions");
                }
            }
            for (int p = start; p < end; p++) {
                if (!written.add(slot(entry.blockTable(), p))) {
                    throw new IllegalArgumentException("batch entry " + i + ": the KV slot of position " + p + " is written twice in one batch");
                }
            }
            for (int tok : entry.tokens()) {
                if (tok < 0 || tok >= vocabSize) throw new IllegalArgumentException("batch entry " + i + ": token " + tok + " outside the vocabulary");
            }
        }
        for (long slot : written) {
            int id = (int) (slot / blockSize);
            if (blocks[id] == null) blocks[id] = new float[numLayers * blockSize * width];
        }
        return new BatchLayout(batch);
    }

    /** The block arrays by block id (null where never written), for {@link dev.dpserve.api.tensor.PagedAttention}. */
    public float[][] blocks() {
        return blocks;
    }

    public int blockSize() {
        return blockSize;
    }

    /** Floats per token per layer: the slot stride inside a block. */
    public int width() {
        return width;
    }

    /** Where {@code layer}'s slots start inside a block. */
    public int layerOffset(int layer) {
        return layer * blockSize * width;
    }

    /** Global slot of position {@code p}: block id × block size + offset in the block. */
    private long slot(int[] blockTable, int p) {
        return (long) blockTable[p / blockSize] * blockSize + p % blockSize;
    }

    /** The block array holding position {@code p} of the sequence with this block table. */
    public float[] block(int[] blockTable, int p) {
        return blocks[blockTable[p / blockSize]];
    }

    /** Where position {@code p}'s floats of {@code layer} start inside {@link #block}. */
    public int offset(int layer, int p) {
        return (layer * blockSize + p % blockSize) * width;
    }

    /** Copies {@code width} floats from {@code src[srcOff]} into the slot of position {@code p} in {@code layer}. */
    public void write(int layer, int[] blockTable, int p, float[] src, int srcOff) {
        System.arraycopy(src, srcOff, block(blockTable, p), offset(layer, p), width);
    }
}
