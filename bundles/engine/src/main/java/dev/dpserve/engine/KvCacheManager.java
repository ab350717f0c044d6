// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.engine;

import dev.dpserve.engine.KvBlockPool.Block;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Which KV blocks each request holds, and the prefix cache over them.
 *
 * <p>A request's position {@code p} lives in slot {@code p % blockSize} of its
 * {@code p / blockSize}-th block. Full blocks whose tokens are all computed are registered under a
 * chained {@link KvBlockHash}; a new request whose leading full blocks hash the same shares them
 * (reference counted) instead of recomputing. Requests are identified by id; their token arrays
 * are append-only, which is what makes the per-request hash chain incremental.
 *
 * <p>Not thread-safe: the engine loop owns it.
 */
final class KvCacheManager {

    private static final byte[] NO_EXTRA_KEYS = new byte[0];

    private final KvBlockPool pool;
    private final int blockSize;
    private final boolean prefixCaching;
    private final Map<String, RequestBlocks> requests = new HashMap<>();

    private static final class RequestBlocks {
        final List<Block> blocks = new ArrayList<>();
        final List<KvBlockHash> hashes = new ArrayList<>(); // of the request's full blocks, kept across preemption
        int numRegistered;                                  // leading blocks already offered to the prefix cache
    }

    /** {@code numBlocks} includes the null block. */
    KvCacheManager(int numBlocks, int blockSize, boolean prefixCaching) {
        if (blockSize < 1) throw new IllegalArgumentException("block size must be positive, got " + blockSize);
        this.pool = new KvBlockPool(numBlocks);
        this.blockSize = blockSize;
        this.prefixCaching = prefixCaching;
    }

    int blockSize() { return blockSize; }

    boolean prefixCaching() { return prefixCaching; }

    int numUsableBlocks() { return pool.numUsableBlocks(); }

    int numFreeBlocks() { return pool.numFreeBlocks(); }

    int numUsedBlocks() { return pool.numUsableBlocks() - pool.numFreeBlocks(); }

    KvBlockPool pool() { return pool; }

    /** Blocks needed to hold {@code numTokens} tokens. */
    int blocksFor(int numTokens) {
        return (numTokens + blockSize - 1) / blockSize;
    }

    /**
     * The longest run of leading full blocks of {@code tokens[0, numTokens)} that is cached, capped
     * at {@code (numTokens - 1) / blockSize} blocks so that at least one token is left to compute
     * (its logits are needed). Empty when prefix caching is off.
     */
    List<Block> lookup(String requestId, int[] tokens, int numTokens) {
        if (!prefixCaching || numTokens < 1) return List.of();
        int cap = (numTokens - 1) / blockSize;
        List<KvBlockHash> hashes = hashes(requestId, tokens, cap);
        List<Block> hit = new ArrayList<>();
        for (int i = 0; i < cap; i++) {
            Block b = pool.cached(hashes.get(i));
            if (b == null) break;
            hit.add(b);
        }
        return hit;
    }

    /**
     * Free blocks {@link #allocate} would take: new blocks for positions up to
     * {@code numComputed + hit + numNew}, plus hit blocks that are free now and would be revived.
     */
    int blocksToAllocate(String requestId, int numComputed, int numNew, List<Block> hit) {
        RequestBlocks r = requests.get(requestId);
        int held = r == null ? 0 : r.blocks.size();
        int need = blocksFor(numComputed + hit.size() * blockSize + numNew);
        int fresh = Math.max(0, need - held - hit.size());
        int revived = 0;
        for (Block b : hit) if (b.refCount == 0) revived++;
        return fresh + revived;
    }

    /**
     * Makes the request hold blocks for positions {@code [0, numComputed + hit·blockSize + numNew)}.
     * {@code hit} (from {@link #lookup}, only for a request holding no blocks) becomes its leading
     * blocks. Returns false, changing nothing, if the free blocks do not suffice.
     */
    boolean allocate(String requestId, int numComputed, int numNew, List<Block> hit) {
        if (blocksToAllocate(requestId, numComputed, numNew, hit) > pool.numFreeBlocks()) return false;
        RequestBlocks r = requests.computeIfAbsent(requestId, id -> new RequestBlocks());
        if (!hit.isEmpty()) {
            if (!r.blocks.isEmpty()) throw new IllegalStateException(requestId + " already holds blocks; a prefix hit needs an empty table");
            // revive first: taking new blocks below must not evict the hit
            pool.touch(hit);
            r.blocks.addAll(hit);
            r.numRegistered = hit.size();
        }
        int need = blocksFor(numComputed + hit.size() * blockSize + numNew);
        if (need > r.blocks.size()) r.blocks.addAll(pool.allocate(need - r.blocks.size()));
        return true;
    }

    /**
     * Registers the request's full blocks whose tokens are all computed (positions below
     * {@code numComputed}). Called after the forward pass that computed them, so a block is only
     * ever shared once its contents exist.
     */
    void cacheComputed(String requestId, int[] tokens, int numComputed) {
        if (!prefixCaching) return;
        RequestBlocks r = requests.get(requestId);
        if (r == null) return;
        int full = Math.min(numComputed / blockSize, r.blocks.size());
        if (full <= r.numRegistered) return;
        List<KvBlockHash> hashes = hashes(requestId, tokens, full);
        for (int i = r.numRegistered; i < full; i++) pool.cache(r.blocks.get(i), hashes.get(i));
        r.numRegistered = full;
    }

    /** The request's block ids in position order (empty if it holds none). */
    int[] blockTable(String requestId) {
        RequestBlocks r = requests.get(requestId);
        if (r == null) return new int[0];
        int[] table = new int[r.blocks.size()];
        for (int i = 0; i < table.length; i++) table[i] = r.blocks.get(i).id;
        return table;
    }

    int numBlocksHeld(String requestId) {
        RequestBlocks r = requests.get(requestId);
        return r == null ? 0 : r.blocks.size();
    }

    /**
     * Releases the request's blocks, last block first: the tail of a sequence is the least likely
     * to be shared, so it reaches the head of the free queue and is reused first. Its hash chain
     * is kept (the request may resume after preemption).
     */
    void free(String requestId) {
        RequestBlocks r = requests.get(requestId);
        if (r == null || r.blocks.isEmpty()) return;
        List<Block> reversed = new ArrayList<>(r.blocks);
        Collections.reverse(reversed);
        pool.free(reversed);
        r.blocks.clear();
        r.numRegistered = 0;
    }

    /** Frees the request's blocks and forgets it. */
    void remove(String requestId) {
        free(requestId);
        requests.remove(requestId);
    }

    /** Hashes of the request's first {@code numBlocks} full blocks, computing missing ones. */
    private List<KvBlockHash> hashes(String requestId, int[] tokens, int numBlocks) {
        RequestBlocks r = requests.computeIfAbsent(requestId, id -> new RequestBlocks());
        for (int i = r.hashes.size(); i < numBlocks; i++) {
            KvBlockHash parent = i == 0 ? KvBlockHash.ROOT : r.hashes.get(i - 1);
            r.hashes.add(KvBlockHash.of(parent, tokens, i * blockSize, blockSize, NO_EXTRA_KEYS));
        }
        return r.hashes;
    }

    /** The hash of a request's {@code i}-th full block (for tests). */
    KvBlockHash blockHash(String requestId, int[] tokens, int i) {
        return hashes(requestId, tokens, i + 1).get(i);
    }
}
