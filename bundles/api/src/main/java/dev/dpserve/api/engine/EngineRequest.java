// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.engine;

/**
 * @param requestId      unique among in-flight requests
 * @param promptTokenIds the prompt, already tokenized (non-empty)
 * @param arrivalNanos   {@link System#nanoTime()} when the front end received it
 */
public record EngineRequest(String requestId, int[] promptTokenIds, SamplingParams sampling, long arrivalNanos) {
    public EngineRequest {
        promptTokenIds = promptTokenIds.clone();
    }

    @Override
    public int[] promptTokenIds() { return promptTokenIds.clone(); }

    public int promptLength() { return promptTokenIds.length; }
}
