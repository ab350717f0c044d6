// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.rest;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Turns a chat completions body into a {@link ChatRequest}, with vLLM's defaults and messages.
 * Sampling and streaming fields go through {@link CompletionRequestParser}; this class owns
 * messages, the chat flavour of max_tokens and logprobs, tools and the template options.
 */
final class ChatRequestParser {
    private static final Set<String> ROLES = Set.of("system", "developer", "user", "assistant", "tool");

    /** Message keys passed to the template besides role and content (what vLLM keeps). */
    private static final List<String> PASSED_KEYS = List.of("name", "tool_calls", "tool_call_id", "reasoning_content");

    private static final Set<String> KNOWN = Set.of(
            "messages", "model", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "max_tokens",
            "max_completion_tokens", "n", "presence_penalty", "response_format", "seed", "stop", "stream",
            "stream_options", "temperature", "top_p", "tools", "tool_choice", "parallel_tool_calls", "user",
            "reasoning_effort", "best_of", "use_beam_search", "top_k", "min_p", "repetition_penalty",
            "length_penalty", "stop_token_ids", "include_stop_str_in_output", "ignore_eos", "min_tokens",
            "skip_special_tokens", "spaces_between_special_tokens", "truncate_prompt_tokens", "prompt_logprobs",
            "allowed_token_ids", "bad_words", "echo", "add_generation_prompt", "continue_final_message",
            "add_special_tokens", "documents", "chat_template", "chat_template_kwargs", "structured_outputs",
            "guided_json", "guided_regex", "guided_choice", "guided_grammar", "guided_decoding_backend",
            "guided_whitespace_pattern", "structural_tag", "priority", "request_id", "logits_processors",
            "return_tokens_as_token_ids", "return_token_ids", "cache_salt", "kv_transfer_params", "vllm_xargs",
            "prompt_embeds");

    private ChatRequestParser() {
    }

    static ChatRequest parse(String body) {
        RequestFields f = RequestFields.parse(body);
        CompletionRequestParser.logUnknown(f, KNOWN);
        CompletionRequestParser.rejectUnsupported(f);
        f.string("user", null);
        List<Map<String, Object>> messages = messages(f);

        boolean addGenerationPrompt = f.bool("add_generation_prompt", true);
        boolean continueFinalMessage = f.bool("continue_final_message", false);
        if (addGenerationPrompt && continueFinalMessage) {
            throw OpenAiError.badRequest("Cannot set both `continue_final_message` and `add_generation_prompt` to True.",
                    "continue_final_message");
        }

        Integer maxTokens = f.integer("max_completion_tokens");
        if (maxTokens == null) maxTokens = f.integer("max_tokens");
        CompletionRequest completion = CompletionRequestParser.build(f, List.of(), maxTokens, logprobs(f), false,
                false);
        return new ChatRequest(messages, addGenerationPrompt, continueFinalMessage, f.string("chat_template", null),
                templateVariables(f), f.bool("echo", false), completion);
    }

    /** Engine logprobs: {@code top_logprobs} (default 0) when {@code logprobs} is true, else none. */
    private static Integer logprobs(RequestFields f) {
        boolean logprobs = f.bool("logprobs", false);
        Integer top = f.integer("top_logprobs");
        if (top != null && top < 0) {
            throw OpenAiError.badRequest("`top_logprobs` must be a positive value.", "top_logprobs");
        }
        if (top != null && top > 0 && !logprobs) {
            throw OpenAiError.badRequest("when using `top_logprobs`, `logprobs` must be set to true.", "top_logprobs");
        }
        if (!logprobs) return null;
        int k = top == null ? 0 : top;
        CompletionRequestParser.requireLogprobsWithinLimit(k, "top_logprobs");
        return k;
    }

    /** tools (only with tool_choice "none"), documents, then chat_template_kwargs over both. */
    private static Map<String, Object> templateVariables(RequestFields f) {
        JsonNode tools = f.raw("tools");
        JsonNode toolChoice = f.raw("tool_choice");
        boolean choiceNone = toolChoice != null && toolChoice.isTextual() && "none".equals(toolChoice.textValue());
        if (toolChoice != null && !choiceNone) {
            throw CompletionRequestParser.notSupported("tool_choice", "tool calling is not implemented; "
                    + "only \"none\" is accepted");
        }
        if (tools != null && !tools.isArray()) throw RequestFields.typeError("tools", "a valid list", tools);
        if (tools != null && !tools.isEmpty() && !choiceNone) {
            throw CompletionRequestParser.notSupported("tools", "tool calling is not implemented; "
                    + "send tool_choice \"none\" to only show the tools to the template");
        }
        Map<String, Object> variables = new LinkedHashMap<>();
        if (tools != null && !tools.isEmpty()) variables.put("tools", plain(tools));
        JsonNode documents = f.raw("documents");
        if (documents != null) variables.put("documents", plain(documents));
        RequestFields kwargs = f.object("chat_template_kwargs");
        if (kwargs != null) {
            for (String name : kwargs.names()) variables.put(name, plainOrNull(kwargs.raw(name)));
        }
        return variables;
    }

