// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dpserve.api.engine.EngineRequest;
import dev.dpserve.api.engine.EngineStats;
import dev.dpserve.api.engine.FinishReason;
import dev.dpserve.api.engine.InvalidRequestException;
import dev.dpserve.api.engine.SamplingParams;
import dev.dpserve.api.model.CausalLm;
import dev.dpserve.api.scheduler.SchedulingPolicy;
import dev.dpserve.engine.EngineCoreTest.Collector;
import dev.dpserve.scheduler.ascend.PrefillFirstPolicy;
import dev.dpserve.scheduler.v1.ContinuousBatchingPolicy;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

/** The engine with the paged KV cache: batching, chunking, preemption and prefix hits change nothing but speed. */
class EnginePagedTest {

    static final int VOCAB = 50;
    static final int N = 8;

    static Supplier<EngineCore.ActivePolicy> policy(String name) {
        SchedulingPolicy p = name.equals("v1") ? new ContinuousBatchingPolicy() : new PrefillFirstPolicy();
        return () -> new EngineCore.ActivePolicy(name, p);
    }

    /** Prompts sharing a 9-token prefix (prefix hits), with different tails and lengths. */
    static int[] prompt(int i) {
        int[] p = new int[9 + 3 * i];
        for (int j = 0; j < p.length; j++) p[j] = j < 9 ? (j * 5 + 1) % VOCAB : (j * 7 + i * 13) % VOCAB;
        return p;
    }

    static SamplingParams sampling(int i, boolean seeded) {
        return seeded ? new SamplingParams(0.9, 0.95, 0, 0.0, 1000L + i, 10 + i, 0, Set.of(), true, -1)
                : new SamplingParams(0, 1, 0, 0, null, 10 + i, 0, Set.of(), true, -1);
    }

