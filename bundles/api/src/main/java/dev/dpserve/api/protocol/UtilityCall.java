// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.protocol;

import java.util.List;
import java.util.Objects;

/**
 * Front end → engine: call a named engine operation (e.g. "stats", "reset_prefix_cache"); the
 * engine answers with {@link EngineOutputs#utilityResult()} carrying the same {@code callId} on the
 * caller's output socket. The engine decides which methods exist; an unknown one is answered with
 * an error, never reflected on.
 */
public record UtilityCall(int clientIndex, long callId, String method, List<String> args) implements EngineInput {
    public UtilityCall {
        Objects.requireNonNull(method, "method");
        args = List.copyOf(args);
        if (clientIndex < 0) throw new IllegalArgumentException("clientIndex must be >= 0, got " + clientIndex);
    }
}
