// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.coordinator;

import dev.dpserve.api.protocol.CoordinatorStats;
import dev.dpserve.api.protocol.EngineOutputs;
import dev.dpserve.api.protocol.FirstRequest;
import dev.dpserve.api.protocol.ProtocolMessage;
import dev.dpserve.api.protocol.RankLoad;
import dev.dpserve.api.protocol.SchedulerStats;
import dev.dpserve.api.protocol.StartDpWave;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The rows of spec 4.4's table, one event at a time. */
class CoordinatorStateTest {

    private static final long MS = 1_000_000;

    private static EngineOutputs stats(int rank, int waiting, int running, int wave, int step) {
        return EngineOutputs.ofStats(rank, new SchedulerStats(running, waiting, step, wave, 0, 0, 0, 0, 0));
    }

    @Test
    void firstRequestWhilePausedStartsTheWaveExcludingTheTarget() {
        CoordinatorState s = new CoordinatorState(3, 0);
        CoordinatorState.Effect e = s.onFirstRequest(new FirstRequest(2, 0));
        assertEquals(new StartDpWave(0, 2), e.toEngines());
        assertEquals(new CoordinatorStats(null, 0, true), e.publishNow());
        assertTrue(s.enginesRunning());
    }

    @Test
    void firstRequestWhileRunningIsIgnored() {
        CoordinatorState s = new CoordinatorState(2, 0);
        s.onFirstRequest(new FirstRequest(0, 0));
        assertSame(CoordinatorState.Effect.NONE, s.onFirstRequest(new FirstRequest(1, 0)));
    }

    @Test
    void staleFirstRequestWakesEveryEngine() {
        CoordinatorState s = new CoordinatorState(2, 0);
        s.onFirstRequest(new FirstRequest(0, 0));
        s.onEngineOutputs(EngineOutputs.ofWaveComplete(0, 0)); // wave 0 done, paused at 1
        CoordinatorState.Effect e = s.onFirstRequest(new FirstRequest(1, 0)); // the front end still says wave 0
        assertEquals(new StartDpWave(1, ProtocolMessage.NONE), e.toEngines());
    }

    @Test
    void waveCompleteAdvancesAndPauses() {
        CoordinatorState s = new CoordinatorState(2, 0);
        s.onFirstRequest(new FirstRequest(0, 0));
        CoordinatorState.Effect e = s.onEngineOutputs(EngineOutputs.ofWaveComplete(0, 0));
        assertNull(e.toEngines());
        assertEquals(new CoordinatorStats(null, 1, false), e.publishNow());
        // an older completion changes nothing
        assertSame(CoordinatorState.Effect.NONE, s.onEngineOutputs(EngineOutputs.ofWaveComplete(0, 0)));
        assertEquals(1, s.currentWave());
    }

    @Test
    void waveCompleteOfALaterWaveJumpsAhead() {
        CoordinatorState s = new CoordinatorState(2, 0);
        s.onEngineOutputs(EngineOutputs.ofWaveComplete(0, 4));
        assertEquals(5, s.currentWave());
        assertFalse(s.enginesRunning());
    }

    @Test
    void startWaveFromAPausedEngineRestartsTheOthers() {
        CoordinatorState s = new CoordinatorState(3, 0);
        s.onEngineOutputs(EngineOutputs.ofWaveComplete(0, 0)); // paused at wave 1
        CoordinatorState.Effect e = s.onEngineOutputs(EngineOutputs.ofStartWave(2, 1));
        assertEquals(new StartDpWave(1, 2), e.toEngines());
        assertEquals(new CoordinatorStats(null, 1, true), e.publishNow());
        // the same wave again while running: nothing
        assertSame(CoordinatorState.Effect.NONE, s.onEngineOutputs(EngineOutputs.ofStartWave(1, 1)));
        // a newer wave always starts
        assertEquals(new StartDpWave(3, 1), s.onEngineOutputs(EngineOutputs.ofStartWave(1, 3)).toEngines());
        // an older wave never
        assertSame(CoordinatorState.Effect.NONE, s.onEngineOutputs(EngineOutputs.ofStartWave(0, 2)));
    }

