// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dpserve.api.engine.EngineRequest;
import dev.dpserve.api.engine.FinishReason;
import dev.dpserve.api.engine.InvalidRequestException;
import dev.dpserve.api.engine.RequestOutput;
import dev.dpserve.api.engine.SamplingParams;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class EngineCoreTest {

    private static final int VOCAB = 50;
    static final EngineCore.KvConfig KV = new EngineCore.KvConfig(1024, 4, true);
    static final java.util.function.Supplier<EngineCore.ActivePolicy> V1 =
            () -> new EngineCore.ActivePolicy("v1", new dev.dpserve.scheduler.v1.ContinuousBatchingPolicy());

    /** Collects a request's outputs; completes when it finishes. */
    static final class Collector {
        final List<Integer> tokens = new ArrayList<>();
        final List<RequestOutput> outputs = new ArrayList<>();
        final CompletableFuture<RequestOutput> done = new CompletableFuture<>();

        synchronized void accept(RequestOutput o) {
            outputs.add(o);
            for (int t : o.newTokenIds()) tokens.add(t);
            if (o.finished()) done.complete(o);
        }

        RequestOutput await() throws Exception {
            return done.get(20, TimeUnit.SECONDS);
        }
    }

    private static int[] prompt(int n, int salt) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) p[i] = (i * 7 + salt) % VOCAB;
        return p;
    }

    private static Collector run(EngineCore core, String id, int[] prompt, SamplingParams sp) {
        Collector c = new Collector();
        core.submit(new EngineRequest(id, prompt, sp, System.nanoTime()), c::accept);
        return c;
    }

    /** The reference: greedy decoding by direct calls on the history function, no engine involved. */
    private static List<Integer> greedyReference(HistoryHashModel m, int[] prompt, int n) {
        List<Integer> out = new ArrayList<>();
        int[] hist = prompt.clone();
        for (int i = 0; i < n; i++) {
            int t = Sampler.argmax(m.logitsFor(hist));
            out.add(t);
            hist = java.util.Arrays.copyOf(hist, hist.length + 1);
            hist[hist.length - 1] = t;
        }
        return out;
    }

    @Test
    void chunkedPrefillRespectsTheTokenBudgetAndChangesNothing() throws Exception {
        HistoryHashModel m = new HistoryHashModel(VOCAB);
        try (EngineCore core = new EngineCore(m, new EngineCore.Limits(256, 8, 4), KV, V1, Set.of(), 0, "t")) {
            Collector c = run(core, "a", prompt(10, 1), SamplingParams.greedy(6));
            assertEquals(FinishReason.LENGTH, c.await().finishReason());
            assertEquals(greedyReference(m, prompt(10, 1), 6), c.tokens);
            assertArrayEquals(new int[] {4}, m.batchShapes.get(0));
            assertArrayEquals(new int[] {4}, m.batchShapes.get(1));
            assertArrayEquals(new int[] {2}, m.batchShapes.get(2));
            for (int[] shape : m.batchShapes) assertTrue(java.util.Arrays.stream(shape).sum() <= 4);
        }
    }

    @Test
    void concurrentRequestsShareForwardPassesAndMatchOneByOne() throws Exception {
        HistoryHashModel m = new HistoryHashModel(VOCAB);
        List<Collector> cs = new ArrayList<>();
        try (EngineCore core = new EngineCore(m, new EngineCore.Limits(256, 3, 16), KV, V1, Set.of(), 0, "t")) {
            for (int i = 0; i < 6; i++) cs.add(run(core, "r" + i, prompt(3 + i * 5, i), SamplingParams.greedy(8 + i)));
            for (Collector c : cs) c.await();
        }
        for (int i = 0; i < 6; i++) assertEquals(greedyReference(m, prompt(3 + i * 5, i), 8 + i), cs.get(i).tokens, "request " + i);
        int maxEntries = m.batchShapes.stream().mapToInt(s -> s.length).max().orElse(0);
        assertTrue(maxEntries > 1, "several sequences in one forward pass");
        assertTrue(maxEntries <= 3, "max_num_seqs respected");
        for (int[] shape : m.batchShapes) assertTrue(java.util.Arrays.stream(shape).sum() <= 16, "budget");
    }

    @Test
    void seededSamplingDoesNotDependOnBatching() throws Exception {
        SamplingParams sp = new SamplingParams(0.8, 0.9, 20, 0.0, 1234L, 12, 0, Set.of(), false, -1);
        HistoryHashModel m1 = new HistoryHashModel(VOCAB);
        List<Integer> alone;
        try (EngineCore core = new EngineCore(m1, new EngineCore.Limits(256, 8, 64), KV, V1, Set.of(), 0, "t")) {
            Collector c = run(core, "x", prompt(5, 3), sp);
            c.await();
            alone = c.tokens;
        }
        HistoryHashModel m2 = new HistoryHashModel(VOCAB);
        try (EngineCore core = new EngineCore(m2, new EngineCore.Limits(256, 8, 64), KV, V1, Set.of(), 99, "t")) {
            List<Collector> noise = new ArrayList<>();
            for (int i = 0; i < 4; i++) noise.add(run(core, "n" + i, prompt(7, i), sp.withSeed(null)));
            Collector c = run(core, "x", prompt(5, 3), sp);
            c.await();
            for (Collector n : noise) n.await();
            assertEquals(alone, c.tokens);
        }
    }

    @Test
    void stopConditions() throws Exception {
        HistoryHashModel m = new HistoryHashModel(VOCAB);
        List<Integer> ref = greedyReference(m, prompt(4, 2), 10);
        int eos = ref.get(3);
        int stopId = ref.get(5);
        try (EngineCore core = new EngineCore(m, new EngineCore.Limits(256, 8, 64), KV, V1, Set.of(eos), 0, "t")) {
            RequestOutput eosEnd = run(core, "eos", prompt(4, 2), SamplingParams.greedy(10)).await();
            assertEquals(FinishReason.STOP, eosEnd.finishReason());
            assertNull(eosEnd.stopReason());
            assertEquals(4 - (ref.indexOf(eos) == 3 ? 0 : 0), eosEnd.numGeneratedTokens());

            SamplingParams ignore = new SamplingParams(0, 1, 0, 0, null, 10, 0, Set.of(stopId), true, -1);
            RequestOutput stopEnd = run(core, "stop", prompt(4, 2), ignore).await();
            assertEquals(FinishReason.STOP, stopEnd.finishReason());
            assertEquals(stopId, stopEnd.stopReason());
            assertEquals(ref.indexOf(stopId) + 1, stopEnd.numGeneratedTokens());

            SamplingParams minTokens = new SamplingParams(0, 1, 0, 0, null, 10, 6, Set.of(), false, -1);
            Collector c = run(core, "min", prompt(4, 2), minTokens);
            RequestOutput minEnd = c.await();
            assertTrue(c.tokens.subList(0, Math.min(6, c.tokens.size())).stream().noneMatch(t -> t == eos));
            assertTrue(minEnd.numGeneratedTokens() >= 6);
        }
    }

    @Test
    void abortFreesTheRequestAndInvalidInputIsRejected() throws Exception {
        HistoryHashModel m = new HistoryHashModel(VOCAB);
        try (EngineCore core = new EngineCore(m, new EngineCore.Limits(64, 8, 64), KV, V1, Set.of(), 0, "t")) {
            Collector c = new Collector();
            core.submit(new EngineRequest("long", prompt(3, 1), new SamplingParams(0, 1, 0, 0, null, 60, 0, Set.of(), true, -1),
                    System.nanoTime()), o -> {
                        c.accept(o);
                        if (o.numGeneratedTokens() == 2 && !o.finished()) core.abort("long");
                    });
            RequestOutput end = c.await();
            assertEquals(FinishReason.ABORT, end.finishReason());
            assertTrue(end.numGeneratedTokens() < 60);
            assertThrows(InvalidRequestException.class, () -> core.submit(
                    new EngineRequest("bad", new int[] {1, VOCAB}, SamplingParams.greedy(1), 0), o -> { }));
            assertThrows(InvalidRequestException.class, () -> core.submit(
                    new EngineRequest("empty", new int[0], SamplingParams.greedy(1), 0), o -> { }));
            assertThrows(InvalidRequestException.class, () -> core.submit(
                    new EngineRequest("toolong", prompt(65, 1), SamplingParams.greedy(1), 0), o -> { }));
            Thread.sleep(50);
            assertEquals(0, core.stats().running() + core.stats().waiting());
        }
    }

    @Test
    void logprobsAreOfTheRawDistribution() throws Exception {
        HistoryHashModel m = new HistoryHashModel(VOCAB);
        try (EngineCore core = new EngineCore(m, new EngineCore.Limits(64, 8, 64), KV, V1, Set.of(), 0, "t")) {
            SamplingParams sp = new SamplingParams(0, 1, 0, 0, null, 3, 0, Set.of(), false, 5);
            Collector c = run(core, "lp", prompt(4, 4), sp);
            c.await();
            float[] logits = m.logitsFor(prompt(4, 4));
            double z = 0;
            for (float v : logits) z += Math.exp(v);
            var first = c.outputs.get(0).logprobs().get(0);
            assertNotNull(first);
            assertEquals(logits[first.tokenId()] - Math.log(z), first.logprob(), 1e-5);
            assertEquals(1, first.rank());
            assertEquals(5, first.topIds().length);
            for (int i = 1; i < 5; i++) assertTrue(first.topLogprobs()[i - 1] >= first.topLogprobs()[i]);
        }
    }

    /** Regression: a listener throwing an Error (a NoClassDefFoundError from a metrics library) killed the loop. */
    @Test
    void aFailingListenerNeverStopsTheEngine() throws Exception {
        HistoryHashModel m = new HistoryHashModel(VOCAB);
        try (EngineCore core = new EngineCore(m, new EngineCore.Limits(256, 8, 64), KV, V1, Set.of(), 0, "t")) {
            core.submit(new EngineRequest("bad", prompt(4, 1), SamplingParams.greedy(4), System.nanoTime()), o -> {
                throw new NoClassDefFoundError("simulated");
            });
            Collector good = run(core, "good", prompt(5, 2), SamplingParams.greedy(6));
            assertEquals(FinishReason.LENGTH, good.await().finishReason());
            assertEquals(greedyReference(m, prompt(5, 2), 6), good.tokens);
            assertNull(core.failure());
        }
    }
}
