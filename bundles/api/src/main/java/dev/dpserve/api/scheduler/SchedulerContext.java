// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.scheduler;

import java.util.List;
import org.osgi.annotation.versioning.ProviderType;

/**
 * One step's scheduling state, implemented by the engine and passed to
 * {@link SchedulingPolicy#schedule}. Valid only during that call and only on the calling thread.
 *
 * <p>Units: tokens, except where a method says blocks. The KV cache is paged: {@link #blockSize()}
 * token slots per block; a request holds {@code ceil(tokens / blockSize)} blocks for its cached
 * tokens (fewer new ones when a prefix is shared). Every mutating method either does all it says
 * or nothing (returning false or throwing IllegalArgumentException/IllegalStateException for
 * contract violations, leaving state unchanged).
 *
 * <p>To run tokens of a request: {@link #allocate} KV slots for them, then {@link #schedule} (a
 * running request) or {@link #admit} (a waiting one). At the end of the step the engine releases
 * any allocation of a waiting request that was not admitted.
 */
@ProviderType
public interface SchedulerContext {

    // ---- limits (fixed by the engine configuration)

    /** {@code max_num_batched_tokens}: the token budget of one step. */
    int maxNumBatchedTokens();

    /** {@code max_num_seqs}: the most running requests. */
    int maxNumSeqs();

    /** {@code max_model_len}: prompt plus generated tokens of one request. */
    int maxModelLen();

    /** {@code long_prefill_token_threshold}: 0 = not configured. */
    int longPrefillTokenThreshold();

    // ---- this step

    /** Tokens that may still be scheduled in this step: the budget minus what is scheduled. */
    int remainingBudget();

    /** Running requests in queue order (oldest admission first); a snapshot, take a new one after acting. */
    List<RequestView> running();

    /** Waiting requests in queue order (preempted ones at the front); a snapshot. */
    List<RequestView> waiting();

    /** {@code running().size()} without the copy. */
    int numRunning();

    /** Whether a request was preempted in this step. */
    boolean preemptedThisStep();

    // ---- KV cache (blocks)

    /** Tokens per block. */
    int blockSize();

    /** Usable blocks (the engine's reserved null block excluded). */
    int numBlocks();

    /** Blocks not held by any request (including evictable prefix-cache blocks). */
    int numFreeBlocks();

    /**
     * The prefix-cache hit of a waiting request: tokens of it whose KV is already cached, a
     * multiple of the block size, always less than {@link RequestView#numTokens()} (so at least
     * one token is computed). 0 when prefix caching is off. Side-effect free.
     */
    int prefixHitTokens(RequestView waiting);

    /**
     * Blocks that {@link #allocate}{@code (request, numNewTokens)} would take from the free
     * blocks now: new blocks plus evictable cached blocks a prefix hit revives.
     */
    int blocksToAllocate(RequestView request, int numNewTokens);

    /**
     * Makes sure the request has KV slots for {@code numNewTokens} more tokens: for a running
     * request after its computed tokens, for a waiting one after its {@link #prefixHitTokens}
     * (whose blocks it then holds). Returns false, changing nothing, when there are not enough
     * free blocks. Calling it again for the same request covers the larger count.
     */
    boolean allocate(RequestView request, int numNewTokens);

    /**
     * Runs {@code numTokens} tokens of a running request in this step (the next ones after its
     * computed tokens). Requires a prior successful {@link #allocate} covering them, numTokens
     * &ge; 1, within {@link #remainingBudget()}, at most once per request and step.
     */
    void schedule(RequestView running, int numTokens);

    /**
     * Moves a waiting request to the end of the running queue with its prefix hit as computed
     * tokens, and runs {@code numTokens} tokens of it in this step. Same requirements as
     * {@link #schedule}, plus {@link #numRunning()} &lt; {@link #maxNumSeqs()}.
     */
    void admit(RequestView waiting, int numTokens);

    /**
     * Preemption by recompute: frees the running request's blocks, sets its computed tokens to 0,
     * unschedules it if it was scheduled in this step (returning its tokens to the budget), and
     * puts it at the front of the waiting queue. Its generated tokens are kept: when it runs
     * again it recomputes them and continues exactly as it would have without preemption.
     */
    void preempt(RequestView running);

    /**
     * Finishes a waiting request that can never be scheduled under this policy, with finish
     * reason "length" and no tokens (vLLM's FINISHED_IGNORED).
     */
    void finishIgnored(RequestView waiting);
}
