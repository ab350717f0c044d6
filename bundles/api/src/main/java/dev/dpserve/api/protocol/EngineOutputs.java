// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.protocol;

import java.util.List;

/**
 * Engine → front end (per client index) or → coordinator: one step's worth of outputs and events.
 * A batch for the coordinator carries no request deltas, only stats and wave events.
 *
 * @param engineRank       the sender's dp rank
 * @param outputs          request deltas of this step for this front end, possibly empty
 * @param stats            scheduler stats, or null if not included in this batch
 * @param finishedRequests every request of this front end that finished since the last batch,
 *                         aborted ones included, so the front end can forget its abort routing
 * @param waveComplete     the wave that just completed (rank 0 → coordinator only), or {@link ProtocolMessage#NONE}
 * @param startWave        ask the coordinator to start this wave because a stale-wave request
 *                         reached this paused engine (spec 4.3), or {@link ProtocolMessage#NONE}
 * @param utilityResult    the answer to a {@link UtilityCall}, or null
 */
public record EngineOutputs(int engineRank, List<RequestDelta> outputs, SchedulerStats stats,
                            List<String> finishedRequests, int waveComplete, int startWave,
                            UtilityResult utilityResult) implements ProtocolMessage {
    public EngineOutputs {
        if (engineRank < 0) throw new IllegalArgumentException("engineRank must be >= 0, got " + engineRank);
        outputs = List.copyOf(outputs);
        finishedRequests = List.copyOf(finishedRequests);
        if (waveComplete < NONE || startWave < NONE) throw new IllegalArgumentException("waves must be >= -1");
    }

    /** A batch of request deltas for a front end. */
    public static EngineOutputs ofDeltas(int engineRank, List<RequestDelta> outputs, List<String> finished) {
        return new EngineOutputs(engineRank, outputs, null, finished, NONE, NONE, null);
    }

    /** A stats-only batch for the coordinator. */
    public static EngineOutputs ofStats(int engineRank, SchedulerStats stats) {
        return new EngineOutputs(engineRank, List.of(), stats, List.of(), NONE, NONE, null);
    }

    /** Rank 0 → coordinator: the DP group finished {@code wave} and paused. */
    public static EngineOutputs ofWaveComplete(int engineRank, int wave) {
        return new EngineOutputs(engineRank, List.of(), null, List.of(), wave, NONE, null);
    }

    /** A paused engine got a stale-wave request → coordinator: restart everyone at {@code wave}. */
    public static EngineOutputs ofStartWave(int engineRank, int wave) {
        return new EngineOutputs(engineRank, List.of(), null, List.of(), NONE, wave, null);
    }
}
