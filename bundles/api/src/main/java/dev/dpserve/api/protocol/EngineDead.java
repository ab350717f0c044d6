// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.protocol;

import java.util.Objects;

/**
 * Engine → every front end, once, on a fatal error (vLLM's ENGINE_CORE_DEAD): the front end marks
 * the rank dead, fails its in-flight requests and reports unhealthy.
 */
public record EngineDead(int engineRank, String reason) implements ProtocolMessage {
    public EngineDead {
        Objects.requireNonNull(reason, "reason");
    }
}
