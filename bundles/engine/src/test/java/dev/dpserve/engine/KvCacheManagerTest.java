// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dpserve.engine.KvBlockPool.Block;
import java.util.List;
import org.junit.jupiter.api.Test;

class KvCacheManagerTest {

    private static int[] tokens(int n, int salt) {
        int[] t = new int[n];
        for (int i = 0; i < n; i++) t[i] = i * 31 + salt;
        return t;
    }

    @Test
    void hashChainsAreStableAcrossManagersAndDependOnTheWholePrefix() {
        int[] a = tokens(12, 0);
        KvCacheManager m1 = new KvCacheManager(8, 4, true);
        KvCacheManager m2 = new KvCacheManager(100, 4, true);
        for (int i = 0; i < 3; i++) assertEquals(m1.blockHash("x", a, i), m2.blockHash("y", a, i), "block " + i);
        int[] b = a.clone();
        b[0]++; // differs only in block 0
        assertNotEquals(m1.blockHash("x", a, 2), m1.blockHash("z", b, 2), "the chain carries the prefix");
        // pins the canonical encoding (same value from Python: sha256(sha256(b"dpserve.kv.block-hash.v1")
        // + struct.pack("<4i", 1, 2, 3, 4) + struct.pack("<i", 0))); changing it invalidates shared caches
        assertEquals("5960ceaafe6ae1e1", KvBlockHash.of(KvBlockHash.ROOT, new int[] {1, 2, 3, 4}, 0, 4, new byte[0]).toString());
    }

    @Test
    void allocatesBlocksForComputedPlusNewTokensAndFreesInReverse() {
        KvCacheManager m = new KvCacheManager(6, 4, false); // 5 usable
        assertEquals(2, m.blocksToAllocate("a", 0, 5, List.of()));
        assertTrue(m.allocate("a", 0, 5, List.of()));
        assertArrayEquals(new int[] {1, 2}, m.blockTable("a"));
        assertTrue(m.allocate("a", 5, 3, List.of()), "8 tokens still fit in 2 blocks");
        assertEquals(2, m.numBlocksHeld("a"));
        assertFalse(m.allocate("a", 8, 13, List.of()), "needs 6 blocks");
        assertEquals(2, m.numBlocksHeld("a"), "a failed allocation changes nothing");
        assertTrue(m.allocate("a", 8, 1, List.of()));
        assertArrayEquals(new int[] {1, 2, 3}, m.blockTable("a"));
        m.free("a");
        assertEquals(List.of(4, 5, 3, 2, 1), m.pool().freeQueue(), "last block first");
        m.remove("a");
        assertEquals(5, m.numFreeBlocks());
        assertEquals(0, m.numUsedBlocks());
    }

    @Test
    void prefixHitsAreFullComputedBlocksCappedBelowTheLastToken() {
        KvCacheManager m = new KvCacheManager(20, 4, true);
        int[] a = tokens(10, 0);
        assertTrue(m.allocate("a", 0, 10, List.of()));
        assertEquals(0, m.lookup("b", a, 10).size(), "nothing registered before the forward pass");
        m.cacheComputed("a", a, 10); // 2 full blocks
        assertEquals(2, m.lookup("b", a, 10).size());
        assertEquals(1, m.lookup("c", a, 8).size(), "an 8-token prompt may reuse 1 block: (8 - 1) / 4");
        int[] other = a.clone();
        other[5]++;
        assertEquals(1, m.lookup("d", other, 10).size(), "stops at the first miss");

        List<Block> hit = m.lookup("b", a, 10);
        assertEquals(1, m.blocksToAllocate("b", 0, 2, hit), "2 more tokens: one new block, hit blocks are held");
        assertTrue(m.allocate("b", 0, 2, hit));
        assertEquals(2, hit.get(0).refCount);
        assertArrayEquals(new int[] {m.blockTable("a")[0], m.blockTable("a")[1], 4}, m.blockTable("b"));
        m.remove("a");
        m.remove("b");
        assertEquals(19, m.numFreeBlocks(), "no leaks");
        assertEquals(2, m.lookup("e", a, 10).size(), "free blocks stay cached until reused");
        List<Block> revive = m.lookup("e", a, 10);
        assertEquals(3, m.blocksToAllocate("e", 0, 2, revive), "reviving free cached blocks takes free blocks");
    }

    @Test
    void disabledPrefixCachingNeverHits() {
        KvCacheManager m = new KvCacheManager(20, 4, false);
        int[] a = tokens(10, 0);
        m.allocate("a", 0, 10, List.of());
        m.cacheComputed("a", a, 10);
        assertEquals(0, m.lookup("b", a, 10).size());
        assertEquals(0, m.pool().numCachedBlocks());
    }
}
