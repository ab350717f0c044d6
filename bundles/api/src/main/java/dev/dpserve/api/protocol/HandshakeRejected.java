// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.protocol;

import java.util.Objects;

/**
 * Head → engine instead of {@link EngineInit}: the head refuses this engine (unknown rank, a
 * {@code local}/{@code headless} flag that does not match the deployment, another protocol
 * version). The engine logs the reason and exits; the head logs it too.
 */
public record HandshakeRejected(String reason) implements ProtocolMessage {
    public HandshakeRejected {
        Objects.requireNonNull(reason, "reason");
    }
}
