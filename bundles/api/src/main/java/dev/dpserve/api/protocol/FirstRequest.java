// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.protocol;

/**
 * Front end → coordinator: a request was sent to {@code targetRank} while the front end believed
 * the engines paused; the coordinator starts {@code wave} on the others (spec 3.4, 4.4). A
 * {@code wave} older than the coordinator's current one wakes every engine.
 */
public record FirstRequest(int targetRank, int wave) implements ProtocolMessage {
    public FirstRequest {
        if (targetRank < 0) throw new IllegalArgumentException("targetRank must be >= 0, got " + targetRank);
        if (wave < 0) throw new IllegalArgumentException("wave must be >= 0, got " + wave);
    }
}
