// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.protocol;

import dev.dpserve.api.engine.SamplingParams;

import java.util.List;
import java.util.TreeSet;

/**
 * The wire form of {@link SamplingParams}. Kept separate so that a change of the engine API
 * does not silently change the wire format; {@link #toSamplingParams()} re-runs its validation
 * on the receiving side, because the bytes came from another process.
 *
 * @param seed         per-request seed, or null
 * @param stopTokenIds sorted, without duplicates
 */
public record RequestSampling(double temperature, double topP, int topK, double minP, Long seed, int maxTokens,
                              int minTokens, List<Integer> stopTokenIds, boolean ignoreEos, int logprobs) {
    public RequestSampling {
        stopTokenIds = List.copyOf(stopTokenIds);
    }

    public static RequestSampling of(SamplingParams p) {
        return new RequestSampling(p.temperature(), p.topP(), p.topK(), p.minP(), p.seed(), p.maxTokens(),
                p.minTokens(), List.copyOf(new TreeSet<>(p.stopTokenIds())), p.ignoreEos(), p.logprobs());
    }

    /** @throws dev.dpserve.api.engine.InvalidRequestException if a value is out of range */
    public SamplingParams toSamplingParams() {
        return new SamplingParams(temperature, topP, topK, minP, seed, maxTokens, minTokens,
                java.util.Set.copyOf(stopTokenIds), ignoreEos, logprobs);
    }
}
