// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.engine;

/**
 * A snapshot of engine counters. Counters ({@code Tokens}, {@code Requests}, {@code steps},
 * {@code prefixCache*}, {@code preemptions}) only grow while the engine lives.
 *
 * @param kvBlocksUsed       KV cache blocks held by requests now
 * @param kvBlocksTotal      usable KV cache blocks (0 when the engine has no paged cache)
 * @param prefixCacheQueries prompt tokens looked up in the prefix cache
 * @param prefixCacheHits    of those, tokens found cached
 * @param preemptions        requests preempted (each time)
 * @param scheduler          name of the scheduling policy of the last step, or null if none
 */
public record EngineStats(int running, int waiting, long promptTokens, long generationTokens,
                          long finishedRequests, long steps, String engineName,
                          int kvBlocksUsed, int kvBlocksTotal, long prefixCacheQueries, long prefixCacheHits,
                          long preemptions, String scheduler) {

    /** Without KV and scheduler facts (engines that have none). */
    public EngineStats(int running, int waiting, long promptTokens, long generationTokens,
                       long finishedRequests, long steps, String engineName) {
        this(running, waiting, promptTokens, generationTokens, finishedRequests, steps, engineName, 0, 0, 0, 0, 0, null);
    }

    /** Fraction of KV blocks in use, in [0, 1]. */
    public double kvCacheUsage() {
        return kvBlocksTotal == 0 ? 0 : (double) kvBlocksUsed / kvBlocksTotal;
    }
}
