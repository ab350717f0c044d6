// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.protocol;

import java.util.Objects;

/**
 * Engine → head, last handshake message: the model is loaded, the steady-state sockets are
 * connected and (with a coordinator) {@link CoordinatorReady} was received.
 *
 * @param numKvBlocks KV cache blocks of this rank; each rank uses only its own (the head's sum is informational)
 */
public record EngineReady(int dpRank, boolean local, boolean headless, int numKvBlocks, ModelFacts model)
        implements ProtocolMessage {
    public EngineReady {
        if (dpRank < 0) throw new IllegalArgumentException("dpRank must be >= 0, got " + dpRank);
        if (numKvBlocks < 0) throw new IllegalArgumentException("numKvBlocks must be >= 0, got " + numKvBlocks);
        Objects.requireNonNull(model, "model");
    }
}