    @Test
    void countsArePublishedAfter100msWhenChangedElse5s() {
        CoordinatorState s = new CoordinatorState(2, 0);
        assertEquals(5000, s.pollTimeoutMillis(0));
        assertEquals(4000, s.pollTimeoutMillis(1000 * MS));
        assertEquals(50, s.pollTimeoutMillis(6000 * MS)); // overdue: the 50 ms floor
        CoordinatorState.Effect e = s.onEngineOutputs(stats(1, 3, 2, 0, 0));
        assertSame(CoordinatorState.Effect.NONE, e);
        assertTrue(s.statsChanged());
        assertEquals(70, s.pollTimeoutMillis(30 * MS));
        CoordinatorStats p = s.onPollTimeout(100 * MS);
        assertEquals(new CoordinatorStats(List.of(new RankLoad(0, 0), new RankLoad(3, 2)), 0, false), p);
        assertFalse(s.statsChanged());
        assertEquals(5000, s.pollTimeoutMillis(100 * MS));
    }

    @Test
    void statsOfANewerStepPublishTheEarlierCountsFirst() {
        CoordinatorState s = new CoordinatorState(2, 0);
        s.onEngineOutputs(stats(0, 1, 0, 0, 1)); // step 1: rank 0 has 1 waiting
        s.onEngineOutputs(stats(1, 0, 1, 0, 2)); // step 2 arrives before step 1 was published
        assertEquals(90, s.pollTimeoutMillis(10 * MS)); // the usual 100 ms tick
        assertEquals(0, s.pollTimeoutMillis(500 * MS)); // overdue with a snapshot pending: no 50 ms floor
        assertEquals(List.of(new RankLoad(1, 0), new RankLoad(0, 0)), s.onPollTimeout(10 * MS).counts());
        assertEquals(List.of(new RankLoad(1, 0), new RankLoad(0, 1)), s.onPollTimeout(110 * MS).counts());
        assertFalse(s.statsChanged());
    }

    @Test
    void outOfOrderStatsStillUpdateCountsButAreCounted() {
        CoordinatorState s = new CoordinatorState(2, 0);
        s.onEngineOutputs(stats(0, 0, 1, 1, 5));
        s.onEngineOutputs(stats(1, 2, 0, 0, 7)); // older wave
        assertEquals(1, s.outOfOrderStats());
        assertEquals(List.of(new RankLoad(0, 1), new RankLoad(2, 0)), s.onPollTimeout(200 * MS).counts());
    }

    @Test
    void statsOfAnUnknownRankAreIgnored() {
        CoordinatorState s = new CoordinatorState(2, 0);
        assertSame(CoordinatorState.Effect.NONE, s.onEngineOutputs(stats(5, 1, 1, 0, 1)));
        assertFalse(s.statsChanged());
    }

    @Test
    void racedRequestScenarioOfSpec44() {
        // 1. wave 0 runs; 2. engines finish it and pause at 1; 3. an engine gets a wave-0 request, says start_wave=1;
        // 4. the coordinator starts wave 1 on the others; 5. the front end's stale FIRST_REQ then changes nothing.
        CoordinatorState s = new CoordinatorState(2, 0);
        s.onFirstRequest(new FirstRequest(0, 0));
        s.onEngineOutputs(EngineOutputs.ofWaveComplete(0, 0));
        assertEquals(new StartDpWave(1, 1), s.onEngineOutputs(EngineOutputs.ofStartWave(1, 1)).toEngines());
        assertSame(CoordinatorState.Effect.NONE, s.onFirstRequest(new FirstRequest(1, 0)));
        assertEquals(1, s.currentWave());
        assertTrue(s.enginesRunning());
    }
}
