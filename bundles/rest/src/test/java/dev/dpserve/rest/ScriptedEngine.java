// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.rest;

import dev.dpserve.api.engine.EngineRequest;
import dev.dpserve.api.engine.EngineStats;
import dev.dpserve.api.engine.EngineUnavailableException;
import dev.dpserve.api.engine.FinishReason;
import dev.dpserve.api.engine.InferenceEngine;
import dev.dpserve.api.engine.ModelCard;
import dev.dpserve.api.engine.OutputListener;
import dev.dpserve.api.engine.RequestOutput;
import dev.dpserve.api.engine.SamplingParams;
import dev.dpserve.api.engine.TokenLogprobs;
import dev.dpserve.api.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/**
 * A deterministic test engine. Each request generates {@code script.apply(request)} (cycled), one
 * step at a time on the engine's own thread, honouring max_tokens, min_tokens, EOS/ignore_eos,
 * stop_token_ids and abort. Logprobs are synthetic: token at step s has logprob -0.25*s, its top
 * list is [t, t+1, ...] with logprobs -0.25*s - 0.5*i.
 */
final class ScriptedEngine implements InferenceEngine, AutoCloseable {
    static final ModelCard CARD = new ModelCard("test-model", "/models/test-model", 64, ByteTokenizer.VOCAB,
            "test", 1_700_000_000L);

    final ByteTokenizer tokenizer = new ByteTokenizer();
    final List<EngineRequest> submitted = new CopyOnWriteArrayList<>();
    final List<String> aborted = new CopyOnWriteArrayList<>();
    private final Map<String, Boolean> abortFlags = new ConcurrentHashMap<>();
    private final ScheduledExecutorService thread = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "scripted-engine");
        t.setDaemon(true);
        return t;
    });

    volatile Function<EngineRequest, int[]> script = r -> ByteTokenizer.ids("abcdefghijklmnopqrstuvwxyz");
    volatile long stepDelayMillis;
    volatile int tokensPerOutput = 1;
    volatile String unhealthy;
    volatile RuntimeException submitFailure;
    volatile int failOnSubmitNumber = -1;
    volatile int failAtStep = -1;
    volatile ModelCard card = CARD;
    /** When set, the engine thread waits on it before generating a request's second token. */
    volatile CountDownLatch secondTokenGate;

    @Override
    public ModelCard model() { return card; }

    @Override
    public Tokenizer tokenizer() { return tokenizer; }

    @Override
    public void submit(EngineRequest request, OutputListener listener) {
        if (submitFailure != null) throw submitFailure;
        if (unhealthy != null) throw new dev.dpserve.api.engine.EngineUnavailableException(unhealthy); // a dead engine refuses
        if (failOnSubmitNumber == submitted.size()) throw new EngineUnavailableException("queue full");
        submitted.add(request);
        abortFlags.put(request.requestId(), false);
        int[] script = this.script.apply(request);
        thread.execute(() -> step(request, listener, script, 0));
    }

    private void step(EngineRequest request, OutputListener listener, int[] script, int done) {
        String id = request.requestId();
        SamplingParams sp = request.sampling();
        if (abortFlags.get(id)) {
            abortFlags.remove(id);
            listener.onOutput(new RequestOutput(id, new int[0], null, FinishReason.ABORT, null,
                    request.promptLength(), done, null));
            return;
        }
        if (done == failAtStep) {
            abortFlags.remove(id);
            listener.onOutput(new RequestOutput(id, new int[0], null, FinishReason.ABORT, null,
                    request.promptLength(), done, "device on fire"));
            return;
        }
        CountDownLatch gate = secondTokenGate;
        if (done == 1 && gate != null) {
            try {
                gate.await(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
        List<Integer> ids = new ArrayList<>();
        List<TokenLogprobs> lps = sp.logprobs() >= 0 ? new ArrayList<>() : null;
        FinishReason finish = null;
        Integer stopReason = null;
        while (ids.size() < tokensPerOutput && finish == null) {
            int t = script[done % script.length];
            done++;
            ids.add(t);
            if (lps != null) lps.add(logprobs(t, done, sp.logprobs()));
            if (done > sp.minTokens() && t == ByteTokenizer.EOS && !sp.ignoreEos()) {
                finish = FinishReason.STOP;
            } else if (done > sp.minTokens() && sp.stopTokenIds().contains(t)) {
                finish = FinishReason.STOP;
                stopReason = t;
            } else if (done >= sp.maxTokens()) {
                finish = FinishReason.LENGTH;
            }
        }
        if (finish != null) abortFlags.remove(id);
        listener.onOutput(new RequestOutput(id, ids.stream().mapToInt(Integer::intValue).toArray(), lps, finish,
                stopReason, request.promptLength(), done, null, 1_000_000L)); // "queued" 1 ms
        if (finish == null) {
            int next = done;
            thread.schedule(() -> step(request, listener, script, next), stepDelayMillis, TimeUnit.MILLISECONDS);
        }
    }

    private static TokenLogprobs logprobs(int t, int step, int k) {
        int[] top = new int[k];
        float[] lp = new float[k];
        for (int i = 0; i < k; i++) {
            top[i] = (t + i) % ByteTokenizer.VOCAB;
            lp[i] = -0.25f * step - 0.5f * i;
        }
        return new TokenLogprobs(t, -0.25f * step, 1, top, lp);
    }

    @Override
    public void abort(String requestId) {
        aborted.add(requestId);
        abortFlags.computeIfPresent(requestId, (k, v) -> true);
    }

    @Override
    public EngineStats stats() {
        return new EngineStats(0, 0, 0, 0, 0, 0, "scripted");
    }

    @Override
    public String unhealthyReason() { return unhealthy; }

    @Override
    public void close() { thread.shutdownNow(); }
}
