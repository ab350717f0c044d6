// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.coordinator;

import dev.dpserve.api.protocol.CoordinatorStats;
import dev.dpserve.api.protocol.EngineOutputs;
import dev.dpserve.api.protocol.FirstRequest;
import dev.dpserve.api.protocol.ProtocolMessage;
import dev.dpserve.api.protocol.RankLoad;
import dev.dpserve.api.protocol.SchedulerStats;
import dev.dpserve.api.protocol.StartDpWave;

import java.lang.System.Logger.Level;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The DP coordinator's state machine (spec 4.4), without sockets or clocks: every event returns
 * what to send, and the caller passes the time in. One thread calls everything.
 *
 * <p>State: the global wave, whether the group runs, the latest {@code [waiting, running]} per
 * rank, whether counts changed since they were last published, the newest (wave, step) seen in
 * stats, and an optional snapshot of the counts of the previous step that must be published
 * before newer ones.
 *
 * <p>Publication timing: wave changes are published at once ({@link Effect#publishNow}); counts
 * are published when {@link #pollTimeoutMillis} elapses without an event: 100 ms after the last
 * publication while counts changed, 5000 ms otherwise, never sooner than 50 ms unless a snapshot
 * is pending.
 */
final class CoordinatorState {

    private static final System.Logger LOG = System.getLogger(CoordinatorState.class.getName());

    static final long CHANGED_INTERVAL_MILLIS = 100;
    static final long UNCHANGED_INTERVAL_MILLIS = 5000;
    static final long MIN_POLL_MILLIS = 50;

    /**
     * What an event asks the coordinator to do.
     *
     * @param toEngines  a wave start to publish to every engine, or null
     * @param publishNow a wave-state publication ({@code counts == null}) for the front ends, or null
     */
    record Effect(StartDpWave toEngines, CoordinatorStats publishNow) {
        static final Effect NONE = new Effect(null, null);
    }

    private final int engines;
    private final int[] waiting;
    private final int[] running;
    private int currentWave;
    private boolean enginesRunning;
    private boolean statsChanged;
    private int lastStatsWave = -1;
    private int lastStatsStep = -1;
    private List<RankLoad> lastStepCounts; // snapshot to publish before the live counts, or null
    private long lastPublishNanos;
    private long outOfOrderStats;

    CoordinatorState(int engines, long nowNanos) {
        if (engines < 1) throw new IllegalArgumentException("engines must be >= 1, got " + engines);
        this.engines = engines;
        this.waiting = new int[engines];
        this.running = new int[engines];
        this.lastPublishNanos = nowNanos;
    }

    int currentWave() { return currentWave; }

    boolean enginesRunning() { return enginesRunning; }

    boolean statsChanged() { return statsChanged; }

    long outOfOrderStats() { return outOfOrderStats; }

    /** A front end sent a request to a group it believed paused. */
    Effect onFirstRequest(FirstRequest m) {
        if (enginesRunning) return Effect.NONE; // someone woke the group already
        // A stale wave means the target engine may already be past it and paused: wake everyone.
        int exclude = m.wave() < currentWave ? ProtocolMessage.NONE : m.targetRank();
        enginesRunning = true;
        return new Effect(new StartDpWave(currentWave, exclude), waveState());
    }

    /** Stats, wave_complete or start_wave from an engine (several may ride on one message). */
    Effect onEngineOutputs(EngineOutputs m) {
        int rank = m.engineRank();
        if (rank >= engines) {
            LOG.log(Level.WARNING, "coordinator: ignored a message from DP rank " + rank + " (the group has " + engines + ")");
            return Effect.NONE;
        }
        if (m.stats() != null) onStats(rank, m.stats());
        StartDpWave start = null;
        boolean changed = false;
        if (m.waveComplete() != ProtocolMessage.NONE && currentWave <= m.waveComplete()) {
            currentWave = m.waveComplete() + 1;
            enginesRunning = false;
            changed = true;
        }
        int w = m.startWave();
        if (w != ProtocolMessage.NONE && (w > currentWave || (w == currentWave && !enginesRunning))) {
            currentWave = w;
            enginesRunning = true;
            start = new StartDpWave(w, rank);
            changed = true;
        }
        return changed ? new Effect(start, waveState()) : Effect.NONE;
    }

    private void onStats(int rank, SchedulerStats s) {
        int wave = s.currentWave();
        int step = s.stepCounter();
        if (wave > lastStatsWave || (wave == lastStatsWave && step > lastStatsStep)) {
            // Stats of a newer step: counts not yet published belong to the previous step; keep them for the next tick.
            if (statsChanged) lastStepCounts = counts();
            lastStatsWave = wave;
            lastStatsStep = step;
        } else if (wave != lastStatsWave || step != lastStatsStep) {
            outOfOrderStats++;
            LOG.log(Level.DEBUG, "coordinator: stats of (wave " + wave + ", step " + step + ") from DP rank " + rank
                    + " arrived after (" + lastStatsWave + ", " + lastStatsStep + ")");
        }
        waiting[rank] = s.waiting();
        running[rank] = s.running();
        statsChanged = true;
    }

    /** How long the coordinator may wait for the next event before publishing counts. */
    long pollTimeoutMillis(long nowNanos) {
        long elapsed = (nowNanos - lastPublishNanos) / 1_000_000;
        long waitFor = statsChanged ? CHANGED_INTERVAL_MILLIS : UNCHANGED_INTERVAL_MILLIS;
        long min = lastStepCounts == null ? MIN_POLL_MILLIS : 0;
        return Math.max(min, waitFor - elapsed);
    }

    /** The poll timed out: the counts publication (the pending snapshot first, else the live counts). */
    CoordinatorStats onPollTimeout(long nowNanos) {
        List<RankLoad> counts;
        if (lastStepCounts != null) {
            counts = lastStepCounts;
            lastStepCounts = null;
        } else {
            counts = counts();
            statsChanged = false;
        }
        lastPublishNanos = nowNanos;
        return new CoordinatorStats(counts, currentWave, enginesRunning);
    }

    private CoordinatorStats waveState() {
        return new CoordinatorStats(null, currentWave, enginesRunning);
    }

    private List<RankLoad> counts() {
        List<RankLoad> out = new ArrayList<>(engines);
        for (int r = 0; r < engines; r++) out.add(new RankLoad(waiting[r], running[r]));
        return out;
    }

    @Override
    public String toString() {
        return "CoordinatorState[wave " + currentWave + (enginesRunning ? " running" : " paused") + ", waiting "
                + Arrays.toString(waiting) + ", running " + Arrays.toString(running) + "]";
    }
}
