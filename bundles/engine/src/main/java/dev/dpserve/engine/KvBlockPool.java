// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.engine;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The KV cache blocks of one engine. Block 0 is the null block and never handed out. Free blocks
 * (reference count 0) wait in a doubly linked LRU queue: allocation takes from the head, freeing
 * appends to the tail. A free block keeps its prefix-cache hash, so a later request can revive it
 * ({@link #touch}); the hash is dropped only when the block is taken for new contents.
 *
 * <p>Not thread-safe: the engine loop owns it.
 */
final class KvBlockPool {

    /** One block of {@code blockSize} token slots. */
    static final class Block {
        final int id;
        int refCount;
        KvBlockHash hash; // set while the block's full contents are registered in the prefix cache
        Block prev;       // free-queue links, null when not queued
        Block next;

        Block(int id) {
            this.id = id;
        }

        @Override
        public String toString() {
            return "block " + id + " (ref " + refCount + (hash == null ? "" : ", " + hash) + ")";
        }
    }

    private final Block[] blocks;
    private final Block head = new Block(-1); // sentinels of the free queue
    private final Block tail = new Block(-1);
    private final Map<KvBlockHash, Block> cached = new HashMap<>();
    private int numFree;
    private long evictions;

    /** {@code numBlocks} blocks including the null block. */
    KvBlockPool(int numBlocks) {
        if (numBlocks < 2) throw new IllegalArgumentException("need at least 2 blocks (one is the null block), got " + numBlocks);
        blocks = new Block[numBlocks];
        head.next = tail;
        tail.prev = head;
        for (int i = 0; i < numBlocks; i++) {
            blocks[i] = new Block(i);
            if (i > 0) append(blocks[i]);
        }
        blocks[0].refCount = 1; // the null block is never free
    }

    /** Blocks requests can hold: all but the null block. */
    int numUsableBlocks() {
        return blocks.length - 1;
    }

    int numFreeBlocks() {
        return numFree;
    }

    /** Cached blocks evicted because their block was reused. */
    long evictions() {
        return evictions;
    }

    Block block(int id) {
        return blocks[id];
    }

    /** Takes {@code n} blocks from the head of the free queue, with reference count 1. */
    List<Block> allocate(int n) {
        if (n > numFree) throw new IllegalStateException("asked for " + n + " blocks, " + numFree + " free");
        List<Block> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            Block b = head.next;
            unlink(b);
            if (b.hash != null) {
                cached.remove(b.hash, b);
                b.hash = null;
                evictions++;
            }
            b.refCount = 1;
            out.add(b);
        }
        return out;
    }

    /** Drops one reference from each block, in the given order; blocks reaching 0 join the queue tail. */
    void free(List<Block> toFree) {
        for (Block b : toFree) {
            if (b.refCount <= 0 || b.id == 0) throw new IllegalStateException("free of " + b);
            if (--b.refCount == 0) append(b);
        }
    }

    /** Adds a reference to each (cached) block, taking it out of the free queue if it was free. */
    void touch(List<Block> toTouch) {
        for (Block b : toTouch) {
            if (b.refCount == 0) unlink(b);
            b.refCount++;
        }
    }

    /** The block whose registered contents have this hash, or null. */
    Block cached(KvBlockHash hash) {
        return cached.get(hash);
    }

    /**
     * Registers a held block's full contents under {@code hash}. If another block already holds
     * the same contents, that one stays the cached copy and this block stays unregistered.
     */
    void cache(Block b, KvBlockHash hash) {
        if (b.hash != null) return;
        if (cached.putIfAbsent(hash, b) == null) b.hash = hash;
    }

    /** Blocks registered in the prefix cache (held or free). */
    int numCachedBlocks() {
        return cached.size();
    }

    private void append(Block b) {
        b.prev = tail.prev;
        b.next = tail;
        tail.prev.next = b;
        tail.prev = b;
        numFree++;
    }

    private void unlink(Block b) {
        b.prev.next = b.next;
        b.next.prev = b.prev;
        b.prev = null;
        b.next = null;
        numFree--;
    }

    /** Ids of the free queue from head to tail (for tests). */
    List<Integer> freeQueue() {
        List<Integer> ids = new ArrayList<>(numFree);
        for (Block b = head.next; b != tail; b = b.next) ids.add(b.id);
        return ids;
    }
}
