// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.protocol;

import dev.dpserve.api.engine.EngineRequest;

import java.util.Arrays;
import java.util.Objects;

/**
 * Front end → engine: queue a request (vLLM's ADD with {@code EngineCoreRequest}).
 *
 * @param requestId          unique among the front end's in-flight requests
 * @param promptTokenIds     the tokenized prompt, non-empty; the receiver checks it against its vocabulary and max_model_len
 * @param arrivalEpochMicros wall-clock arrival time at the front end (µs since the epoch); a
 *                           monotonic clock does not travel between processes
 * @param clientIndex        which front end sent it; outputs go back to that front end's output socket
 * @param currentWave        the DP wave the front end believed current when sending (spec 4.3:
 *                           newer advances the engine, older on a paused engine restarts the wave)
 */
public record AddRequest(String requestId, int[] promptTokenIds, RequestSampling sampling, long arrivalEpochMicros,
                         int clientIndex, int currentWave) implements EngineInput {
    public AddRequest {
        Objects.requireNonNull(requestId, "requestId");
        Objects.requireNonNull(sampling, "sampling");
        if (promptTokenIds.length == 0) throw new IllegalArgumentException("empty prompt");
        promptTokenIds = promptTokenIds.clone();
        if (clientIndex < 0) throw new IllegalArgumentException("clientIndex must be >= 0, got " + clientIndex);
        if (currentWave < 0) throw new IllegalArgumentException("currentWave must be >= 0, got " + currentWave);
    }

    /** Wraps an engine request for the wire; {@code arrivalNanos} (monotonic) becomes a wall-clock time. */
    public static AddRequest of(EngineRequest request, int clientIndex, int currentWave) {
        long ageMicros = Math.max(0, (System.nanoTime() - request.arrivalNanos()) / 1000);
        long nowMicros = System.currentTimeMillis() * 1000;
        return new AddRequest(request.requestId(), request.promptTokenIds(), RequestSampling.of(request.sampling()),
                nowMicros - ageMicros, clientIndex, currentWave);
    }

    /**
     * The engine-side request; the arrival time is mapped onto this process's monotonic clock
     * (never in the future, whatever the clock skew between nodes).
     *
     * @throws dev.dpserve.api.engine.InvalidRequestException if a sampling value is out of range
     */
    public EngineRequest toEngineRequest() {
        long ageMicros = Math.max(0, System.currentTimeMillis() * 1000 - arrivalEpochMicros);
        return new EngineRequest(requestId, promptTokenIds, sampling.toSamplingParams(), System.nanoTime() - ageMicros * 1000);
    }

    @Override
    public int[] promptTokenIds() { return promptTokenIds.clone(); }

    public int promptLength() { return promptTokenIds.length; }

    @Override
    public boolean equals(Object o) {
        return o instanceof AddRequest r && requestId.equals(r.requestId) && Arrays.equals(promptTokenIds, r.promptTokenIds)
                && sampling.equals(r.sampling) && arrivalEpochMicros == r.arrivalEpochMicros
                && clientIndex == r.clientIndex && currentWave == r.currentWave;
    }

    @Override
    public int hashCode() {
        return Objects.hash(requestId, Arrays.hashCode(promptTokenIds), sampling, arrivalEpochMicros, clientIndex, currentWave);
    }

    @Override
    public String toString() {
        return "AddRequest[" + requestId + ", " + promptTokenIds.length + " prompt tokens, " + sampling
                + ", client " + clientIndex + ", wave " + currentWave + "]";
    }
}
