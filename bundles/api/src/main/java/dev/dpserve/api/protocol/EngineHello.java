// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.protocol;

/**
 * Engine → head, first message on the handshake socket. The DEALER's identity carries the same
 * rank (2 bytes little-endian); the head checks that both agree.
 *
 * @param protocolVersion {@link ProtocolMessage#VERSION} of the sender
 * @param dpRank          global data-parallel rank, 0..N-1
 * @param local           true if the engine was started by the head's own launcher
 * @param headless        true if it was started by a {@code --headless} launcher on another node
 */
public record EngineHello(int protocolVersion, int dpRank, boolean local, boolean headless) implements ProtocolMessage {
    public EngineHello {
        if (dpRank < 0) throw new IllegalArgumentException("dpRank must be >= 0, got " + dpRank);
    }

    public static EngineHello of(int dpRank, boolean local, boolean headless) {
        return new EngineHello(VERSION, dpRank, local, headless);
    }
}
