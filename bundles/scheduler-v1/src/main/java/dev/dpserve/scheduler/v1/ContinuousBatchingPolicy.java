// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.scheduler.v1;

import dev.dpserve.api.scheduler.RequestView;
import dev.dpserve.api.scheduler.SchedulerContext;
import dev.dpserve.api.scheduler.SchedulingPolicy;
import java.util.List;
import org.osgi.service.component.annotations.Component;

/**
 * vLLM V1 scheduling: no prefill or decode phases, every request just advances its computed
 * tokens toward its total within one token budget. Running requests first, in order (chunked:
 * capped by {@code long_prefill_token_threshold}, the budget and {@code max_model_len − 1}); when
 * KV blocks run out the last running request is preempted (recompute) and the allocation retried.
 * Then, only if nothing was preempted, waiting requests in order, starting after their prefix-cache
 * hit and chunked to the budget, until an allocation fails or {@code max_num_seqs} run.
 */
@Component(property = {SchedulingPolicy.NAME + "=v1", "service.ranking:Integer=100"})
public final class ContinuousBatchingPolicy implements SchedulingPolicy {

    @Override
    public void schedule(SchedulerContext ctx) {
        int threshold = ctx.longPrefillTokenThreshold();
        for (RequestView r : ctx.running()) {
            if (ctx.remainingBudget() <= 0) break;
            if (r.status() != RequestView.Status.RUNNING) continue; // preempted earlier in this step
            int n = r.numTokens() - r.numComputedTokens();
            if (threshold > 0) n = Math.min(n, threshold);
            n = Math.min(n, ctx.remainingBudget());
            n = Math.min(n, ctx.maxModelLen() - 1 - r.numComputedTokens());
            if (n <= 0) continue;
            if (!allocateOrPreempt(ctx, r, n)) break;
            ctx.schedule(r, n);
        }
        // A preemption means memory is short: admitting now would only preempt again.
        if (ctx.preemptedThisStep()) return;
        for (RequestView w : ctx.waiting()) {
            if (ctx.remainingBudget() <= 0 || ctx.numRunning() >= ctx.maxNumSeqs()) break;
            int n = w.numTokens() - ctx.prefixHitTokens(w);
            if (threshold > 0) n = Math.min(n, threshold);
            n = Math.min(n, ctx.remainingBudget());
            if (!ctx.allocate(w, n)) break;
            ctx.admit(w, n);
        }
    }

    /**
     * Allocates for {@code r}, preempting the last running request until it fits. False when
     * {@code r} itself had to go.
     */
    static boolean allocateOrPreempt(SchedulerContext ctx, RequestView r, int n) {
        while (!ctx.allocate(r, n)) {
            List<RequestView> running = ctx.running();
            RequestView victim = running.get(running.size() - 1);
            ctx.preempt(victim);
            if (victim.requestId().equals(r.requestId())) return false;
        }
        return true;
    }
}