    /**
     * Validates the conversation and converts it for the template: text parts joined by newlines
     * (vLLM's "string" content format), assistant tool-call arguments parsed from JSON as vLLM does.
     */
    static List<Map<String, Object>> messages(RequestFields f) {
        JsonNode raw = f.raw("messages");
        if (raw == null) throw OpenAiError.badRequest("Field required: messages", "messages");
        if (!raw.isArray()) throw RequestFields.typeError("messages", "a valid list", raw);
        if (raw.isEmpty()) throw OpenAiError.badRequest("messages must contain at least one message", "messages");
        List<Map<String, Object>> out = new ArrayList<>();
        for (int i = 0; i < raw.size(); i++) out.add(message(i, raw.get(i)));
        return out;
    }

    private static Map<String, Object> message(int index, JsonNode node) {
        String where = "messages[" + index + "]";
        if (!node.isObject()) throw RequestFields.typeError(where, "a valid dictionary or object", node);
        JsonNode role = node.get("role");
        if (role == null || !role.isTextual()) {
            throw OpenAiError.badRequest("Invalid value for '" + where + ".role': a string is required", "messages");
        }
        if (!ROLES.contains(role.textValue())) {
            throw OpenAiError.badRequest("Invalid value for '" + where + ".role': '" + role.textValue()
                    + "' is not one of system, developer, user, assistant, tool", "messages");
        }
        Map<String, Object> message = new LinkedHashMap<>();
        message.put("role", role.textValue());
        JsonNode content = node.get("content");
        boolean assistant = "assistant".equals(role.textValue());
        if (content == null || content.isNull()) {
            if (!assistant) {
                throw OpenAiError.badRequest("Invalid value for '" + where + ".content': content is required for role "
                        + role.textValue(), "messages");
            }
            message.put("content", null);
        } else {
            message.put("content", contentText(where, content));
        }
        for (String key : PASSED_KEYS) {
            JsonNode v = node.get(key);
            if (v != null && !v.isNull()) message.put(key, plain(v));
        }
        if (assistant && message.get("tool_calls") instanceof List<?> calls) parseArguments(calls);
        return message;
    }

    /** A string, or a list of text parts joined by newlines; other part types are refused. */
    private static String contentText(String where, JsonNode content) {
        if (content.isTextual()) return content.textValue();
        if (!content.isArray()) throw RequestFields.typeError(where + ".content", "a string or a list of parts", content);
        List<String> texts = new ArrayList<>();
        for (JsonNode part : content) {
            JsonNode type = part.isObject() ? part.get("type") : null;
            String t = type != null && type.isTextual() ? type.textValue() : null;
            if (!"text".equals(t)) {
                throw OpenAiError.badRequest("Content part type " + (t == null ? part.toString() : "'" + t + "'")
                        + " in " + where + " is not supported yet; only 'text' parts are", "messages");
            }
            JsonNode text = part.get("text");
            if (text == null || !text.isTextual()) {
                throw OpenAiError.badRequest("Invalid value for '" + where + ".content': a text part needs a string "
                        + "'text'", "messages");
            }
            texts.add(text.textValue());
        }
        return String.join("\n", texts);
    }

    /** Templates index into arguments ({@code tool_call.arguments.city}), so a JSON string becomes a map. */
    @SuppressWarnings("unchecked")
    private static void parseArguments(List<?> calls) {
        for (Object call : calls) {
            if (!(call instanceof Map<?, ?> c && c.get("function") instanceof Map<?, ?> fn)) continue;
            Object arguments = fn.get("arguments");
            if (arguments == null || "".equals(arguments)) {
                ((Map<String, Object>) fn).put("arguments", new LinkedHashMap<>());
            } else if (arguments instanceof String args) {
                try {
                    Object parsed = Json.MAPPER.readValue(args, Object.class);
                    if (parsed instanceof Map<?, ?>) ((Map<String, Object>) fn).put("arguments", parsed);
                } catch (JsonProcessingException e) {
                    // not JSON: the template gets the string as sent
                }
            }
        }
    }

    private static Object plain(JsonNode node) {
        return Json.MAPPER.convertValue(node, new TypeReference<Object>() { });
    }

    private static Object plainOrNull(JsonNode node) {
        return node == null ? null : plain(node);
    }
}
