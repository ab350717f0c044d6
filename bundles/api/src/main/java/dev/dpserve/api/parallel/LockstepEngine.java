// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.parallel;

import org.osgi.annotation.versioning.ProviderType;

/**
 * An engine that can step in lockstep with the other ranks of a DP group (vLLM's
 * {@code DPEngineCoreProc}, spec 4.2-4.3): every forward, real or a 1-token dummy, starts with
 * the group's token-count all-reduce; every 32 steps the group decides whether any rank has
 * work; when none has, all ranks pause and advance the wave.
 *
 * <p>The in-process engine implements this next to {@code InferenceEngine}; the transport's engine
 * bridge calls {@link #joinGroup} after the handshake when the model is MoE and N > 1, then feeds
 * wave information in the order it arrives: {@link #requestWave} immediately before the
 * corresponding {@code submit}, {@link #startWave} for the coordinator's START_DP_WAVE.
 *
 * <p>Thread-safe: the calls are queued to the engine loop in call order.
 */
@ProviderType
public interface LockstepEngine {

    /**
     * Switches the engine to lockstep mode with {@code group} (rank = DP rank); the engine owns
     * the communicator from now on and closes it when it stops.
     */
    void joinGroup(Communicator group, WaveEvents events);

    /** The wave an ADD was tagged with; call right before submitting that request. */
    void requestWave(int wave);

    /** The coordinator's START_DP_WAVE. */
    void startWave(int wave, int excludeRank);

    /** The lockstep state now, or null when not in lockstep mode. */
    dev.dpserve.api.engine.WaveStats waveStats();

    /**
     * Why lockstep mode ended, or null: a collective failed (a peer is gone or hung). The engine
     * then refuses requests and reports itself unhealthy; the rank should be reported dead.
     */
    String lockstepFailure();
}
