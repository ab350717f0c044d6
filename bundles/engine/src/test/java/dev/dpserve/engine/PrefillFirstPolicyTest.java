// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dpserve.engine.SchedulerHarness.Step;
import dev.dpserve.scheduler.ascend.PrefillFirstPolicy;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class PrefillFirstPolicyTest {

    private final PrefillFirstPolicy ascend = new PrefillFirstPolicy();

    @Test
    void stepsAreAllPrefillOrAllDecodeAndPrefillsAreNeverSplit() {
        SchedulerHarness h = new SchedulerHarness(100, 4, false, new EngineCore.Limits(1000, 8, 10));
        h.add("a", 6, 5);
        h.add("b", 6, 5);
        h.add("c", 3, 5);
        assertEquals(Map.of("a", 6, "c", 3), h.step(ascend).scheduled(), "b does not fit the 4 left and is not split; c does");
        assertEquals(Map.of("b", 6), h.step(ascend).scheduled(), "a prefill step: a and c do not decode");
        assertEquals(Map.of("a", 1, "c", 1, "b", 1), h.step(ascend).scheduled(), "then a decode step");
    }

    @Test
    void promptsOverThePromptLimitAreFinishedWithLength() {
        SchedulerHarness h = new SchedulerHarness(100, 4, false, new EngineCore.Limits(1000, 8, 10));
        h.add("long", 11, 5);
        h.add("ok", 10, 5);
        Step s = h.step(ascend);
        assertEquals(List.of("long"), s.ignored());
        assertEquals(Map.of("ok", 10), s.scheduled());
        assertTrue(h.queues.get("long") == null);
    }

    @Test
    void aPrefillMustLeaveTheWatermarkFree() {
        // 100 usable blocks of 4 tokens; watermark 1% = 1 block
        SchedulerHarness h = new SchedulerHarness(101, 4, false, new EngineCore.Limits(1000, 8, 1000));
        h.add("all", 397, 1); // 100 blocks would leave 0 free
        h.add("most", 393, 1); // 99 blocks leave 1
        Step s = h.step(ascend);
        assertEquals(Map.of("most", 393), s.scheduled());
        assertEquals(List.of("all"), h.waitingIds(), "skipped, not ignored");
    }

    @Test
    void longPrefillsAreLimitedPerStep() {
        PrefillFirstPolicy limited = new PrefillFirstPolicy(1, 5, 0.01);
        SchedulerHarness h = new SchedulerHarness(100, 4, false, new EngineCore.Limits(1000, 8, 100));
        h.add("a", 8, 3);
        h.add("b", 8, 3);
        h.add("c", 4, 3);
        assertEquals(Map.of("a", 8, "c", 4), h.step(limited).scheduled());
        assertEquals(Map.of("b", 8), h.step(limited).scheduled());
    }

    @Test
    void decodesPreemptTheLastRunningRequest() {
        SchedulerHarness h = new SchedulerHarness(7, 2, false, new EngineCore.Limits(100, 8, 100));
        h.add("a", 4, 10);
        h.add("b", 4, 10);
        h.add("c", 4, 10);
        h.step(ascend);
        Step s = h.step(ascend);
        assertTrue(s.preempted());
        assertEquals(Map.of("a", 1, "b", 1), s.scheduled());
        assertEquals(List.of("c"), h.waitingIds());
        // c comes back as a prefill of all its tokens once blocks are free; it waits while they are not
        assertTrue(h.step(ascend).scheduled().keySet().stream().noneMatch("c"::equals));
    }

    @Test
    void takesOverARequestAChunkingPolicyLeftMidPrefill() {
        SchedulerHarness h = new SchedulerHarness(100, 4, false, new EngineCore.Limits(1000, 8, 10));
        h.add("a", 25, 2);
        h.step(new dev.dpserve.scheduler.v1.ContinuousBatchingPolicy()); // a: 10 of 25
        assertEquals(Map.of("a", 10), h.step(ascend).scheduled());
        assertEquals(Map.of("a", 5), h.step(ascend).scheduled());
        assertEquals(Map.of("a", 1), h.step(ascend).scheduled());
    }
}
