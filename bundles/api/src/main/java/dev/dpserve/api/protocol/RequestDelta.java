// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.protocol;

import dev.dpserve.api.engine.FinishReason;
import dev.dpserve.api.engine.RequestOutput;

import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * One request's progress in one engine step, the wire form of {@link RequestOutput}.
 *
 * @param newTokenIds        tokens generated in this step (usually one; may be empty in a final abort delta)
 * @param logprobs           one entry per new token when logprobs were requested, else null
 * @param finishReason       null while running
 * @param stopReason         the stop token id that ended the request, else null
 * @param numCachedTokens    prompt tokens served from the prefix cache (for metrics)
 * @param error              a message when the request failed inside the engine, else null
 * @param queueNanos         how long the request waited before it was first scheduled (on deltas
 *                           that carry tokens; 0 when unknown; since protocol version 2)
 */
public record RequestDelta(String requestId, int[] newTokenIds, List<DeltaLogprobs> logprobs, FinishReason finishReason,
                           Integer stopReason, int numPromptTokens, int numGeneratedTokens, int numCachedTokens,
                           String error, long queueNanos) {
    public RequestDelta {
        Objects.requireNonNull(requestId, "requestId");
        newTokenIds = newTokenIds.clone();
        logprobs = logprobs == null ? null : List.copyOf(logprobs);
        if (numPromptTokens < 0 || numGeneratedTokens < 0 || numCachedTokens < 0) {
            throw new IllegalArgumentException("token counts must be >= 0");
        }
        if (queueNanos < 0) throw new IllegalArgumentException("queueNanos must be >= 0");
    }

    /** A delta without queue-time information. */
    public RequestDelta(String requestId, int[] newTokenIds, List<DeltaLogprobs> logprobs, FinishReason finishReason,
                        Integer stopReason, int numPromptTokens, int numGeneratedTokens, int numCachedTokens, String error) {
        this(requestId, newTokenIds, logprobs, finishReason, stopReason, numPromptTokens, numGeneratedTokens, numCachedTokens,
                error, 0);
    }

    public static RequestDelta of(RequestOutput out, int numCachedTokens) {
        return new RequestDelta(out.requestId(), out.newTokenIds(),
                out.logprobs() == null ? null : out.logprobs().stream().map(DeltaLogprobs::of).toList(),
                out.finishReason(), out.stopReason(), out.numPromptTokens(), out.numGeneratedTokens(), numCachedTokens,
                out.error(), Math.max(0, out.queueNanos()));
    }

    public RequestOutput toRequestOutput() {
        return new RequestOutput(requestId, newTokenIds.clone(),
                logprobs == null ? null : logprobs.stream().map(DeltaLogprobs::toTokenLogprobs).toList(),
                finishReason, stopReason, numPromptTokens, numGeneratedTokens, error, queueNanos);
    }

    @Override
    public int[] newTokenIds() { return newTokenIds.clone(); }

    public boolean finished() { return finishReason != null; }

    @Override
    public boolean equals(Object o) {
        return o instanceof RequestDelta d && requestId.equals(d.requestId) && Arrays.equals(newTokenIds, d.newTokenIds)
                && Objects.equals(logprobs, d.logprobs) && finishReason == d.finishReason
                && Objects.equals(stopReason, d.stopReason) && numPromptTokens == d.numPromptTokens
                && numGeneratedTokens == d.numGeneratedTokens && numCachedTokens == d.numCachedTokens
                && Objects.equals(error, d.error) && queueNanos == d.queueNanos;
    }

    @Override
    public int hashCode() {
        return Objects.hash(requestId, Arrays.hashCode(newTokenIds), logprobs, finishReason, stopReason, numPromptTokens,
                numGeneratedTokens, numCachedTokens, error, queueNanos);
    }

    @Override
    public String toString() {
        return "RequestDelta[" + requestId + ", " + Arrays.toString(newTokenIds) + (finishReason == null ? "" : ", " + finishReason)
                + (error == null ? "" : ", error=" + error) + "]";
    }
}
