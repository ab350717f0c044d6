// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.engine;

import java.util.Set;

/**
 * Token-level sampling parameters (vLLM semantics).
 *
 * @param temperature  0 (or below 1e-5) means greedy
 * @param topP         (0, 1]
 * @param topK         0 or -1 means off
 * @param minP         [0, 1]
 * @param seed         per-request generator seed, or null for the engine's stream
 * @param maxTokens    tokens to generate at most (>= 1)
 * @param minTokens    EOS and stop token ids are suppressed before this many tokens
 * @param stopTokenIds ids that finish the request (reason "stop", stop_reason = the id)
 * @param ignoreEos    keep going past EOS
 * @param logprobs     number of top logprobs to return per generated token, -1 for none
 */
public record SamplingParams(double temperature, double topP, int topK, double minP, Long seed, int maxTokens,
                             int minTokens, Set<Integer> stopTokenIds, boolean ignoreEos, int logprobs) {

    public SamplingParams {
        stopTokenIds = Set.copyOf(stopTokenIds);
        if (!(temperature >= 0)) throw new InvalidRequestException("temperature must be non-negative, got " + temperature, "temperature");
        if (!(topP > 0 && topP <= 1)) throw new InvalidRequestException("top_p must be in (0, 1], got " + topP, "top_p");
        if (topK < -1) throw new InvalidRequestException("top_k must be -1 (disable), or at least 1, got " + topK, "top_k");
        if (!(minP >= 0 && minP <= 1)) throw new InvalidRequestException("min_p must be in [0, 1], got " + minP, "min_p");
        if (maxTokens < 1) throw new InvalidRequestException("max_tokens must be at least 1, got " + maxTokens, "max_tokens");
        if (minTokens < 0) throw new InvalidRequestException("min_tokens must be greater than or equal to 0, got " + minTokens, "min_tokens");
        if (minTokens > maxTokens) throw new InvalidRequestException("min_tokens must be less than or equal to max_tokens=" + maxTokens + ", got " + minTokens, "min_tokens");
        if (logprobs < -1) throw new InvalidRequestException("logprobs must be non-negative, got " + logprobs, "logprobs");
    }

    public static SamplingParams greedy(int maxTokens) {
        return new SamplingParams(0, 1, 0, 0, null, maxTokens, 0, Set.of(), false, -1);
    }

    public boolean isGreedy() { return temperature < 1e-5; }

    public SamplingParams withSeed(Long newSeed) {
        return new SamplingParams(temperature, topP, topK, minP, newSeed, maxTokens, minTokens, stopTokenIds, ignoreEos, logprobs);
    }

    public SamplingParams withMaxTokens(int n) {
        return new SamplingParams(temperature, topP, topK, minP, seed, n, Math.min(minTokens, n), stopTokenIds, ignoreEos, logprobs);
    }
}
