// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.rest;

import java.util.List;
import java.util.Set;

/**
 * A parsed, type-checked {@code POST /v1/completions} body. Defaults are applied; values that need
 * the model (prompt length, vocabulary) are checked later, when the request is rendered.
 *
 * @param model             null or empty: the served model
 * @param maxTokens         null when the client sent {@code "max_tokens": null}: up to the context limit
 * @param seed              null for the engine's generator; child i of a prompt uses {@code seed + i}
 * @param logprobs          top logprobs per token, null for none
 * @param truncatePromptTokens null: no truncation; -1: keep the last max_model_len tokens; k: keep the last k
 * @param requestId         the client's {@code request_id}, or null
 */
record CompletionRequest(String model, List<Prompt> prompts, Integer maxTokens, double temperature, double topP,
                         int topK, double minP, Long seed, List<String> stop, Set<Integer> stopTokenIds,
                         boolean ignoreEos, boolean includeStopStrInOutput, int minTokens,
                         boolean skipSpecialTokens, boolean addSpecialTokens, int n, boolean echo,
                         Integer logprobs, boolean stream, boolean includeUsage, boolean continuousUsageStats,
                         boolean returnTokenIds, Integer truncatePromptTokens, String requestId) {

    static final int DEFAULT_MAX_TOKENS = 16;

    CompletionRequest {
        prompts = List.copyOf(prompts);
        stop = List.copyOf(stop);
        stopTokenIds = Set.copyOf(stopTokenIds);
    }

    /** The same request for other prompts (chat renders its one prompt after parsing). */
    CompletionRequest withPrompts(List<Prompt> newPrompts) {
        return new CompletionRequest(model, newPrompts, maxTokens, temperature, topP, topK, minP, seed, stop,
                stopTokenIds, ignoreEos, includeStopStrInOutput, minTokens, skipSpecialTokens, addSpecialTokens, n,
                echo, logprobs, stream, includeUsage, continuousUsageStats, returnTokenIds, truncatePromptTokens,
                requestId);
    }
}
