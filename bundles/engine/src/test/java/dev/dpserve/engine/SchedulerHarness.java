// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.engine;

import dev.dpserve.api.engine.EngineRequest;
import dev.dpserve.api.engine.SamplingParams;
import dev.dpserve.api.scheduler.SchedulingPolicy;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Drives a policy against the engine's real queues and KV manager without a model: each step
 * runs the policy, then "executes" what it scheduled (computed tokens advance; a request whose
 * tokens are all computed gains token 7, and finishes after max_tokens).
 */
final class SchedulerHarness {

    /** What one step scheduled. */
    record Step(Map<String, Integer> scheduled, List<String> ignored, boolean preempted) {
        int total() {
            return scheduled.values().stream().mapToInt(Integer::intValue).sum();
        }
    }

    final RequestQueues queues;
    final EngineCore.Limits limits;
    private long arrival;

    SchedulerHarness(int numBlocks, int blockSize, boolean prefixCaching, EngineCore.Limits limits) {
        this.queues = new RequestQueues(new KvCacheManager(numBlocks, blockSize, prefixCaching));
        this.limits = limits;
    }

    RequestState add(String id, int[] prompt, int maxTokens) {
        RequestState s = new RequestState(new EngineRequest(id, prompt, SamplingParams.greedy(maxTokens), arrival++),
                o -> { }, new SplittableRandom(0));
        queues.add(s);
        return s;
    }

    RequestState add(String id, int promptLength, int maxTokens) {
        int[] p = new int[promptLength];
        for (int i = 0; i < promptLength; i++) p[i] = (id.hashCode() * 31 + i) & 0xffff;
        return add(id, p, maxTokens);
    }

    Step step(SchedulingPolicy policy) {
        StepContext ctx = new StepContext(queues, limits);
        policy.schedule(ctx);
        ctx.end();
        Map<String, Integer> scheduled = new LinkedHashMap<>();
        for (RequestState s : ctx.scheduled()) scheduled.put(s.id, s.scheduled);
        for (RequestState s : new ArrayList<>(ctx.scheduled())) {
            s.computed += s.scheduled;
            s.scheduled = 0;
            queues.kv.cacheComputed(s.id, s.tokens, s.computed);
            if (s.computed == s.length) {
                s.tokens[s.length++] = 7;
                if (++s.generated >= s.sampling.maxTokens()) queues.remove(s);
            }
        }
        return new Step(scheduled, ctx.ignored().stream().map(s -> s.id).toList(), ctx.preemptedThisStep());
    }

    List<String> waitingIds() {
        return queues.waiting.stream().map(s -> s.id).toList();
    }

    List<String> runningIds() {
        return queues.running.stream().map(s -> s.id).toList();
    }
}
