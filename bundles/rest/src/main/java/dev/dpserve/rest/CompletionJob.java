// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.rest;

import dev.dpserve.api.engine.EngineRequest;
import dev.dpserve.api.engine.InferenceEngine;
import dev.dpserve.api.engine.ModelCard;
import dev.dpserve.api.engine.RequestOutput;
import dev.dpserve.api.engine.SamplingParams;
import dev.dpserve.api.engine.TokenLogprobs;
import dev.dpserve.api.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * One completions request in flight: its prompts rendered to token ids, one engine request per
 * choice ({@code <id>-<choice index>}, choice index = prompt index * n + i), and the queue the
 * engine's listeners feed.
 *
 * <p>Listeners only enqueue, so the engine thread never waits for us. Everything else (detokenizing,
 * stop strings, aborting) happens on the one HTTP thread that calls {@link #next()}.
 */
final class CompletionJob {

    /** A rendered prompt. {@code echoText} is what {@code echo} prepends. */
    record RenderedPrompt(int[] tokenIds, String echoText, SamplingParams sampling) {
    }

    /** One choice (one engine request). Mutated only by the thread calling {@link #next()}. */
    static final class Choice {
        final int index;
        final int promptIndex;
        final String engineRequestId;
        final TextOutputProcessor text;
        final List<Integer> tokenIds = new ArrayList<>();
        final List<TokenLogprobs> logprobs = new ArrayList<>();
        boolean anyLogprobs;
        String finishReason;
        Object stopReason;
        int releasedCodePoints;   // text already streamed to the client, echo included
        boolean started;          // a chunk has been streamed for this choice

        Choice(int index, int promptIndex, String engineRequestId, TextOutputProcessor text) {
            this.index = index;
            this.promptIndex = promptIndex;
            this.engineRequestId = engineRequestId;
            this.text = text;
        }

        boolean finished() { return finishReason != null; }
    }

    /**
     * What one engine output did to a choice.
     *
     * @param tokenIds the choice's new token ids
     * @param logprobs their logprobs, or null when the engine sent none
     * @param error    the engine's failure message; the request as a whole failed
     */
    record Update(Choice choice, String text, int[] tokenIds, List<TokenLogprobs> logprobs, String error) {
        boolean finished() { return choice.finished(); }
    }

    private record Event(int choice, RequestOutput output) {
    }

    final String id;
    final long created;
    final String modelName;
    final CompletionRequest request;
    final List<RenderedPrompt> prompts;
    final List<Choice> choices;
    private final InferenceEngine engine;
    private final Tokenizer tokenizer;
    private final LinkedBlockingQueue<Event> queue = new LinkedBlockingQueue<>();
    private Event pending; // taken by awaitOutput, handed out by the next next()
    private int unfinished;

    private CompletionJob(String id, CompletionRequest request, InferenceEngine engine, List<RenderedPrompt> prompts) {
        this.id = id;
        this.created = System.currentTimeMillis() / 1000;
        this.engine = engine;
        this.tokenizer = engine.tokenizer();
        this.modelName = engine.model().servedName();
        this.request = request;
        this.prompts = List.copyOf(prompts);
        List<Choice> list = new ArrayList<>();
        for (int p = 0; p < prompts.size(); p++) {
            for (int i = 0; i < request.n(); i++) {
                int index = p * request.n() + i;
                TextOutputProcessor text = new TextOutputProcessor(
                        tokenizer.newDetokenizer(request.skipSpecialTokens()), request.stop(),
                        request.includeStopStrInOutput(), request.minTokens());
                list.add(new Choice(index, p, id + "-" + index, text));
            }
        }
        this.choices = List.copyOf(list);
        this.unfinished = choices.size();
    }

    /**
     * How the prompt length and max_tokens are checked against max_model_len; vLLM's two
     * endpoints differ. COMPLETIONS: the prompt must fit in max_model_len - max_tokens.
     * CHAT: the prompt must be shorter than max_model_len, then prompt + max_tokens must fit.
     */
    enum LengthRule { COMPLETIONS, CHAT }

    /** Tokenizes and validates every prompt; nothing reaches the engine yet. */
    static CompletionJob prepare(String id, CompletionRequest request, InferenceEngine engine) {
        return prepare(id, request, engine, LengthRule.COMPLETIONS);
    }

    static CompletionJob prepare(String id, CompletionRequest request, InferenceEngine engine, LengthRule rule) {
        ModelCard card = engine.model();
        Tokenizer tokenizer = engine.tokenizer();
        int vocab = Math.min(card.vocabSize(), tokenizer.vocabSize());
        int maxModelLen = card.maxModelLen();
        List<RenderedPrompt> rendered = new ArrayList<>();
        for (Prompt prompt : request.prompts()) {
            int[] ids = prompt.isText() ? tokenizer.encode(prompt.text(), request.addSpecialTokens()) : prompt.tokenIds();
            for (int t : ids) {
                if (t < 0 || t >= vocab) throw OpenAiError.badRequest("Token id " + t + " is out of vocabulary", "prompt");
            }
            boolean truncated = false;
            Integer keep = request.truncatePromptTokens();
            if (keep != null) {
                if (keep > maxModelLen) {
                    throw OpenAiError.badRequest("truncate_prompt_tokens value (" + keep
                            + ") is greater than max_model_len (" + maxModelLen
                            + "). Please, select a smaller truncation size.", "truncate_prompt_tokens");
                }
                int k = keep == -1 ? maxModelLen : keep;
                if (ids.length > k) {
                    ids = Arrays.copyOfRange(ids, ids.length - k, ids.length);
                    truncated = true;
                }
            }
            if (ids.length == 0) throw CompletionRequestParser.emptyPrompt();
            SamplingParams sampling = rule == LengthRule.CHAT ? chatSampling(request, ids.length, maxModelLen)
                    : sampling(request, ids.length, maxModelLen);
            String echo = !request.echo() ? null
                    : prompt.isText() && !truncated ? prompt.text() : tokenizer.decode(ids, false);
            rendered.add(new RenderedPrompt(ids, echo, sampling));
        }
        return new CompletionJob(id, request, engine, rendered);
    }

    /** vLLM's completions length rule: the prompt must fit in max_model_len - max_tokens. */
    private static SamplingParams sampling(CompletionRequest r, int promptLen, int maxModelLen) {
        Integer requested = r.maxTokens();
        int maxTokens;
        if (requested == null) {
            if (promptLen > maxModelLen) throw contextTooLong(maxModelLen, promptLen);
            maxTokens = maxModelLen - promptLen;
        } else {
            maxTokens = requested;
        }
        SamplingParams sp = samplingParams(r, maxTokens);
        if (requested != null && promptLen > maxModelLen - maxTokens) {
            if (maxTokens < maxModelLen) throw contextTooLong(maxModelLen - maxTokens, promptLen);
            throw maxTokensTooLarge(maxTokens, maxModelLen, promptLen);
        }
        return sp;
    }

    /** vLLM's chat rule (serving_engine._validate_input): no room left at all is "too long". */
    private static SamplingParams chatSampling(CompletionRequest r, int promptLen, int maxModelLen) {
        if (promptLen >= maxModelLen) throw contextTooLong(maxModelLen, promptLen);
        Integer requested = r.maxTokens();
        SamplingParams sp = samplingParams(r, requested == null ? maxModelLen - promptLen : requested);
        if (requested != null && promptLen + requested > maxModelLen) {
            throw maxTokensTooLarge(requested, maxModelLen, promptLen);
        }
        return sp;
    }

    /** Constructing validates the values (InvalidRequestException carries vLLM's message and param). */
    private static SamplingParams samplingParams(CompletionRequest r, int maxTokens) {
        return new SamplingParams(r.temperature(), r.topP(), r.topK(), r.minP(), r.seed(), maxTokens,
                r.minTokens(), r.stopTokenIds(), r.ignoreEos(), r.logprobs() == null ? -1 : r.logprobs());
    }

    private static OpenAiError maxTokensTooLarge(int maxTokens, int maxModelLen, int promptLen) {
        return OpenAiError.badRequest("'max_tokens' or 'max_completion_tokens' is too large: " + maxTokens
                + ". This model's maximum context length is " + maxModelLen + " tokens and your request has "
                + promptLen + " input tokens (" + maxTokens + " > " + maxModelLen + " - " + promptLen + ").",
                "max_tokens");
    }

    private static OpenAiError contextTooLong(int limit, int promptLen) {
        return OpenAiError.badRequest("This model's maximum context length is " + limit
                + " tokens. However, your request has " + promptLen
                + " input tokens. Please reduce the length of the input messages.", "prompt");
    }

    /**
     * Submits every choice. If one submission fails, those already queued are aborted and the
     * exception propagates, so a refused request leaves nothing behind in the engine.
     */
    void submit() {
        submit(null);
    }

    /** As {@link #submit()}, observing every engine request's latencies in {@code metrics} when given. */
    void submit(ServingMetrics metrics) {
        long arrival = System.nanoTime();
        List<Choice> submitted = new ArrayList<>();
        try {
            for (Choice c : choices) {
                RenderedPrompt prompt = prompts.get(c.promptIndex);
                SamplingParams sp = prompt.sampling();
                int i = c.index - c.promptIndex * request.n();
                if (sp.seed() != null && i > 0) sp = sp.withSeed(sp.seed() + i);
                int choiceIndex = c.index;
                ServingMetrics.Tracker tracker = metrics == null ? null : metrics.track(engine.model().servedName(), arrival);
                engine.submit(new EngineRequest(c.engineRequestId, prompt.tokenIds(), sp, arrival), out -> {
                    try {
                        if (tracker != null) tracker.onOutput(out);
                    } finally {
                        queue.add(new Event(choiceIndex, out)); // the client gets its output even if metrics fail
                    }
                });
                submitted.add(c);
            }
        } catch (RuntimeException e) {
            for (Choice c : submitted) engine.abort(c.engineRequestId);
            for (Choice c : choices) c.finishReason = "abort";
            unfinished = 0;
            throw e;
        }
    }

    boolean done() { return unfinished == 0; }

    /** Waits up to {@code millis} for an engine output; true when {@link #next()} will not block. */
    boolean awaitOutput(long millis) throws InterruptedException {
        if (pending == null) pending = queue.poll(millis, TimeUnit.MILLISECONDS);
        return pending != null;
    }

    /**
     * Waits for the next engine output and applies it. Returns null for outputs of choices that
     * already finished (the engine's ABORT after a stop string).
     */
    Update next() throws InterruptedException {
        Event event = pending != null ? pending : queue.take();
        pending = null;
        Choice c = choices.get(event.choice());
        if (c.finished()) return null;
        RequestOutput out = event.output();
        if (out.error() != null) {
            c.finishReason = "abort";
            unfinished--;
            return new Update(c, "", new int[0], null, out.error());
        }
        TextOutputProcessor.Delta delta = c.text.accept(out.newTokenIds(), out.finishReason(), out.stopReason());
        int[] ids = out.newTokenIds() == null ? new int[0] : Arrays.copyOf(out.newTokenIds(), delta.consumed());
        for (int t : ids) c.tokenIds.add(t);
        List<TokenLogprobs> lps = null;
        if (out.logprobs() != null) {
            lps = out.logprobs().subList(0, Math.min(delta.consumed(), out.logprobs().size()));
            c.logprobs.addAll(lps);
            c.anyLogprobs = true;
        }
        if (delta.finished()) {
            c.finishReason = delta.finishReason();
            c.stopReason = delta.stopReason();
            unfinished--;
            if (!out.finished()) engine.abort(c.engineRequestId);
        }
        return new Update(c, delta.text(), ids, lps, null);
    }

    /** Aborts every choice that has not finished (client gone, error elsewhere). */
    void abortUnfinished() {
        for (Choice c : choices) {
            if (!c.finished()) {
                c.finishReason = "abort";
                unfinished--;
                engine.abort(c.engineRequestId);
            }
        }
    }

    Tokenizer tokenizer() { return tokenizer; }

    int promptTokens() {
        return prompts.stream().mapToInt(p -> p.tokenIds().length).sum();
    }

    int completionTokens() {
        return choices.stream().mapToInt(c -> c.text.generatedTokens()).sum();
    }
}
