// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.engine;

import dev.dpserve.api.engine.WaveStats;
import dev.dpserve.api.model.CausalLm;
import dev.dpserve.api.parallel.Communicator;
import dev.dpserve.api.parallel.ReduceOp;
import dev.dpserve.api.parallel.WaveEvents;

import java.util.List;
import java.util.logging.Logger;

/**
 * One rank's wave state in a lockstep DP group (spec 4.2-4.3), driven by the engine loop thread
 * only: the current wave, whether the group runs, the step counter, the DP-wide exchanges and the
 * dummy forwards. {@link #stats()} may be read from any thread.
 *
 * <p>Every forward, real or dummy, is preceded by {@link #exchangeTokenCount} (the MAX over the
 * group of the tokens each rank is about to run: what a padded MoE dispatch needs, spec 5.3); every
 * {@value #CHECK_INTERVAL} steps {@link #afterForward} runs the MAX of "has unfinished requests".
 * Both are collectives, so a rank that skips a step stalls the others until the communicator's
 * timeout; all ranks make the same sequence of calls because their step counters reset together.
 */
final class Lockstep {

    private static final Logger LOG = Logger.getLogger(Lockstep.class.getName());
    /** Steps between the group's idle checks (vLLM's 32). */
    static final int CHECK_INTERVAL = 32;

    private final Communicator group;
    private final WaveEvents events;
    private final int dummyBlock;
    private int currentWave;
    private boolean running;
    private int stepCounter;
    private long dummySteps;
    private long lastGroupMaxTokens;
    private boolean exchangedThisStep;
    private volatile WaveStats stats;

    /** @param dummyBlock a KV block reserved for dummy forwards: no request ever holds it */
    Lockstep(Communicator group, WaveEvents events, int dummyBlock) {
        this.group = group;
        this.events = events;
        this.dummyBlock = dummyBlock;
        publish();
    }

    int rank() { return group.rank(); }

    boolean running() { return running; }

    int currentWave() { return currentWave; }

    int stepCounter() { return stepCounter; }

    WaveStats stats() { return stats; }

    Communicator group() { return group; }

    /** An ADD tagged with {@code requestWave} arrived (before the request is queued). */
    void onRequestWave(int requestWave) {
        if (requestWave > currentWave) {
            currentWave = requestWave; // the front end already knows a newer wave
        } else if (requestWave < currentWave && !running) {
            // A stale request reached a paused engine: the coordinator must wake the others, or this
            // rank would step alone and stall in its first exchange.
            events.startWave(currentWave);
        }
        publish();
    }

    /** START_DP_WAVE from the coordinator. */
    void onStartWave(int wave, int excludeRank) {
        if (excludeRank != group.rank() && wave >= currentWave) {
            currentWave = wave;
            running = true;
        }
        publish();
    }

    /** The DP-wide token-count all-reduce that precedes every forward; returns the group's MAX. */
    long exchangeTokenCount(int localTokens) {
        lastGroupMaxTokens = group.allReduce(localTokens, ReduceOp.MAX);
        exchangedThisStep = true;
        return lastGroupMaxTokens;
    }

    /** A 1-token forward on the reserved block, so this rank joins the group's step while it has no work. */
    void dummyForward(CausalLm model) {
        exchangeTokenCount(1);
        model.forward(List.of(new CausalLm.BatchEntry(new int[] {dummyBlock}, 0, new int[] {0}, false)));
        dummySteps++;
    }

    /**
     * After this step's forward: count it and, every {@value #CHECK_INTERVAL} steps, ask the group
     * whether any rank has unfinished requests. When none has, the wave ends on every rank at once:
     * rank 0 reports it and all advance the wave and pause.
     */
    void afterForward(boolean localUnfinished) {
        exchangedThisStep = false;
        stepCounter++;
        if (stepCounter % CHECK_INTERVAL != 0) {
            running = true;
        } else {
            // Two values, so a rank at a token exchange (one value) can never be mistaken for one at this check.
            long[] r = group.allReduce(new long[] {localUnfinished ? 1 : 0, stepCounter}, ReduceOp.MAX);
            if (r[1] != stepCounter) {
                throw new dev.dpserve.api.parallel.CollectiveException("DP rank " + group.rank() + " is at step " + stepCounter
                        + " of wave " + currentWave + " but another rank is at step " + r[1] + "; the ranks are out of step");
            }
            running = r[0] != 0;
        }
        if (!running) {
            if (group.rank() == 0) events.waveComplete(currentWave);
            int done = currentWave;
            currentWave++;
            stepCounter = 0;
            LOG.fine(() -> "DP rank " + group.rank() + ": wave " + done + " complete; paused at wave " + currentWave);
        }
        publish();
    }

    /**
     * A step failed locally (the model threw; its requests were failed): the group must not notice,
     * so the step still takes part in this step's exchange (with no tokens, if it had not yet) and
     * is counted.
     */
    void completeFailedStep(boolean localUnfinished) {
        if (!exchangedThisStep) exchangeTokenCount(0);
        afterForward(localUnfinished);
    }

    private void publish() {
        stats = new WaveStats(group.rank(), currentWave, running, stepCounter, dummySteps, group.calls(), group.totalNanos());
    }

    long lastGroupMaxTokens() { return lastGroupMaxTokens; }

    void close() {
        group.close();
    }
}
