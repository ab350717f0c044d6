// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.engine;

/**
 * One DP rank's lockstep state (MoE models with data parallelism; spec 4.2).
 *
 * @param rank          the DP rank, the {@code engine} label of the metrics
 * @param currentWave   the wave this rank is in
 * @param running       true while the group runs a wave, false while paused
 * @param stepCounter   steps since the current wave started
 * @param dummySteps    1-token dummy forwards run so far (this rank idle while others worked)
 * @param exchanges     DP-wide collectives completed so far (token counts and idle checks)
 * @param exchangeNanos total time spent in those collectives, nanoseconds
 */
public record WaveStats(int rank, int currentWave, boolean running, int stepCounter, long dummySteps,
                        long exchanges, long exchangeNanos) {
}
