// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.engine;

import java.util.List;

/**
 * A delta of one request: the tokens generated since the last output.
 *
 * @param newTokenIds   tokens generated in this step (usually one)
 * @param logprobs      one entry per new token when logprobs were requested, else null
 * @param finishReason  null while running
 * @param stopReason    the stop token id that ended the request, else null
 * @param numPromptTokens    prompt length
 * @param numGeneratedTokens tokens generated so far, this delta included
 * @param error         a message when the request failed inside the engine (finishReason ABORT)
 * @param queueNanos    how long the request waited before it was first scheduled (set on outputs
 *                      that carry tokens; 0 when unknown)
 */
public record RequestOutput(String requestId, int[] newTokenIds, List<TokenLogprobs> logprobs,
                            FinishReason finishReason, Integer stopReason, int numPromptTokens,
                            int numGeneratedTokens, String error, long queueNanos) {

    /** An output without queue-time information. */
    public RequestOutput(String requestId, int[] newTokenIds, List<TokenLogprobs> logprobs, FinishReason finishReason,
                         Integer stopReason, int numPromptTokens, int numGeneratedTokens, String error) {
        this(requestId, newTokenIds, logprobs, finishReason, stopReason, numPromptTokens, numGeneratedTokens, error, 0);
    }

    public boolean finished() { return finishReason != null; }
}
