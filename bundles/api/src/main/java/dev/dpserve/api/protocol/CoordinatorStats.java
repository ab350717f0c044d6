// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.protocol;

import java.util.List;

/**
 * Coordinator → front ends (published about every 100 ms while counts change, every 5 s
 * otherwise, immediately on a wave change). A front end uses only the latest one it has.
 *
 * @param counts         per-rank loads indexed by dp rank, or null when only the wave state changed
 * @param currentWave    the wave the coordinator considers current
 * @param enginesRunning true while the DP group is running a wave
 */
public record CoordinatorStats(List<RankLoad> counts, int currentWave, boolean enginesRunning) implements ProtocolMessage {
    public CoordinatorStats {
        counts = counts == null ? null : List.copyOf(counts);
        if (currentWave < 0) throw new IllegalArgumentException("currentWave must be >= 0, got " + currentWave);
    }
}
