// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dpserve.api.engine.EngineRequest;
import dev.dpserve.api.engine.FinishReason;
import dev.dpserve.api.engine.RequestOutput;
import dev.dpserve.api.engine.SamplingParams;
import dev.dpserve.api.engine.WaveStats;
import dev.dpserve.api.parallel.Communicator;
import dev.dpserve.api.parallel.WaveEvents;
import dev.dpserve.parallel.TestGroups;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Engine loops of 2-3 DP ranks in threads, stepping in lockstep over the real JeroMQ communicator
 * on loopback. The test plays the coordinator's part (spec 4.4): a FIRST_REQ becomes a
 * START_DP_WAVE to the other ranks, a rank's start_wave becomes one to the others.
 */
class LockstepTest {

    private static final int VOCAB = 50;
    private final List<EngineCore> cores = new ArrayList<>();
    private final List<HistoryHashModel> models = new ArrayList<>();
    private final List<String> events = new CopyOnWriteArrayList<>();

    /** The test's coordinator: relays start_wave to the other ranks, records wave_complete. */
    private final class Relay implements WaveEvents {
        final int rank;

        Relay(int rank) {
            this.rank = rank;
        }

        @Override
        public void waveComplete(int wave) {
            events.add("complete " + wave + " from " + rank);
        }

        @Override
        public void startWave(int wave) {
            events.add("start " + wave + " from " + rank);
            for (int r = 0; r < cores.size(); r++) cores.get(r).startWave(wave, rank);
        }
    }

    /** Rank models: the history model, whose forward throws once when asked to (a kernel failure). */
    private static final class FailingOnce implements dev.dpserve.api.model.CausalLm {
        final HistoryHashModel inner;
        volatile boolean failNextRealForward;

        FailingOnce(HistoryHashModel inner) {
            this.inner = inner;
        }

        @Override public dev.dpserve.api.model.ModelInfo info() { return inner.info(); }
        @Override public dev.dpserve.api.model.KvCacheLayout kvCacheLayout() { return inner.kvCacheLayout(); }
        @Override public void allocateKvCache(int numBlocks, int blockSize) { inner.allocateKvCache(numBlocks, blockSize); }
        @Override public void close() { inner.close(); }

        @Override
        public float[][] forward(List<BatchEntry> batch) {
            if (failNextRealForward && batch.stream().anyMatch(BatchEntry::wantLogits)) {
                failNextRealForward = false;
                throw new IllegalStateException("simulated kernel failure");
            }
            return inner.forward(batch);
        }
    }

    private final List<FailingOnce> wrappers = new ArrayList<>();

    private void startGroup(int size, Duration timeout) throws Exception {
        List<Communicator> group = TestGroups.loopback(size, timeout);
        for (int r = 0; r < size; r++) {
            HistoryHashModel m = new HistoryHashModel(VOCAB);
            FailingOnce w = new FailingOnce(m);
            wrappers.add(w);
            EngineCore core = new EngineCore(w, new EngineCore.Limits(256, 8, 64), EngineCoreTest.KV, EngineCoreTest.V1, Set.of(),
                    0, Integer.toString(r));
            core.joinGroup(group.get(r), new Relay(r));
            models.add(m);
            cores.add(core);
        }
        waitFor(() -> cores.stream().allMatch(c -> c.waveStats() != null), "all ranks in lockstep mode");
    }

    @AfterEach
    void stop() {
        for (EngineCore c : cores) c.close();
    }