    /** Runs requests 0..n-1 all at once (concurrent) or each to completion before the next. */
    static List<List<Integer>> run(CausalLm model, EngineCore.Limits limits, EngineCore.KvConfig kv,
                                   Supplier<EngineCore.ActivePolicy> policy, int n, boolean concurrent, boolean seeded,
                                   EngineStats[] statsOut) throws Exception {
        List<List<Integer>> out = new ArrayList<>();
        try (EngineCore core = new EngineCore(model, limits, kv, policy, Set.of(), 0, "t")) {
            List<Collector> cs = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                Collector c = new Collector();
                core.submit(new EngineRequest("r" + i, prompt(i), sampling(i, seeded), i), c::accept);
                cs.add(c);
                if (!concurrent) c.await();
            }
            for (Collector c : cs) {
                assertEquals(FinishReason.LENGTH, c.await().finishReason());
                out.add(c.tokens);
            }
            EngineStats s = awaitIdle(core);
            assertEquals(0, s.kvBlocksUsed(), "blocks in use return to zero when idle");
            if (statsOut != null) statsOut[0] = s;
        }
        return out;
    }

    static EngineStats awaitIdle(EngineCore core) throws InterruptedException {
        long deadline = System.nanoTime() + 5_000_000_000L;
        EngineStats s = core.stats();
        while ((s.running() + s.waiting() > 0 || s.kvBlocksUsed() > 0) && System.nanoTime() < deadline) {
            Thread.sleep(5);
            s = core.stats();
        }
        return s;
    }

    @ParameterizedTest
    @ValueSource(strings = {"v1", "ascend"})
    void concurrentEqualsOneByOneWithChunksPrefixHitsAndPreemption(String name) throws Exception {
        HistoryHashModel m = new HistoryHashModel(VOCAB);
        EngineCore.KvConfig roomy = new EngineCore.KvConfig(512, 4, false);
        List<List<Integer>> alone = run(m, new EngineCore.Limits(256, 8, 64), roomy, policy(name), N, false, false, null);
        // 12 usable blocks of 4 tokens: not enough for 8 requests at once, so requests get preempted
        EngineCore.KvConfig tight = new EngineCore.KvConfig(13, 4, true);
        EngineStats[] stats = new EngineStats[1];
        List<List<Integer>> together = run(new HistoryHashModel(VOCAB), new EngineCore.Limits(256, 6, 40, 8), tight,
                policy(name), N, true, false, stats);
        assertEquals(alone, together);
        assertTrue(stats[0].preemptions() > 0, "the tight cache forced preemptions");
        assertTrue(stats[0].prefixCacheHits() > 0, "the shared prefix was reused");
        assertEquals(12, stats[0].kvBlocksTotal());
    }

    @Test
    void seededSamplingSurvivesPreemption() throws Exception {
        List<List<Integer>> alone = run(new HistoryHashModel(VOCAB), new EngineCore.Limits(256, 8, 64),
                new EngineCore.KvConfig(512, 4, false), policy("v1"), N, false, true, null);
        EngineStats[] stats = new EngineStats[1];
        List<List<Integer>> together = run(new HistoryHashModel(VOCAB), new EngineCore.Limits(256, 8, 64),
                new EngineCore.KvConfig(13, 4, true), policy("v1"), N, true, true, stats);
        assertEquals(alone, together);
        assertTrue(stats[0].preemptions() > 0);
    }

    @Test
    void withoutAPolicyRequestsWaitThenComplete() throws Exception {
        AtomicReference<EngineCore.ActivePolicy> current = new AtomicReference<>();
        HistoryHashModel m = new HistoryHashModel(VOCAB);
        try (EngineCore core = new EngineCore(m, new EngineCore.Limits(256, 8, 64), new EngineCore.KvConfig(64, 4, true),
                current::get, Set.of(), 0, "t")) {
            Collector c = new Collector();
            core.submit(new EngineRequest("w", prompt(1), sampling(1, false), 0), c::accept);
            Thread.sleep(150);
            assertTrue(c.outputs.isEmpty());
            assertEquals(1, core.stats().waiting());
            assertNull(core.stats().scheduler());
            current.set(policy("ascend").get());
            core.wakeUp();
            assertEquals(FinishReason.LENGTH, c.await().finishReason());
            assertEquals(11, c.tokens.size());
            assertEquals("ascend", awaitIdle(core).scheduler());
        }
    }

    @Test
    void swappingPoliciesBetweenStepsLosesNothing() throws Exception {
        List<List<Integer>> alone = run(new HistoryHashModel(VOCAB), new EngineCore.Limits(256, 8, 64),
                new EngineCore.KvConfig(512, 4, false), policy("v1"), N, false, false, null);
        EngineCore.ActivePolicy v1 = policy("v1").get();
        EngineCore.ActivePolicy ascend = policy("ascend").get();
        AtomicInteger calls = new AtomicInteger();
        // every step a different policy, and now and then none at all
        Supplier<EngineCore.ActivePolicy> flapping = () -> switch (calls.incrementAndGet() % 5) {
            case 0 -> null;
            case 1, 3 -> v1;
            default -> ascend;
        };
        List<List<Integer>> swapped = run(new HistoryHashModel(VOCAB), new EngineCore.Limits(256, 6, 40, 8),
                new EngineCore.KvConfig(13, 4, true), flapping, N, true, false, null);
        assertEquals(alone, swapped);
        assertTrue(calls.get() > 20);
    }

    @Test
    void aPolicyThatThrowsDoesNotLoseRequests() throws Exception {
        AtomicInteger calls = new AtomicInteger();
        SchedulingPolicy v1 = new ContinuousBatchingPolicy();
        SchedulingPolicy flaky = ctx -> {
            if (calls.incrementAndGet() % 3 == 0) throw new IllegalStateException("boom");
            v1.schedule(ctx);
        };
        List<List<Integer>> alone = run(new HistoryHashModel(VOCAB), new EngineCore.Limits(256, 8, 64),
                new EngineCore.KvConfig(512, 4, false), policy("v1"), 3, false, false, null);
        List<List<Integer>> got = run(new HistoryHashModel(VOCAB), new EngineCore.Limits(256, 8, 64),
                new EngineCore.KvConfig(512, 4, true), () -> new EngineCore.ActivePolicy("flaky", flaky), 3, true, false, null);
        assertEquals(alone, got);
    }

    @Test
    void aRequestThatCanNeverFitIsRejectedAtSubmit() {
        try (EngineCore core = new EngineCore(new HistoryHashModel(VOCAB), new EngineCore.Limits(256, 8, 64),
                new EngineCore.KvConfig(5, 4, true), policy("v1"), Set.of(), 0, "t")) {
            // 4 usable blocks = 16 tokens; 10 + 7 - 1 = 16 fit, 10 + 8 - 1 = 17 do not
            core.validate(new EngineRequest("fits", new int[10], SamplingParams.greedy(7), 0));
            InvalidRequestException e = assertThrows(InvalidRequestException.class,
                    () -> core.submit(new EngineRequest("big", new int[10], SamplingParams.greedy(8), 0), o -> { }));
            assertTrue(e.getMessage().contains("KV cache"), e.getMessage());
            assertEquals("max_tokens", e.param());
        }
    }

    @Test
    void theAscendPolicyFinishesOverLongPromptsWithLength() throws Exception {
        try (EngineCore core = new EngineCore(new HistoryHashModel(VOCAB), new EngineCore.Limits(256, 8, 16),
                new EngineCore.KvConfig(64, 4, true), policy("ascend"), Set.of(), 0, "t")) {
            Collector c = new Collector();
            core.submit(new EngineRequest("long", new int[20], SamplingParams.greedy(3), 0), c::accept);
            var end = c.await();
            assertEquals(FinishReason.LENGTH, end.finishReason());
            assertEquals(0, end.numGeneratedTokens());
            assertEquals(0, awaitIdle(core).kvBlocksUsed());
        }
    }
}
