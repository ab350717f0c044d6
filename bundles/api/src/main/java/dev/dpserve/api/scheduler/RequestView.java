// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.scheduler;

import org.osgi.annotation.versioning.ProviderType;

/**
 * A request as a scheduling policy sees it: a live, read-only view of engine state (values change
 * as the policy acts on the {@link SchedulerContext}). Token counts are in tokens.
 *
 * <p>The tokens of a request are its prompt followed by its generated tokens. The engine must
 * compute (run through the model, caching KV) tokens {@code [numComputedTokens, numTokens)}; a
 * new token is sampled once all {@link #numTokens()} are computed. A running request that is
 * decoding therefore has exactly one token to compute.
 */
@ProviderType
public interface RequestView {

    /** Where a request is. */
    enum Status {
        /** In the waiting queue: never started, or preempted (then its KV is gone and it recomputes). */
        WAITING,
        /** In the running queue: holds KV blocks for its computed tokens. */
        RUNNING,
        /** Finished or aborted (during this step); ignore it. */
        FINISHED
    }

    String requestId();

    Status status();

    int promptLength();

    /** Prompt plus generated tokens. */
    int numTokens();

    /** Tokens whose KV is cached; 0 for a waiting request. */
    int numComputedTokens();

    /** Tokens scheduled for it in the current step so far (0 if none). */
    int numScheduledTokens();

    /** Generated tokens so far (kept across preemption; recompute replays them). */
    int numGeneratedTokens();

    /** {@link System#nanoTime()} when the front end received it. */
    long arrivalNanos();

    /** How often it has been preempted. */
    int numPreemptions();
}
