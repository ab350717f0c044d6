// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.rest;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dpserve.api.engine.TokenLogprobs;
import java.util.List;

/** The JSON shapes of text completions: the whole response, stream chunks and the usage chunk. */
final class CompletionJson implements CompletionFormat {
    static final CompletionJson INSTANCE = new CompletionJson();

    private static final String OBJECT = "text_completion";

    private CompletionJson() {
    }

    @Override
    public ObjectNode response(CompletionJob job) {
        ArrayNode choices = Json.array();
        for (CompletionJob.Choice c : job.choices) {
            CompletionJob.RenderedPrompt prompt = job.prompts.get(c.promptIndex);
            ObjectNode choice = Json.object();
            choice.put("index", c.index);
            String text = c.text.text();
            choice.put("text", prompt.echoText() == null ? text : prompt.echoText() + text);
            choice.set("logprobs", logprobs(job, c.anyLogprobs ? c.logprobs : null, 0));
            choice.put("finish_reason", c.finishReason);
            putStopReason(choice, c.stopReason);
            choice.putNull("prompt_logprobs");
            if (job.request.returnTokenIds()) {
                choice.set("prompt_token_ids", ints(prompt.tokenIds()));
                choice.set("token_ids", ints(c.tokenIds.stream().mapToInt(Integer::intValue).toArray()));
            }
            choices.add(choice);
        }
        ObjectNode root = header(job, OBJECT);
        root.set("choices", choices);
        root.set("usage", usage(job.promptTokens(), job.completionTokens()));
        return root;
    }

    @Override
    public ObjectNode chunk(CompletionJob job, CompletionJob.Update u, String text, boolean first, int offset) {
        CompletionJob.Choice c = u.choice();
        ObjectNode choice = Json.object();
        choice.put("index", c.index);
        choice.put("text", text);
        choice.set("logprobs", logprobs(job, u.logprobs(), offset));
        choice.put("finish_reason", c.finishReason);
        putStopReason(choice, c.stopReason);
        if (job.request.returnTokenIds()) {
            if (first) {
                choice.set("prompt_token_ids", ints(job.prompts.get(c.promptIndex).tokenIds()));
            } else {
                choice.putNull("prompt_token_ids");
            }
            choice.set("token_ids", ints(u.tokenIds()));
        }
        ObjectNode root = header(job, OBJECT);
        root.set("choices", Json.array().add(choice));
        if (job.request.continuousUsageStats()) {
            root.set("usage", usage(job.prompts.get(c.promptIndex).tokenIds().length, c.text.generatedTokens()));
        } else {
            root.putNull("usage");
        }
        return root;
    }

    @Override
    public ObjectNode usageChunk(CompletionJob job) {
        return usageChunk(job, OBJECT);
    }

    static ObjectNode usageChunk(CompletionJob job, String object) {
        ObjectNode root = header(job, object);
        root.set("choices", Json.array());
        root.set("usage", usage(job.promptTokens(), job.completionTokens()));
        return root;
    }

    static ObjectNode header(CompletionJob job, String object) {
        ObjectNode root = Json.object();
        root.put("id", job.id);
        root.put("object", object);
        root.put("created", job.created);
        root.put("model", job.modelName);
        return root;
    }

    private static ObjectNode logprobs(CompletionJob job, List<TokenLogprobs> lps, int offset) {
        if (job.request.logprobs() == null || lps == null) return null;
        return CompletionLogprobs.toJson(lps, job.request.logprobs(), offset, job.tokenizer());
    }

    static ObjectNode usage(int promptTokens, int completionTokens) {
        ObjectNode usage = Json.object();
        usage.put("prompt_tokens", promptTokens);
        usage.put("total_tokens", promptTokens + completionTokens);
        usage.put("completion_tokens", completionTokens);
        return usage;
    }

    static void putStopReason(ObjectNode choice, Object stopReason) {
        switch (stopReason) {
            case null -> choice.putNull("stop_reason");
            case Integer id -> choice.put("stop_reason", id);
            default -> choice.put("stop_reason", stopReason.toString());
        }
    }

    static ArrayNode ints(int[] values) {
        ArrayNode a = Json.array();
        for (int v : values) a.add(v);
        return a;
    }
}
