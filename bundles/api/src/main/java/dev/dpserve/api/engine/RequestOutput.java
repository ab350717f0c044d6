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
 */
public record RequestOutput(String requestId, int[] newTokenIds, List<TokenLogprobs> logprobs,
                            FinishReason finishReason, Integer stopReason, int numPromptTokens,
                            int numGeneratedTokens, String error) {

    public boolean finished() { return finishReason != null; }
}
