// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.scheduler.ascend;

import dev.dpserve.api.scheduler.RequestView;
import dev.dpserve.api.scheduler.SchedulerContext;
import dev.dpserve.api.scheduler.SchedulingPolicy;
import java.util.List;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.ConfigurationPolicy;
import org.osgi.service.metatype.annotations.AttributeDefinition;
import org.osgi.service.metatype.annotations.Designate;
import org.osgi.service.metatype.annotations.ObjectClassDefinition;

/**
 * vllm-ascend's prefill-first scheduling ({@code ascend_scheduler_config} with chunked prefill
 * off): every step is all-prefill or all-decode. Waiting requests first, each prefilled whole
 * (never split) or not at all: one longer than {@code min(max_model_len, max_num_batched_tokens,
 * KV capacity)} can never run and is finished with "length"; one that does not fit the remaining
 * budget, would leave fewer free blocks than the watermark, or is long while the long-prefill
 * quota is used up is skipped for this step; the first failed allocation ends the pass. Only when
 * no prefill was scheduled do running requests decode, with the same recompute preemption as V1
 * (the last running request goes first).
 */
@Component(configurationPid = PrefillFirstPolicy.PID, configurationPolicy = ConfigurationPolicy.OPTIONAL,
        property = {SchedulingPolicy.NAME + "=ascend", "service.ranking:Integer=0"})
@Designate(ocd = PrefillFirstPolicy.Config.class)
public final class PrefillFirstPolicy implements SchedulingPolicy {

    static final String PID = "dev.dpserve.scheduler.ascend";

    @ObjectClassDefinition(name = "dpserve prefill-first scheduler", description = "vllm-ascend ascend_scheduler_config")
    public @interface Config {
        @AttributeDefinition(description = "Long prefills (over long_prefill_token_threshold) per step; 0 = no limit")
        int max_long_partial_prefills() default 0;

        @AttributeDefinition(description = "What counts as a long prefill; 0 = the engine's threshold, else max(1, 4% of max_model_len)")
        int long_prefill_token_threshold() default 0;

        @AttributeDefinition(description = "Fraction of KV blocks a prefill must leave free")
        double watermark() default 0.01;
    }

    private final int maxLongPartialPrefills;
    private final int longPrefillTokenThreshold;
    private final double watermark;

    @Activate
    public PrefillFirstPolicy(Config config) {
        this(config.max_long_partial_prefills(), config.long_prefill_token_threshold(), config.watermark());
    }

    /** Defaults: no long-prefill limit, 1% watermark. */
    public PrefillFirstPolicy() {
        this(0, 0, 0.01);
    }

    public PrefillFirstPolicy(int maxLongPartialPrefills, int longPrefillTokenThreshold, double watermark) {
        if (watermark < 0 || watermark >= 1) throw new IllegalArgumentException("watermark must be in [0, 1), got " + watermark);
        this.maxLongPartialPrefills = maxLongPartialPrefills;
        this.longPrefillTokenThreshold = longPrefillTokenThreshold;
        this.watermark = watermark;
    }

    @Override
    public void schedule(SchedulerContext ctx) {
        if (schedulePrefills(ctx)) return;
        scheduleDecodes(ctx);
    }

    /** True if any prefill was scheduled. */
    private boolean schedulePrefills(SchedulerContext ctx) {
        long kvTokens = (long) ctx.numBlocks() * ctx.blockSize();
        long promptLimit = Math.min(Math.min(ctx.maxModelLen(), ctx.maxNumBatchedTokens()), kvTokens);
        int watermarkBlocks = (int) (watermark * ctx.numBlocks());
        int longThreshold = longThreshold(ctx);
        int longLeft = maxLongPartialPrefills > 0 ? maxLongPartialPrefills : Integer.MAX_VALUE;
        boolean scheduled = false;
        for (RequestView w : ctx.waiting()) {
            if (ctx.remainingBudget() <= 0 || ctx.numRunning() >= ctx.maxNumSeqs()) break;
            int n = w.numTokens() - ctx.prefixHitTokens(w);
            if (n > promptLimit) {
                ctx.finishIgnored(w);
                continue;
            }
            if (n > ctx.remainingBudget()) continue;
            if (ctx.numFreeBlocks() - ctx.blocksToAllocate(w, n) < watermarkBlocks) continue;
            boolean isLong = n > longThreshold;
            if (isLong && longLeft <= 0) continue;
            if (!ctx.allocate(w, n)) break;
            ctx.admit(w, n);
            if (isLong) longLeft--;
            scheduled = true;
        }
        return scheduled;
    }

    private void scheduleDecodes(SchedulerContext ctx) {
        for (RequestView r : ctx.running()) {
            if (ctx.remainingBudget() <= 0) break;
            if (r.status() != RequestView.Status.RUNNING) continue; // preempted earlier in this step
            // 1 for a decode; more only for a request a chunking policy left mid-prefill before a swap
            int n = Math.min(r.numTokens() - r.numComputedTokens(), ctx.remainingBudget());
            n = Math.min(n, ctx.maxModelLen() - 1 - r.numComputedTokens());
            if (n <= 0) continue;
            if (!allocateOrPreempt(ctx, r, n)) break;
            ctx.schedule(r, n);
        }
    }

    private int longThreshold(SchedulerContext ctx) {
        if (maxLongPartialPrefills <= 0) return Integer.MAX_VALUE;
        if (longPrefillTokenThreshold > 0) return longPrefillTokenThreshold;
        if (ctx.longPrefillTokenThreshold() > 0) return ctx.longPrefillTokenThreshold();
        return Math.max(1, (int) (ctx.maxModelLen() * 0.04));
    }

    private static boolean allocateOrPreempt(SchedulerContext ctx, RequestView r, int n) {
        while (!ctx.allocate(r, n)) {
            List<RequestView> running = ctx.running();
            RequestView victim = running.get(running.size() - 1);
            ctx.preempt(victim);
            if (victim.requestId().equals(r.requestId())) return false;
        }
        return true;
    }
}
