// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.engine;

import dev.dpserve.api.scheduler.RequestView;
import dev.dpserve.api.scheduler.RequestView.Status;
import dev.dpserve.api.scheduler.SchedulerContext;
import dev.dpserve.engine.KvBlockPool.Block;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.SequencedSet;

/**
 * The engine's side of one scheduling step: checks every policy action against the contract of
 * {@link SchedulerContext} and applies it to the {@link RequestQueues}. After the policy returns,
 * {@link #end()} closes it; {@link #scheduled()} is then the batch to run, in scheduling order.
 */
final class StepContext implements SchedulerContext {

    private final RequestQueues q;
    private final KvCacheManager kv;
    private final EngineCore.Limits limits;
    private final SequencedSet<RequestState> scheduled = new LinkedHashSet<>();
    private final List<RequestState> ignored = new ArrayList<>();
    private int budget;
    private boolean preempted;
    private boolean open = true;

    StepContext(RequestQueues q, EngineCore.Limits limits) {
        this.q = q;
        this.kv = q.kv;
        this.limits = limits;
        this.budget = limits.maxNumBatchedTokens();
    }

    @Override public int maxNumBatchedTokens() { return limits.maxNumBatchedTokens(); }
    @Override public int maxNumSeqs() { return limits.maxNumSeqs(); }
    @Override public int maxModelLen() { return limits.maxModelLen(); }
    @Override public int longPrefillTokenThreshold() { return limits.longPrefillTokenThreshold(); }
    @Override public int remainingBudget() { return budget; }
    @Override public List<RequestView> running() { return List.copyOf(q.running); }
    @Override public List<RequestView> waiting() { return List.copyOf(q.waiting); }
    @Override public int numRunning() { return q.running.size(); }
    @Override public boolean preemptedThisStep() { return preempted; }
    @Override public int blockSize() { return kv.blockSize(); }
    @Override public int numBlocks() { return kv.numUsableBlocks(); }
    @Override public int numFreeBlocks() { return kv.numFreeBlocks(); }

    @Override
    public int prefixHitTokens(RequestView waiting) {
        RequestState s = state(waiting, Status.WAITING);
        if (kv.numBlocksHeld(s.id) > 0) return s.hit.size() * kv.blockSize();
        return kv.lookup(s.id, s.tokens, s.length).size() * kv.blockSize();
    }

    @Override
    public int blocksToAllocate(RequestView request, int numNewTokens) {
        RequestState s = state(request, null);
        if (numNewTokens < 0) throw new IllegalArgumentException("negative token count " + numNewTokens);
        if (s.status == Status.RUNNING) return kv.blocksToAllocate(s.id, s.computed, numNewTokens, List.of());
        if (kv.numBlocksHeld(s.id) > 0) return kv.blocksToAllocate(s.id, s.hit.size() * kv.blockSize(), numNewTokens, List.of());
        return kv.blocksToAllocate(s.id, 0, numNewTokens, kv.lookup(s.id, s.tokens, s.length));
    }

    @Override
    public boolean allocate(RequestView request, int numNewTokens) {
        RequestState s = state(request, null);
        if (numNewTokens < 1) throw new IllegalArgumentException("allocate needs at least one token, got " + numNewTokens);
        if (s.status == Status.RUNNING) {
            checkWithin(s, s.computed, numNewTokens);
            return kv.allocate(s.id, s.computed, numNewTokens, List.of());
        }
        if (kv.numBlocksHeld(s.id) > 0) { // allocated earlier in this step: grow
            int base = s.hit.size() * kv.blockSize();
            checkWithin(s, base, numNewTokens);
            return kv.allocate(s.id, base, numNewTokens, List.of());
        }
        List<Block> hit = kv.lookup(s.id, s.tokens, s.length);
        checkWithin(s, hit.size() * kv.blockSize(), numNewTokens);
        if (!kv.allocate(s.id, 0, numNewTokens, hit)) return false;
        s.hit = hit;
        return true;
    }

    @Override
    public void schedule(RequestView running, int numTokens) {
        RequestState s = state(running, Status.RUNNING);
        checkSchedulable(s, s.computed, numTokens);
        s.scheduled = numTokens;
        budget -= numTokens;
        scheduled.add(s);
    }

    @Override
    public void admit(RequestView waiting, int numTokens) {
        RequestState s = state(waiting, Status.WAITING);
        if (q.running.size() >= limits.maxNumSeqs()) {
            throw new IllegalStateException("max_num_seqs " + limits.maxNumSeqs() + " requests are running");
        }
        int hitTokens = s.hit.size() * kv.blockSize();
        checkSchedulable(s, hitTokens, numTokens);
        q.waiting.remove(s);
        q.running.add(s);
        s.status = Status.RUNNING;
        if (s.firstScheduledNanos == 0) s.firstScheduledNanos = System.nanoTime();
        s.computed = hitTokens;
        s.hit = List.of();
        s.scheduled = numTokens;
        budget -= numTokens;
        scheduled.add(s);
        if (kv.prefixCaching()) {
            q.prefixQueries += s.length;
            q.prefixHits += hitTokens;
        }
        if (!s.everAdmitted) {
            s.everAdmitted = true;
            q.promptTokens += s.prompt.length;
        }
    }

    @Override
    public void preempt(RequestView running) {
        RequestState s = state(running, Status.RUNNING);
        if (scheduled.remove(s)) budget += s.scheduled;
        s.scheduled = 0;
        kv.free(s.id);
        s.computed = 0;
        s.status = Status.WAITING;
        s.preemptions++;
        q.running.remove(s);
        q.waiting.addFirst(s);
        q.preemptions++;
        preempted = true;
    }

    @Override
    public void finishIgnored(RequestView waiting) {
        RequestState s = state(waiting, Status.WAITING);
        q.remove(s);
        ignored.add(s);
    }

    /** Closes the step: allocations of waiting requests that were not admitted are released. */
    void end() {
        open = false;
        for (RequestState s : q.waiting) {
            if (kv.numBlocksHeld(s.id) > 0) kv.free(s.id);
            s.hit = List.of();
        }
    }

    /** Requests to run in this step, in order; each with {@link RequestState#scheduled} tokens. */
    SequencedSet<RequestState> scheduled() { return scheduled; }

    /** Requests the policy finished as ignored. */
    List<RequestState> ignored() { return ignored; }

    private RequestState state(RequestView view, Status required) {
        if (!open) throw new IllegalStateException("the scheduling step is over");
        if (!(view instanceof RequestState s) || q.get(s.id) != s) {
            throw new IllegalArgumentException("not a request of this engine: " + (view == null ? null : view.requestId()));
        }
        if (required != null && s.status != required) throw new IllegalStateException(s.id + " is " + s.status + ", not " + required);
        return s;
    }

    private static void checkWithin(RequestState s, int from, int n) {
        if (from + n > s.length) {
            throw new IllegalArgumentException(s.id + ": " + n + " tokens after position " + from + " exceed its " + s.length + " tokens");
        }
    }

    private void checkSchedulable(RequestState s, int from, int n) {
        if (s.scheduled > 0) throw new IllegalStateException(s.id + " is already scheduled in this step");
        if (n < 1) throw new IllegalArgumentException("schedule at least one token, got " + n);
        if (n > budget) throw new IllegalArgumentException(s.id + ": " + n + " tokens exceed the remaining budget " + budget);
        checkWithin(s, from, n);
        if (kv.numBlocksHeld(s.id) * kv.blockSize() < from + n) {
            throw new IllegalStateException(s.id + ": no KV slots allocated for positions up to " + (from + n));
        }
    }
}
