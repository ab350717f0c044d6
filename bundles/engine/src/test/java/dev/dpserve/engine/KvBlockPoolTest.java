// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.dpserve.engine.KvBlockPool.Block;
import java.util.List;
import org.junit.jupiter.api.Test;

class KvBlockPoolTest {

    private static KvBlockHash hash(int token) {
        return KvBlockHash.of(KvBlockHash.ROOT, new int[] {token}, 0, 1, new byte[0]);
    }

    @Test
    void allocatesFromTheHeadAndFreesToTheTailSkippingTheNullBlock() {
        KvBlockPool pool = new KvBlockPool(6);
        assertEquals(5, pool.numUsableBlocks());
        assertEquals(List.of(1, 2, 3, 4, 5), pool.freeQueue());
        List<Block> a = pool.allocate(2);
        assertEquals(List.of(1, 2), a.stream().map(b -> b.id).toList());
        assertEquals(List.of(3, 4, 5), pool.freeQueue());
        pool.free(List.of(a.get(1), a.get(0)));
        assertEquals(List.of(3, 4, 5, 2, 1), pool.freeQueue());
        assertEquals(5, pool.numFreeBlocks());
        assertThrows(IllegalStateException.class, () -> pool.allocate(6));
        assertThrows(IllegalStateException.class, () -> pool.free(List.of(a.get(0))), "double free");
    }

    @Test
    void referenceCountsKeepSharedBlocksHeld() {
        KvBlockPool pool = new KvBlockPool(4);
        Block b = pool.allocate(1).get(0);
        pool.touch(List.of(b));
        assertEquals(2, b.refCount);
        pool.free(List.of(b));
        assertEquals(2, pool.numFreeBlocks(), "still held by the second owner");
        pool.free(List.of(b));
        assertEquals(3, pool.numFreeBlocks());
    }

    @Test
    void aFreedCachedBlockStaysCachedUntilItsBlockIsReused() {
        KvBlockPool pool = new KvBlockPool(4); // blocks 1..3
        Block b = pool.allocate(1).get(0);      // block 1
        pool.cache(b, hash(7));
        pool.free(List.of(b));                 // queue: 2, 3, 1
        assertSame(b, pool.cached(hash(7)));
        pool.touch(List.of(b));                // revived: out of the queue
        assertEquals(List.of(2, 3), pool.freeQueue());
        pool.free(List.of(b));
        pool.allocate(2);                      // takes 2 and 3: no eviction yet
        assertSame(b, pool.cached(hash(7)));
        assertEquals(0, pool.evictions());
        pool.allocate(1);                      // now block 1 is reused
        assertNull(pool.cached(hash(7)));
        assertNull(b.hash);
        assertEquals(1, pool.evictions());
    }

    @Test
    void theFirstBlockWithGivenContentsStaysTheCachedCopy() {
        KvBlockPool pool = new KvBlockPool(4);
        List<Block> two = pool.allocate(2);
        pool.cache(two.get(0), hash(1));
        pool.cache(two.get(1), hash(1));
        assertSame(two.get(0), pool.cached(hash(1)));
        assertNull(two.get(1).hash);
        assertEquals(1, pool.numCachedBlocks());
    }
}
