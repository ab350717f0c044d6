// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.engine;

import dev.dpserve.api.engine.EngineRequest;
import dev.dpserve.api.engine.OutputListener;
import dev.dpserve.api.engine.SamplingParams;
import dev.dpserve.api.scheduler.RequestView;
import dev.dpserve.engine.KvBlockPool.Block;
import java.util.List;
import java.util.SplittableRandom;

/**
 * One request inside the engine. Touched only by the engine loop thread; policies see it through
 * {@link RequestView}.
 */
final class RequestState implements RequestView {

    final EngineRequest request;
    final String id;
    final int[] prompt;
    final SamplingParams sampling;
    final OutputListener listener;
    // Advanced only when a token is sampled, never by recompute: a preempted request replays its
    // generated tokens from `tokens` and then continues the same random stream.
    final SplittableRandom random;

    final int[] tokens;  // prompt followed by generated tokens
    int length;          // valid entries of tokens
    int computed;        // leading tokens whose KV is cached
    int generated;
    Status status = Status.WAITING;
    int preemptions;
    boolean everAdmitted;

    // ---- this step (reset by StepContext)
    int scheduled;           // tokens scheduled in this step
    long firstScheduledNanos; // System.nanoTime() when first admitted, 0 before
    int allocatedTo = -1;    // KV slots exist for positions below this; -1 when not allocated this step
    List<Block> hit = List.of(); // prefix-cache blocks a waiting request's allocation took

    RequestState(EngineRequest request, OutputListener listener, SplittableRandom random) {
        this.request = request;
        this.id = request.requestId();
        this.prompt = request.promptTokenIds();
        this.sampling = request.sampling();
        this.listener = listener;
        this.random = random;
        this.tokens = new int[prompt.length + sampling.maxTokens()];
        System.arraycopy(prompt, 0, tokens, 0, prompt.length);
        this.length = prompt.length;
    }

    @Override public String requestId() { return id; }
    @Override public Status status() { return status; }
    @Override public int promptLength() { return prompt.length; }
    @Override public int numTokens() { return length; }
    @Override public int numComputedTokens() { return computed; }
    @Override public int numScheduledTokens() { return scheduled; }
    @Override public int numGeneratedTokens() { return generated; }
    @Override public long arrivalNanos() { return request.arrivalNanos(); }
    @Override public int numPreemptions() { return preemptions; }

    @Override
    public String toString() {
        return id + " " + status + " tokens " + length + " computed " + computed + (scheduled > 0 ? " scheduled " + scheduled : "");
    }
}
