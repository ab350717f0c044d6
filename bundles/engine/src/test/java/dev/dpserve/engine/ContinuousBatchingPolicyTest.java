// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dpserve.engine.SchedulerHarness.Step;
import dev.dpserve.scheduler.v1.ContinuousBatchingPolicy;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class ContinuousBatchingPolicyTest {

    private final ContinuousBatchingPolicy v1 = new ContinuousBatchingPolicy();

    @Test
    void runningFirstThenWaitingChunkedToTheBudget() {
        SchedulerHarness h = new SchedulerHarness(100, 4, false, new EngineCore.Limits(1000, 8, 10));
        h.add("a", 25, 3);
        h.add("b", 5, 3);
        assertEquals(Map.of("a", 10), h.step(v1).scheduled(), "a chunk of a; b waits for budget");
        assertEquals(Map.of("a", 10), h.step(v1).scheduled());
        Step s3 = h.step(v1);
        assertEquals(List.of("a", "b"), List.copyOf(s3.scheduled().keySet()), "running first");
        assertEquals(Map.of("a", 5, "b", 5), s3.scheduled());
        assertEquals(Map.of("a", 1, "b", 1), h.step(v1).scheduled(), "decodes");
    }

    @Test
    void longPrefillThresholdCapsEveryRequest() {
        SchedulerHarness h = new SchedulerHarness(100, 4, false, new EngineCore.Limits(1000, 8, 16, 4));
        h.add("a", 10, 2);
        h.add("b", 3, 2);
        h.add("c", 9, 2);
        assertEquals(Map.of("a", 4, "b", 3, "c", 4), h.step(v1).scheduled());
        assertEquals(Map.of("a", 4, "b", 1, "c", 4), h.step(v1).scheduled());
    }

    @Test
    void maxNumSeqsBoundsTheRunningQueue() {
        SchedulerHarness h = new SchedulerHarness(100, 4, false, new EngineCore.Limits(1000, 2, 100));
        h.add("a", 3, 2);
        h.add("b", 3, 2);
        h.add("c", 3, 2);
        assertEquals(Map.of("a", 3, "b", 3), h.step(v1).scheduled());
        assertEquals(List.of("c"), h.waitingIds());
        h.step(v1); // a and b finish (max_tokens 2)
        assertEquals(Map.of("c", 3), h.step(v1).scheduled());
    }

    @Test
    void theMaxModelLenCapLeavesTheLastTokenUncomputed() {
        SchedulerHarness h = new SchedulerHarness(100, 4, false, new EngineCore.Limits(6, 4, 100));
        RequestState a = h.add("a", 5, 10);
        h.step(v1); // prefill 5, token 6 sampled: 6 tokens = max_model_len; the engine would finish it
        assertEquals(6, a.numTokens());
        assertTrue(h.step(v1).scheduled().isEmpty(), "nothing left below max_model_len - 1");
    }

    @Test
    void blockShortagePreemptsTheLastRunningRequestAndAdmitsNothing() {
        // 6 usable blocks of 2 tokens; three requests of 4 prompt tokens take 2 blocks each
        SchedulerHarness h = new SchedulerHarness(7, 2, false, new EngineCore.Limits(100, 8, 100));
        h.add("a", 4, 10);
        h.add("b", 4, 10);
        h.add("c", 4, 10);
        assertEquals(Map.of("a", 4, "b", 4, "c", 4), h.step(v1).scheduled());
        h.add("d", 1, 10);
        // each now has 5 tokens (prefill 4 + 1 sampled); position 4 needs a third block each; none free
        Step s = h.step(v1);
        assertTrue(s.preempted());
        assertEquals(Map.of("a", 1, "b", 1), s.scheduled(), "c went, freeing 2 blocks for a and b");
        assertEquals(List.of("c", "d"), h.waitingIds(), "the victim is first in line; nothing admitted");
        RequestState c = h.queues.get("c");
        assertEquals(0, c.numComputedTokens());
        assertEquals(1, c.numPreemptions());
        assertEquals(1, h.queues.preemptions);
    }

    @Test
    void aRequestThatCannotGrowPreemptsItselfLast() {
        SchedulerHarness h = new SchedulerHarness(3, 2, false, new EngineCore.Limits(100, 8, 100)); // 2 usable blocks
        h.add("a", 4, 10);
        h.step(v1); // a: 4 computed + 1 sampled; slot 4 needs a third block
        Step s = h.step(v1);
        assertTrue(s.preempted());
        assertTrue(s.scheduled().isEmpty());
        assertEquals(List.of("a"), h.waitingIds());
        assertEquals(2, h.queues.kv.numFreeBlocks());
    }

    @Test
    void waitingRequestsStartAfterTheirPrefixHit() {
        SchedulerHarness h = new SchedulerHarness(100, 4, true, new EngineCore.Limits(1000, 8, 100));
        int[] shared = new int[13];
        for (int i = 0; i < shared.length; i++) shared[i] = 100 + i;
        h.add("a", shared, 1);
        h.step(v1); // a computes 13 tokens (3 full blocks registered) and finishes
        assertEquals(0, h.queues.kv.numUsedBlocks());
        h.add("b", shared, 1);
        int[] eight = java.util.Arrays.copyOf(shared, 8);
        h.add("c", eight, 1);
        Step s = h.step(v1);
        assertEquals(Map.of("b", 1, "c", 4), s.scheduled(), "b reuses 12 tokens; c only (8 - 1) / 4 = 1 block");
        assertEquals(13 + 13 + 8, h.queues.prefixQueries, "a, b and c were looked up");
        assertEquals(12 + 4, h.queues.prefixHits);
    }

    @Test
    void reusedBlocksLoseTheirCachedPrefix() {
        SchedulerHarness h = new SchedulerHarness(5, 4, true, new EngineCore.Limits(1000, 8, 100)); // 4 usable blocks
        int[] p = new int[9];
        for (int i = 0; i < p.length; i++) p[i] = 50 + i;
        h.add("a", p, 1);
        h.step(v1); // 2 full blocks cached, all 3 blocks free again
        h.add("big", 16, 1); // takes all 4 blocks: the cached ones are evicted
        h.step(v1);
        assertEquals(2, h.queues.kv.pool().evictions());
        h.add("b", p, 1);
        assertEquals(Map.of("b", 9), h.step(v1).scheduled(), "no hit left");
    }

    @Test
    void nothingIsAdmittedWhileBlocksAreShort() {
        SchedulerHarness h = new SchedulerHarness(3, 4, false, new EngineCore.Limits(1000, 8, 100)); // 2 usable
        h.add("a", 8, 3);
        h.add("b", 2, 3);
        assertEquals(Map.of("a", 8), h.step(v1).scheduled());
        assertFalse(h.runningIds().contains("b"));
    }
}
