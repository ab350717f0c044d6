// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.engine;

import dev.dpserve.api.engine.EngineRequest;
import dev.dpserve.api.engine.EngineStats;
import dev.dpserve.api.engine.FinishReason;
import dev.dpserve.api.engine.InvalidRequestException;
import dev.dpserve.api.engine.OutputListener;
import dev.dpserve.api.engine.RequestOutput;
import dev.dpserve.api.engine.SamplingParams;
import dev.dpserve.api.engine.TokenLogprobs;
import dev.dpserve.api.model.CausalLm;
import dev.dpserve.api.model.SequenceCache;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The engine core: owns request state and runs the step loop on one thread.
 *
 * <p>One step: take new requests and aborts → schedule (running decodes first, one token each,
 * then prefill chunks of waiting requests within the token budget) → one forward pass over all
 * scheduled tokens of all requests → sample → update → emit outputs. With nothing to do the loop
 * blocks on its input queue (no busy CPU).
 *
 * <p>Threading: {@link #submit} and {@link #abort} are called from any thread and only enqueue;
 * everything else runs on the loop thread.
 */
public final class EngineCore implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(EngineCore.class.getName());

    /** Limits that shape scheduling. */
    public record Limits(int maxModelLen, int maxNumSeqs, int maxNumBatchedTokens) {
        public Limits {
            if (maxModelLen < 1 || maxNumSeqs < 1 || maxNumBatchedTokens < 1) {
                throw new IllegalArgumentException("limits must be positive: " + maxModelLen + ", " + maxNumSeqs + ", " + maxNumBatchedTokens);
            }
        }
    }

    private final CausalLm model;
    private final Limits limits;
    private final Set<Integer> eosTokenIds;
    private final SplittableRandom engineRandom;
    private final String name;

    private final LinkedBlockingQueue<Runnable> inbox = new LinkedBlockingQueue<>();
    private final ArrayDeque<Sequence> waiting = new ArrayDeque<>();
    private final Map<String, Sequence> byId = new LinkedHashMap<>();
    private final List<Sequence> running = new ArrayList<>();
    private final Thread loop;
    private volatile boolean stopping;

    private final AtomicLong promptTokens = new AtomicLong();
    private final AtomicLong generationTokens = new AtomicLong();
    private final AtomicLong finished = new AtomicLong();
    private final AtomicLong steps = new AtomicLong();
    private volatile int runningCount;
    private volatile int waitingCount;

    /** Per-request state, touched only by the loop thread. */
    private static final class Sequence {
        final EngineRequest request;
        final int[] prompt;
        final SamplingParams sampling;
        final OutputListener listener;
        final SplittableRandom random;
        SequenceCache cache;
        int[] tokens;        // prompt followed by generated tokens
        int length;          // valid entries of tokens
        int computed;        // tokens whose KV is in the cache
        int generated;

        Sequence(EngineRequest request, OutputListener listener, SplittableRandom random) {
            this.request = request;
            this.prompt = request.promptTokenIds();
            this.sampling = request.sampling();
            this.listener = listener;
            this.random = random;
            this.tokens = new int[prompt.length + request.sampling().maxTokens()];
            System.arraycopy(prompt, 0, tokens, 0, prompt.length);
            this.length = prompt.length;
        }

    }

    public EngineCore(CausalLm model, Limits limits, Set<Integer> eosTokenIds, long seed, String name) {
        this.model = model;
        this.limits = limits;
        this.eosTokenIds = Set.copyOf(eosTokenIds);
        this.engineRandom = new SplittableRandom(seed);
        this.name = name;
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
    }

    public void submit(EngineRequest request, OutputListener listener) {
        validate(request);
        if (stopping) throw new dev.dpserve.api.engine.EngineUnavailableException("engine is stopping");
        inbox.add(() -> admit(request, listener));
    }

    public void abort(String requestId) {
        inbox.add(() -> finish(byId.get(requestId), FinishReason.ABORT, null, null));
    }

    public EngineStats stats() {
        return new EngineStats(runningCount, waitingCount, promptTokens.get(), generationTokens.get(),
                finished.get(), steps.get(), name);
    }

    /** Null while the loop is healthy. */
    public String failure() {
        return stopping || loop.isAlive() ? null : "engine loop is not running";
    }

    private void admit(EngineRequest request, OutputListener listener) {
        if (byId.containsKey(request.requestId())) {
            listener.onOutput(new RequestOutput(request.requestId(), new int[0], null, FinishReason.ABORT, null,
                    request.promptLength(), 0, "duplicate request id " + request.requestId()));
            return;
        }
        Long seed = request.sampling().seed();
        SplittableRandom random = seed != null ? new SplittableRandom(seed) : engineRandom.split();
        Sequence s = new Sequence(request, listener, random);
        byId.put(request.requestId(), s);
        waiting.add(s);
    }

    private void run() {
        while (!stopping) {
            try {
                Runnable first = (running.isEmpty() && waiting.isEmpty()) ? inbox.poll(1, TimeUnit.SECONDS) : inbox.poll();
                if (first != null) {
                    first.run();
                    for (Runnable r; (r = inbox.poll()) != null; ) r.run();
                }
                if (!running.isEmpty() || !waiting.isEmpty()) step();
                runningCount = running.size();
                waitingCount = waiting.size();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            } catch (Throwable t) {
                // A failing step fails the requests in it, never the engine.
                LOG.log(Level.SEVERE, "engine step failed", t);
                for (Sequence s : new ArrayList<>(running)) {
                    finish(s, FinishReason.ABORT, null, "internal error: " + t);
                }
            }
        }
        for (Sequence s : new ArrayList<>(byId.values())) finish(s, FinishReason.ABORT, null, "engine stopped");
    }

    private void step() {
        // Schedule: decodes of running sequences first (one token each), then prefill chunks.
        int budget = limits.maxNumBatchedTokens();
        List<Sequence> scheduled = new ArrayList<>();
        List<CausalLm.BatchEntry> batch = new ArrayList<>();
        for (Sequence s : running) {
            if (budget == 0) break;
            int n = Math.min(budget, s.length - s.computed);
            batch.add(new CausalLm.BatchEntry(s.cache, slice(s.tokens, s.computed, n)));
            scheduled.add(s);
            budget -= n;
        }
        while (budget > 0 && !waiting.isEmpty() && running.size() < limits.maxNumSeqs()) {
            Sequence s = waiting.poll();
            int capacity = Math.min(limits.maxModelLen(), s.tokens.length);
            s.cache = model.newSequence(capacity);
            running.add(s);
            promptTokens.addAndGet(s.prompt.length);
            int n = Math.min(budget, s.length - s.computed);
            batch.add(new CausalLm.BatchEntry(s.cache, slice(s.tokens, s.computed, n)));
            scheduled.add(s);
            budget -= n;
        }
        if (batch.isEmpty()) return;

        float[][] logits = model.forward(batch);
        steps.incrementAndGet();

        for (int i = 0; i < scheduled.size(); i++) {
            Sequence s = scheduled.get(i);
            s.computed += batch.get(i).tokens().length;
            if (s.computed < s.length) continue; // prefill chunk not finished: no token yet
            float[] row = logits[i];
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
            RequestOutput out = new RequestOutput(s.request.requestId(), new int[] {token},
                    lp == null ? null : List.of(lp), reason, stopReason, s.prompt.length, s.generated, null);
            if (reason != null) {
                release(s);
            }
            deliver(s, out);
        }
    }

    /** vLLM's min_tokens: EOS and stop token ids cannot be sampled before that many tokens. */
    private void suppressEarlyStops(Sequence s, float[] row) {
        if (s.generated >= s.sampling.minTokens()) return;
        if (!s.sampling.ignoreEos()) for (int id : eosTokenIds) if (id < row.length) row[id] = Float.NEGATIVE_INFINITY;
        for (int id : s.sampling.stopTokenIds()) if (id >= 0 && id < row.length) row[id] = Float.NEGATIVE_INFINITY;
    }

    private void finish(Sequence s, FinishReason reason, Integer stopReason, String error) {
        if (s == null) return;
        release(s);
        deliver(s, new RequestOutput(s.request.requestId(), new int[0], null, reason, stopReason,
                s.prompt.length, s.generated, error));
    }

    private void release(Sequence s) {
        if (byId.remove(s.request.requestId()) == null) return;
        waiting.remove(s);
        running.remove(s);
        if (s.cache != null) {
            s.cache.close();
            s.cache = null;
        }
        finished.incrementAndGet();
    }

    private static void deliver(Sequence s, RequestOutput out) {
        try {
            s.listener.onOutput(out);
        } catch (RuntimeException e) {
            LOG.log(Level.WARNING, "output listener of " + s.request.requestId() + " failed", e);
        }
    }

    private static int[] slice(int[] a, int from, int n) {
        int[] out = new int[n];
        System.arraycopy(a, from, out, 0, n);
        return out;
    }

    /** Number of requests the engine holds (waiting + running), read from any thread. */
    public int inFlight() { return runningCount + waitingCount; }

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
