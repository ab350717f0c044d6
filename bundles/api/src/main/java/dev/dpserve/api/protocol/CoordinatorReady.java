// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.protocol;

/**
 * Coordinator → engines (published) once all {@code engines} engines subscribed to wave control:
 * from now on no wave start can be missed. An engine sends {@link EngineReady} only after this.
 */
public record CoordinatorReady(int engines) implements ProtocolMessage {
    public CoordinatorReady {
        if (engines < 1) throw new IllegalArgumentException("engines must be >= 1, got " + engines);
    }
}
