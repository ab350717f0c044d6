// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.rest;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dpserve.api.engine.TokenLogprobs;
import java.util.ArrayList;
import java.util.List;

/**
 * The JSON shapes of chat completions (vLLM's): {@code chat.completion} with one assistant
 * message per choice, and {@code chat.completion.chunk} events whose {@code delta} first
 * announces the role, then carries content. Chat echo prepends the last message's content.
 *
 * @param role the generated message's role
 * @param echo what echo prepends, or null
 */
record ChatCompletionJson(String role, String echo) implements CompletionFormat {
    private static final String OBJECT = "chat.completion";
    private static final String CHUNK_OBJECT = "chat.completion.chunk";

    @Override
    public ObjectNode response(CompletionJob job) {
        ArrayNode choices = Json.array();
        for (CompletionJob.Choice c : job.choices) {
            ObjectNode message = Json.object();
            message.put("role", role);
            message.put("content", echo == null ? c.text.text() : echo + c.text.text());
            message.putNull("refusal");
            message.putNull("annotations");
            message.putNull("audio");
            message.putNull("function_call");
            message.putArray("tool_calls");
            message.putNull("reasoning_content");
            ObjectNode choice = Json.object();
            choice.put("index", c.index);
            choice.set("message", message);
            choice.set("logprobs", logprobs(job, c.anyLogprobs ? c.logprobs : null));
            choice.put("finish_reason", c.finishReason);
            CompletionJson.putStopReason(choice, c.stopReason);
            if (job.request.returnTokenIds()) {
                choice.set("token_ids", CompletionJson.ints(c.tokenIds.stream().mapToInt(Integer::intValue).toArray()));
            }
            choices.add(choice);
        }
        ObjectNode root = CompletionJson.header(job, OBJECT);
        root.set("choices", choices);
        root.putNull("service_tier");
        root.putNull("system_fingerprint");
        root.set("usage", usage(job.promptTokens(), job.completionTokens()));
        root.putNull("prompt_logprobs");
        if (job.request.returnTokenIds()) root.set("prompt_token_ids", promptTokenIds(job));
        root.putNull("kv_transfer_params");
        return root;
    }

    /** Per choice: the role with empty content, then (echo) the echoed text, before any engine output. */
    @Override
    public List<ObjectNode> openingChunks(CompletionJob job) {
        List<ObjectNode> chunks = new ArrayList<>();
        for (CompletionJob.Choice c : job.choices) {
            ObjectNode delta = Json.object().put("role", role).put("content", "");
            ObjectNode chunk = chunk(job, c, delta, null);
            if (job.request.returnTokenIds()) chunk.set("prompt_token_ids", promptTokenIds(job));
            chunks.add(chunk);
        }
        if (echo != null && !echo.isEmpty()) {
            for (CompletionJob.Choice c : job.choices) chunks.add(chunk(job, c, Json.object().put("content", echo), null));
        }
        return chunks;
    }

    @Override
    public ObjectNode chunk(CompletionJob job, CompletionJob.Update u, String text, boolean first, int offset) {
        ObjectNode chunk = chunk(job, u.choice(), Json.object().put("content", text), u.logprobs());
        ObjectNode choice = (ObjectNode) chunk.get("choices").get(0);
        if (u.finished()) CompletionJson.putStopReason(choice, u.choice().stopReason);
        if (job.request.returnTokenIds()) choice.set("token_ids", CompletionJson.ints(u.tokenIds()));
        return chunk;
    }

    @Override
    public ObjectNode usageChunk(CompletionJob job) {
        return CompletionJson.usageChunk(job, CHUNK_OBJECT);
    }

    private ObjectNode chunk(CompletionJob job, CompletionJob.Choice c, ObjectNode delta, List<TokenLogprobs> lps) {
        ObjectNode choice = Json.object();
        choice.put("index", c.index);
        choice.set("delta", delta);
        choice.set("logprobs", logprobs(job, lps));
        choice.put("finish_reason", c.finishReason);
        ObjectNode root = CompletionJson.header(job, CHUNK_OBJECT);
        root.set("choices", Json.array().add(choice));
        if (job.request.continuousUsageStats()) {
            root.set("usage", CompletionJson.usage(job.prompts.getFirst().tokenIds().length, c.text.generatedTokens()));
        }
        return root;
    }

    private static ObjectNode usage(int promptTokens, int completionTokens) {
        ObjectNode usage = CompletionJson.usage(promptTokens, completionTokens);
        usage.putNull("prompt_tokens_details");
        return usage;
    }

    private static ArrayNode promptTokenIds(CompletionJob job) {
        return CompletionJson.ints(job.prompts.getFirst().tokenIds());
    }

    private static ObjectNode logprobs(CompletionJob job, List<TokenLogprobs> lps) {
        if (job.request.logprobs() == null || lps == null) return null;
        return ChatLogprobs.toJson(lps, job.request.logprobs(), job.tokenizer());
    }
}
