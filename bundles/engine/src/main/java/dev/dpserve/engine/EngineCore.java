// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.engine;

import dev.dpserve.api.engine.EngineRequest;
import dev.dpserve.api.engine.EngineStats;
import dev.dpserve.api.engine.EngineUnavailableException;
import dev.dpserve.api.engine.FinishReason;
import dev.dpserve.api.engine.InvalidRequestException;
import dev.dpserve.api.engine.OutputListener;
import dev.dpserve.api.engine.RequestOutput;
import dev.dpserve.api.engine.TokenLogprobs;
import dev.dpserve.api.model.CausalLm;
import dev.dpserve.api.scheduler.SchedulingPolicy;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The engine core: owns request state, the queues and the paged KV cache, and runs the step loop
 * on one thread.
 *
 * <p>One step: take new requests and aborts → ask the current {@link SchedulingPolicy} what to
 * run → one forward pass over all scheduled tokens of all requests (prefill chunks and decodes
 * mixed) → sample for requests whose tokens are all computed → update, stop checks → emit
 * outputs. The policy is looked up at every step, so a new one takes over at a step boundary
 * with all queues intact; without one, requests wait. With nothing to do the loop blocks on its
 * input queue (no busy CPU).
 *
 * <p>Threading: {@link #submit}, {@link #abort}, {@link #stats} and {@link #wakeUp} may be called
 * from any thread; everything else runs on the loop thread.
 */
public final class EngineCore implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(EngineCore.class.getName());
    /** How long the loop waits for input when requests exist but none could be scheduled. */
    private static final long IDLE_POLL_MILLIS = 20;

    /**
     * Limits that shape scheduling, in tokens except {@code maxNumSeqs}.
     *
     * @param longPrefillTokenThreshold 0 = not configured
     */
    public record Limits(int maxModelLen, int maxNumSeqs, int maxNumBatchedTokens, int longPrefillTokenThreshold) {
        public Limits {
            if (maxModelLen < 1 || maxNumSeqs < 1 || maxNumBatchedTokens < 1 || longPrefillTokenThreshold < 0) {
                throw new IllegalArgumentException("limits must be positive: " + maxModelLen + ", " + maxNumSeqs + ", "
                        + maxNumBatchedTokens + ", " + longPrefillTokenThreshold);
            }
        }

        public Limits(int maxModelLen, int maxNumSeqs, int maxNumBatchedTokens) {
            this(maxModelLen, maxNumSeqs, maxNumBatchedTokens, 0);
        }
    }

    /**
     * The paged KV cache.
     *
     * @param numBlocks     blocks including the reserved null block (so {@code numBlocks - 1} usable)
     * @param blockSize     tokens per block
     * @param prefixCaching whether full blocks are shared between requests with equal prefixes
     */
    public record KvConfig(int numBlocks, int blockSize, boolean prefixCaching) {
        public KvConfig {
            if (numBlocks < 2 || blockSize < 1) throw new IllegalArgumentException("KV cache needs >= 2 blocks of >= 1 token: " + numBlocks + " x " + blockSize);
        }
    }

    /** The policy for a step and the name it is registered under. */
    public record ActivePolicy(String name, SchedulingPolicy policy) {
    }

    private final CausalLm model;
    private final Limits limits;
    private final KvConfig kvConfig;
    private final Supplier<ActivePolicy> policies;
    private final Set<Integer> eosTokenIds;
    private final SplittableRandom engineRandom;
    private final String name;

    private final LinkedBlockingQueue<Runnable> inbox = new LinkedBlockingQueue<>();
    private final RequestQueues queues;
    private final Thread loop;
    private volatile boolean stopping;

    private final AtomicLong generationTokens = new AtomicLong();
    private final AtomicLong finished = new AtomicLong();
    private final AtomicLong steps = new AtomicLong();
    private volatile EngineStats published;
    /** Set (on the loop thread) when the engine joins a lockstep DP group; null when ranks step independently. */
    private volatile Lockstep lockstep;
    private volatile String lockstepFailure;
    private boolean forwarded; // the last step() ran a forward; loop thread only

    /**
     * Starts the loop. Allocates the model's KV cache as {@code kv} says. {@code policies} is asked
     * for the policy at every step (on the loop thread) and returns null when there is none.
     */
    public EngineCore(CausalLm model, Limits limits, KvConfig kv, Supplier<ActivePolicy> policies,
                      Set<Integer> eosTokenIds, long seed, String name) {
        this.model = model;
        this.limits = limits;
        this.kvConfig = kv;
        this.policies = policies;
        this.eosTokenIds = Set.copyOf(eosTokenIds);
        this.engineRandom = new SplittableRandom(seed);
        this.name = name;
        model.allocateKvCache(kv.numBlocks(), kv.blockSize());
        this.queues = new RequestQueues(new KvCacheManager(kv.numBlocks(), kv.blockSize(), kv.prefixCaching()));
        publishStats(null);
        this.loop = Thread.ofPlatform().name("dpserve-engine-" + name).daemon(true).unstarted(this::run);
        loop.start();
    }

    /** Checks what the engine can check without queueing; throws {@link InvalidRequestException}. */
    public void validate(EngineRequest request) {
        int[] prompt = request.promptTokenIds();
        if (prompt.length == 0) {
            throw new InvalidRequestException("The decoder prompt cannot be empty", "prompt");
        }
        int vocab = model.info().vocabSize();
        for (int id : prompt) {
            if (id < 0 || id >= vocab) {
                throw new InvalidRequestException("Token id " + id + " is out of vocabulary", "prompt");
            }
        }
        if (prompt.length > limits.maxModelLen()) {
            throw new InvalidRequestException("The decoder prompt (length " + prompt.length
                    + ") is longer than the maximum model length of " + limits.maxModelLen()
                    + ". Make sure that `max_model_len` is no smaller than the number of text tokens.", "prompt");
        }
        // The last generated token is never run through the model, so it needs no KV slot.
        int maxTokens = request.sampling().maxTokens();
        int cached = Math.max(prompt.length, Math.min(prompt.length + maxTokens - 1, limits.maxModelLen()));
        int blocks = (cached + kvConfig.blockSize() - 1) / kvConfig.blockSize();
        int usable = kvConfig.numBlocks() - 1;
        if (blocks > usable) {
            throw new InvalidRequestException("The request needs " + blocks + " KV cache blocks (" + prompt.length
                    + " prompt tokens + max_tokens " + maxTokens + ", block size " + kvConfig.blockSize()
                    + ") but the KV cache has only " + usable + " blocks (" + (long) usable * kvConfig.blockSize()
                    + " tokens). Shorten the prompt or max_tokens, or give the KV cache more memory"
                    + " (--kv-cache-memory, --gpu-memory-utilization).", maxTokens > 1 ? "max_tokens" : "prompt");
        }
    }

    public void submit(EngineRequest request, OutputListener listener) {
        validate(request);
        if (stopping) throw new EngineUnavailableException("engine is stopping");
        inbox.add(() -> admit(request, listener));
    }

    public void abort(String requestId) {
        inbox.add(() -> {
            RequestState s = queues.get(requestId);
            if (s != null) finish(s, FinishReason.ABORT, null, null);
        });
    }

    /**
     * Switches to lockstep mode (spec 4.2) with {@code group}; takes effect at the loop's next
     * iteration, before any input queued after this call. Reserves one KV block for dummy forwards.
     */
    public void joinGroup(dev.dpserve.api.parallel.Communicator group, dev.dpserve.api.parallel.WaveEvents events) {
        inbox.add(() -> {
            if (lockstep != null) throw new IllegalStateException("already in a DP group");
            int dummyBlock = queues.kv.pool().allocate(1).getFirst().id;
            lockstep = new Lockstep(group, events, dummyBlock);
            LOG.info(() -> "DP rank " + group.rank() + " of " + group.size() + ": lockstep mode (waves, dummy batches); dummy"
                    + " forwards use KV block " + dummyBlock);
        });
    }

    /** The wave of the next submitted request (queued in order with it). */
    public void requestWave(int wave) {
        inbox.add(() -> {
            Lockstep ls = lockstep;
            if (ls != null) ls.onRequestWave(wave);
        });
    }

    /** The coordinator's START_DP_WAVE. */
    public void startWave(int wave, int excludeRank) {
        inbox.add(() -> {
            Lockstep ls = lockstep;
            if (ls != null) ls.onStartWave(wave, excludeRank);
        });
    }

    /** The lockstep state, or null when not in lockstep mode. */
    public dev.dpserve.api.engine.WaveStats waveStats() {
        Lockstep ls = lockstep;
        return ls == null ? null : ls.stats();
    }

    /** Why lockstep mode ended (a collective failed), or null. */
    public String lockstepFailure() {
        return lockstepFailure;
    }

    /** Makes the loop look at its queues now (e.g. a scheduling policy appeared). */
    public void wakeUp() {
        inbox.add(() -> { });
    }

    public EngineStats stats() {
        return published;
    }

    /** Null while the loop is healthy. */
    public String failure() {
        if (lockstepFailure != null) return lockstepFailure;
        return stopping || loop.isAlive() ? null : "engine loop is not running";
    }

    /** Number of requests the engine holds (waiting + running), read from any thread. */
    public int inFlight() {
        EngineStats s = published;
        return s.running() + s.waiting();
    }

    private void admit(EngineRequest request, OutputListener listener) {
        if (queues.get(request.requestId()) != null) {
            listener.onOutput(new RequestOutput(request.requestId(), new int[0], null, FinishReason.ABORT, null,
                    request.promptLength(), 0, "duplicate request id " + request.requestId()));
            return;
        }
        Long seed = request.sampling().seed();
        SplittableRandom random = seed != null ? new SplittableRandom(seed) : engineRandom.split();
        queues.add(new RequestState(request, listener, random));
    }

    private void run() {
        boolean progressed = true;
        String policyName = null;
        while (!stopping) {
            Lockstep ls = lockstep;
            if (ls != null) {
                policyName = lockstepIteration(ls);
                continue;
            }
            try {
                Runnable first;
                if (queues.isEmpty()) first = inbox.poll(1, TimeUnit.SECONDS);
                else if (!progressed) first = inbox.poll(IDLE_POLL_MILLIS, TimeUnit.MILLISECONDS);
                else first = inbox.poll();
                if (first != null) {
                    first.run();
                    for (Runnable r; (r = inbox.poll()) != null; ) r.run();
                }
                if (lockstep != null) continue; // joined a DP group: from now on every forward is a lockstep step
                progressed = false;
                // Chosen at every step boundary (hot swap); also when idle, so stats name the active policy.
                ActivePolicy active = policies.get();
                policyName = active == null ? null : active.name();
                if (active != null && !queues.isEmpty()) progressed = step(active);
                publishStats(policyName);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            } catch (Throwable t) {
                // A failing step fails the requests in it, never the engine.
                LOG.log(Level.SEVERE, "engine step failed", t);
                for (RequestState s : new ArrayList<>(queues.running)) {
                    finish(s, FinishReason.ABORT, null, "internal error: " + t);
                }
                for (RequestState s : queues.byId.values()) s.scheduled = 0;
                publishStats(policyName);
            }
        }
        for (RequestState s : new ArrayList<>(queues.byId.values())) finish(s, FinishReason.ABORT, null, "engine stopped");
        publishStats(policyName);
        Lockstep ls = lockstep;
        if (ls != null) {
            try {
                ls.close();
            } catch (RuntimeException e) {
                LOG.log(Level.FINE, "closing the DP group", e);
            }
        }
    }

    /**
     * One iteration of the lockstep loop (spec 4.2): block while paused with nothing to do (no CPU);
     * otherwise exactly one forward per iteration, real when the policy schedules something, else a
     * 1-token dummy, each preceded by the DP-wide token-count exchange; then the step count and the
     * periodic idle check. A failed collective (a peer gone) ends lockstep mode for good: this
     * rank's requests fail with the reason and the engine reports itself unhealthy.
     */
    private String lockstepIteration(Lockstep ls) {
        String policyName = null;
        boolean stepping = false; // this iteration's exchange and forward began
        try {
            Runnable first = !ls.running() && queues.isEmpty() ? inbox.poll(1, TimeUnit.SECONDS) : inbox.poll();
            if (first != null) {
                first.run();
                for (Runnable r; (r = inbox.poll()) != null; ) r.run();
            }
            if (lockstep != ls) return null; // stopped or failed while handling input
            ActivePolicy active = policies.get();
            policyName = active == null ? null : active.name();
            if (!ls.running() && queues.isEmpty()) {
                publishStats(policyName); // paused and idle
                return policyName;
            }
            forwarded = false;
            stepping = true;
            if (active != null && !queues.isEmpty()) step(active);
            if (!forwarded) ls.dummyForward(model);
            steps.incrementAndGet();
            ls.afterForward(!queues.isEmpty());
            stepping = false;
            publishStats(policyName);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            stopping = true;
        } catch (dev.dpserve.api.parallel.CollectiveException e) {
            lockstepFailed(ls, e);
        } catch (Throwable t) {
            LOG.log(Level.SEVERE, "engine step failed", t);
            for (RequestState s : new ArrayList<>(queues.running)) finish(s, FinishReason.ABORT, null, "internal error: " + t);
            for (RequestState s : queues.byId.values()) s.scheduled = 0;
            if (stepping && lockstep == ls) {
                try {
                    ls.completeFailedStep(!queues.isEmpty()); // keep the group in step
                    steps.incrementAndGet();
                } catch (dev.dpserve.api.parallel.CollectiveException e) {
                    lockstepFailed(ls, e);
                }
            }
            publishStats(policyName);
        }
        return policyName;
    }

    private void lockstepFailed(Lockstep ls, RuntimeException e) {
        String reason = "DP rank " + ls.rank() + " left lockstep: " + e.getMessage();
        LOG.log(Level.SEVERE, reason);
        lockstepFailure = reason;
        lockstep = null;
        try {
            ls.close();
        } catch (RuntimeException ce) {
            LOG.log(Level.FINE, "closing the DP group", ce);
        }
        for (RequestState s : new ArrayList<>(queues.byId.values())) finish(s, FinishReason.ABORT, null, reason);
        publishStats(null);
    }

    /** One step under {@code active}; false when the policy scheduled nothing. */
    private boolean step(ActivePolicy active) {
        StepContext ctx = new StepContext(queues, limits);
        try {
            active.policy().schedule(ctx);
        } catch (RuntimeException | LinkageError e) {
            // LinkageError: the policy's bundle went away under us (uninstall while we held the object)
            LOG.log(Level.SEVERE, "scheduling policy " + active.name() + " failed; running what it scheduled", e);
        } finally {
            ctx.end();
        }
        for (RequestState s : ctx.ignored()) {
            LOG.warning(() -> "request " + s.id + " (" + s.length + " tokens to compute) can never be scheduled by policy "
                    + active.name() + "; finished with length");
            finished.incrementAndGet();
            deliver(s, new RequestOutput(s.id, new int[0], null, FinishReason.LENGTH, null, s.prompt.length, s.generated, null));
        }
        List<RequestState> scheduled = new ArrayList<>(ctx.scheduled());
        if (scheduled.isEmpty()) return !ctx.ignored().isEmpty();

        List<CausalLm.BatchEntry> batch = new ArrayList<>(scheduled.size());
        for (RequestState s : scheduled) {
            int n = s.scheduled;
            batch.add(new CausalLm.BatchEntry(queues.kv.blockTable(s.id), s.computed, slice(s.tokens, s.computed, n),
                    s.computed + n == s.length));
        }
        Lockstep ls = lockstep;
        if (ls != null) {
            int tokens = 0;
            for (CausalLm.BatchEntry e : batch) tokens += e.tokens().length;
            ls.exchangeTokenCount(tokens);
        }
        float[][] logits = model.forward(batch);
        forwarded = true;
        if (ls == null) steps.incrementAndGet();

        for (int i = 0; i < scheduled.size(); i++) {
            RequestState s = scheduled.get(i);
            s.computed += s.scheduled;
            s.scheduled = 0;
            queues.kv.cacheComputed(s.id, s.tokens, s.computed);
            if (s.computed < s.length) continue; // prefill or recompute not finished: no token yet
            sampleAndUpdate(s, logits[i]);
        }
        return true;
    }

    private void sampleAndUpdate(RequestState s, float[] row) {
        TokenLogprobs lp = null;
        int token;
        if (s.sampling.logprobs() >= 0) {
            float[] raw = row.clone();
            suppressEarlyStops(s, row);
            token = Sampler.sample(row, s.sampling, s.random);
            lp = Sampler.logprobs(raw, token, s.sampling.logprobs());
        } else {
            suppressEarlyStops(s, row);
            token = Sampler.sample(row, s.sampling, s.random);
        }
        s.tokens[s.length++] = token;
        s.generated++;
        generationTokens.incrementAndGet();
        FinishReason reason = null;
        Integer stopReason = null;
        if (s.sampling.stopTokenIds().contains(token)) {
            reason = FinishReason.STOP;
            stopReason = token;
        } else if (!s.sampling.ignoreEos() && eosTokenIds.contains(token)) {
            reason = FinishReason.STOP;
        } else if (s.generated >= s.sampling.maxTokens() || s.length >= limits.maxModelLen()) {
            reason = FinishReason.LENGTH;
        }
        long waited = s.firstScheduledNanos - s.request.arrivalNanos(); // arrival is this JVM's nanoTime
        long queued = s.firstScheduledNanos != 0 && waited > 0 ? waited : 0;
        RequestOutput out = new RequestOutput(s.id, new int[] {token},
                lp == null ? null : List.of(lp), reason, stopReason, s.prompt.length, s.generated, null, queued);
        if (reason != null) release(s);
        deliver(s, out);
    }

    /** vLLM's min_tokens: EOS and stop token ids cannot be sampled before that many tokens. */
    private void suppressEarlyStops(RequestState s, float[] row) {
        if (s.generated >= s.sampling.minTokens()) return;
        if (!s.sampling.ignoreEos()) for (int id : eosTokenIds) if (id < row.length) row[id] = Float.NEGATIVE_INFINITY;
        for (int id : s.sampling.stopTokenIds()) if (id >= 0 && id < row.length) row[id] = Float.NEGATIVE_INFINITY;
    }

    private void finish(RequestState s, FinishReason reason, Integer stopReason, String error) {
        if (!release(s)) return;
        deliver(s, new RequestOutput(s.id, new int[0], null, reason, stopReason, s.prompt.length, s.generated, error));
    }

    private boolean release(RequestState s) {
        if (!queues.remove(s)) return false;
        finished.incrementAndGet();
        return true;
    }

    /** A listener that throws (even an Error from a half-wired bundle) must never stop the engine loop. */
    private static void deliver(RequestState s, RequestOutput out) {
        try {
            s.listener.onOutput(out);
        } catch (VirtualMachineError e) {
            throw e;
        } catch (Throwable e) {
            LOG.log(Level.WARNING, "output listener of " + s.id + " failed", e);
        }
    }

    private void publishStats(String policyName) {
        KvCacheManager kv = queues.kv;
        published = new EngineStats(queues.running.size(), queues.waiting.size(), queues.promptTokens, generationTokens.get(),
                finished.get(), steps.get(), name, kv.numUsedBlocks(), kv.numUsableBlocks(), queues.prefixQueries,
                queues.prefixHits, queues.preemptions, policyName);
    }

    private static int[] slice(int[] a, int from, int n) {
        int[] out = new int[n];
        System.arraycopy(a, from, out, 0, n);
        return out;
    }

    @Override
    public void close() {
        stopping = true;
        loop.interrupt();
        try {
            loop.join(10_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
