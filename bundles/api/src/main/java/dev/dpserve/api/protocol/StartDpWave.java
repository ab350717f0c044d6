// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.protocol;

/**
 * Coordinator → all engines (published): the DP group is running wave {@code wave}. An engine
 * other than {@code excludeRank} with {@code wave >= current} adopts it and, if paused, starts
 * stepping (dummy batches when it has no work) until the group agrees that all ranks are idle
 * (spec 4.3).
 *
 * @param excludeRank the rank that already knows (it received the request that started the
 *                    wave), or {@link ProtocolMessage#NONE} to wake every engine
 */
public record StartDpWave(int wave, int excludeRank) implements EngineInput {
    public StartDpWave {
        if (wave < 0) throw new IllegalArgumentException("wave must be >= 0, got " + wave);
        if (excludeRank < NONE) throw new IllegalArgumentException("excludeRank must be >= -1, got " + excludeRank);
    }
}