    private static int[] prompt(int n, int salt) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) p[i] = (i * 7 + salt) % VOCAB;
        return p;
    }

    /** What a front end does for a request while it believes the group paused: ADD to the target, FIRST_REQ → START to the rest. */
    private EngineCoreTest.Collector firstRequest(int target, int wave, String id, int[] prompt, int maxTokens) {
        EngineCoreTest.Collector c = submit(target, wave, id, prompt, maxTokens);
        for (int r = 0; r < cores.size(); r++) cores.get(r).startWave(wave, target);
        return c;
    }

    private EngineCoreTest.Collector submit(int rank, int wave, String id, int[] prompt, int maxTokens) {
        EngineCoreTest.Collector c = new EngineCoreTest.Collector();
        cores.get(rank).requestWave(wave);
        cores.get(rank).submit(new EngineRequest(id, prompt, SamplingParams.greedy(maxTokens), System.nanoTime()), c::accept);
        return c;
    }

    private static List<Integer> greedyReference(HistoryHashModel m, int[] prompt, int n) {
        List<Integer> out = new ArrayList<>();
        int[] hist = prompt.clone();
        for (int i = 0; i < n; i++) {
            int t = Sampler.argmax(m.logitsFor(hist));
            out.add(t);
            hist = Arrays.copyOf(hist, hist.length + 1);
            hist[hist.length - 1] = t;
        }
        return out;
    }

    private WaveStats wave(int rank) {
        return cores.get(rank).waveStats();
    }

    private boolean allPausedAt(int wave) {
        return cores.stream().allMatch(c -> c.waveStats() != null && !c.waveStats().running() && c.waveStats().currentWave() == wave);
    }

    private static void waitFor(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) throw new AssertionError("timed out waiting for " + what);
            Thread.sleep(5);
        }
    }

    @Test
    void idleRankRunsDummyStepsInLockstepThenAllPause() throws Exception {
        startGroup(2, Duration.ofSeconds(10));
        int[] p = prompt(9, 3);
        EngineCoreTest.Collector c = firstRequest(0, 0, "a", p, 12);
        RequestOutput last = c.await();
        assertEquals(FinishReason.LENGTH, last.finishReason());
        assertEquals(greedyReference(models.get(0), p, 12), c.tokens, "dummy forwards must not disturb real requests");

        waitFor(() -> allPausedAt(1), "both ranks paused at wave 1");
        assertTrue(events.contains("complete 0 from 0"), events.toString());
        assertTrue(events.stream().noneMatch(e -> e.startsWith("complete") && !e.endsWith("from 0")), "only rank 0 reports: " + events);
        // Lockstep: every step of one rank is a step of the other, real or dummy; the wave ends on a multiple of 32.
        long steps0 = cores.get(0).stats().steps();
        long steps1 = cores.get(1).stats().steps();
        assertEquals(steps0, steps1);
        assertEquals(0, steps0 % Lockstep.CHECK_INTERVAL);
        // Rank 1 never had work: all its steps were dummies; rank 0 ran 12 real ones (1 prefill + 11 decodes) + dummies.
        assertEquals(steps1, wave(1).dummySteps());
        assertEquals(steps0 - 12, wave(0).dummySteps());
        assertTrue(wave(1).dummySteps() > 0);
        // Each forward did one exchange, each 32-step boundary one more.
        assertEquals(steps0 + steps0 / Lockstep.CHECK_INTERVAL, wave(0).exchanges());
        assertTrue(wave(0).exchangeNanos() > 0);

        // Paused: no forward at all while nothing happens (the loop blocks on its input).
        int forwards = models.get(1).shapes().size();
        Thread.sleep(500);
        assertEquals(forwards, models.get(1).shapes().size());
        assertEquals(steps0, cores.get(0).stats().steps());
    }

    @Test
    void aNewRequestWakesEveryRankAndTheNextWaveEnds() throws Exception {
        startGroup(2, Duration.ofSeconds(10));
        firstRequest(1, 0, "a", prompt(5, 1), 3).await();
        waitFor(() -> allPausedAt(1), "paused at wave 1");
        long before = cores.get(0).stats().steps();
        EngineCoreTest.Collector c = firstRequest(1, 1, "b", prompt(6, 2), 4);
        assertEquals(FinishReason.LENGTH, c.await().finishReason());
        waitFor(() -> allPausedAt(2), "paused at wave 2");
        assertEquals(before + Lockstep.CHECK_INTERVAL, cores.get(0).stats().steps());
        assertEquals(cores.get(0).stats().steps(), cores.get(1).stats().steps());
    }

    @Test
    void staleWaveRequestOnAPausedRankRestartsTheGroup() throws Exception {
        startGroup(2, Duration.ofSeconds(10));
        firstRequest(0, 0, "a", prompt(5, 1), 2).await();
        waitFor(() -> allPausedAt(1), "paused at wave 1");
        // The front end still believes wave 0 runs: no FIRST_REQ, a wave-0 ADD to rank 1.
        EngineCoreTest.Collector c = submit(1, 0, "b", prompt(7, 4), 5);
        assertEquals(FinishReason.LENGTH, c.await().finishReason());
        assertEquals(greedyReference(models.get(1), prompt(7, 4), 5), c.tokens);
        assertTrue(events.contains("start 1 from 1"), events.toString());
        waitFor(() -> allPausedAt(2), "paused at wave 2");
    }

    @Test
    void coldStartOnANonZeroRankAndANewerWaveAdvances() throws Exception {
        startGroup(3, Duration.ofSeconds(10));
        // Nothing ran yet anywhere: the first request lands on rank 2 at wave 0.
        EngineCoreTest.Collector c = firstRequest(2, 0, "a", prompt(4, 2), 3);
        assertEquals(FinishReason.LENGTH, c.await().finishReason());
        waitFor(() -> allPausedAt(1), "paused at wave 1");
        // A front end that knows a newer wave (here 4) advances the rank it sends to, and the START brings the rest.
        EngineCoreTest.Collector d = firstRequest(0, 4, "b", prompt(4, 5), 2);
        assertEquals(FinishReason.LENGTH, d.await().finishReason());
        waitFor(() -> allPausedAt(5), "paused at wave 5");
        assertTrue(events.contains("complete 4 from 0"), events.toString());
    }

    @Test
    void startForAnOlderWaveIsIgnoredByAPausedRank() throws Exception {
        startGroup(2, Duration.ofSeconds(10));
        firstRequest(0, 0, "a", prompt(3, 1), 2).await();
        waitFor(() -> allPausedAt(1), "paused at wave 1");
        long steps = cores.get(1).stats().steps();
        cores.get(1).startWave(0, 0); // late START of the finished wave: no burst of dummy forwards
        cores.get(1).abort("nothing"); // other input does not wake a paused rank either
        Thread.sleep(300);
        assertEquals(steps, cores.get(1).stats().steps());
        assertTrue(allPausedAt(1));
    }

    @Test
    void aVanishedRankFailsTheOthersWithAReasonInsteadOfHanging() throws Exception {
        startGroup(2, Duration.ofMillis(1500));
        firstRequest(0, 0, "a", prompt(3, 1), 2).await();
        waitFor(() -> allPausedAt(1), "paused at wave 1");
        cores.get(1).close(); // rank 1's process is gone
        EngineCoreTest.Collector c = submit(0, 1, "b", prompt(3, 2), 50);
        RequestOutput out = c.await();
        assertEquals(FinishReason.ABORT, out.finishReason());
        assertNotNull(out.error());
        assertTrue(out.error().contains("left lockstep"), out.error());
        assertNotNull(cores.get(0).failure());
        assertNull(cores.get(0).waveStats());
    }

    @Test
    void aFailedForwardFailsItsRequestsButKeepsTheGroupInStep() throws Exception {
        startGroup(2, Duration.ofSeconds(10));
        wrappers.get(0).failNextRealForward = true;
        EngineCoreTest.Collector c = firstRequest(0, 0, "a", prompt(6, 1), 5);
        RequestOutput out = c.await();
        assertEquals(FinishReason.ABORT, out.finishReason());
        assertTrue(out.error().contains("simulated kernel failure"), out.error());
        waitFor(() -> allPausedAt(1), "both ranks paused at wave 1 despite the failure");
        assertEquals(cores.get(0).stats().steps(), cores.get(1).stats().steps());
        assertNull(cores.get(0).failure());
        // and the group still works
        EngineCoreTest.Collector d = firstRequest(1, 1, "b", prompt(6, 2), 4);
        assertEquals(FinishReason.LENGTH, d.await().finishReason());
        assertEquals(greedyReference(models.get(1), prompt(6, 2), 4), d.tokens);
        waitFor(() -> allPausedAt(2), "paused at wave 2");
    }
}
