// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.rest;

import com.fasterxml.jackson.databind.JsonNode;
import java.lang.System.Logger.Level;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Turns a completions request body into a {@link CompletionRequest}, with vLLM's defaults and
 * error messages. Fields we cannot honour yet are rejected by name instead of being ignored;
 * fields nobody knows are ignored with a log line, as vLLM does.
 */
final class CompletionRequestParser {
    private static final System.Logger LOG = System.getLogger(CompletionRequestParser.class.getName());

    /** vLLM's default {@code --max-logprobs}. */
    static final int MAX_LOGPROBS = 20;

    private static final Set<String> KNOWN = Set.of(
            "model", "prompt", "max_tokens", "temperature", "top_p", "top_k", "min_p", "seed", "stop",
            "stop_token_ids", "ignore_eos", "include_stop_str_in_output", "min_tokens", "skip_special_tokens",
            "add_special_tokens", "n", "echo", "logprobs", "stream", "stream_options", "return_token_ids",
            "user", "request_id", "truncate_prompt_tokens", "suffix", "best_of", "frequency_penalty",
            "presence_penalty", "repetition_penalty", "length_penalty", "logit_bias", "prompt_logprobs",
            "use_beam_search", "allowed_token_ids", "bad_words", "prompt_embeds", "response_format",
            "structured_outputs", "guided_json", "guided_regex", "guided_choice", "guided_grammar",
            "guided_decoding_backend", "guided_whitespace_pattern", "structural_tag", "priority",
            "spaces_between_special_tokens", "return_tokens_as_token_ids", "cache_salt", "logits_processors",
            "kv_transfer_params", "vllm_xargs");

    /** Structured-output fields: any non-null value is refused. */
    private static final List<String> GUIDED = List.of(
            "structured_outputs", "guided_json", "guided_regex", "guided_choice", "guided_grammar",
            "structural_tag", "guided_decoding_backend", "guided_whitespace_pattern");

    /** Other fields refused whenever they are set (non-null). */
    private static final List<String> UNSUPPORTED_IF_SET = List.of(
            "prompt_logprobs", "allowed_token_ids", "prompt_embeds", "logits_processors", "cache_salt",
            "kv_transfer_params");

    private CompletionRequestParser() {
    }

    static CompletionRequest parse(String body) {
        RequestFields f = RequestFields.parse(body);
        logUnknown(f, KNOWN);
        if (f.has("suffix")) throw OpenAiError.badRequest("suffix is not currently supported", "suffix");
        rejectUnsupported(f);

        f.string("user", null);
        List<Prompt> prompts = prompts(f);
        Integer maxTokens = f.isExplicitNull("max_tokens") ? null
                : f.integer("max_tokens", CompletionRequest.DEFAULT_MAX_TOKENS);

        Integer logprobs = f.integer("logprobs");
        if (logprobs != null && logprobs < 0) {
            throw OpenAiError.badRequest("`logprobs` must be a positive value.", "logprobs");
        }
        if (logprobs != null) requireLogprobsWithinLimit(logprobs, "logprobs");
        boolean echo = f.bool("echo", false);
        if (echo && logprobs != null) {
            // vLLM answers this with prompt logprobs, which the engine does not compute yet.
            throw OpenAiError.badRequest("echo together with logprobs is not supported yet (needs prompt logprobs)",
                    "echo");
        }
        return build(f, prompts, maxTokens, logprobs, echo, true);
    }

    /**
     * The request from the fields both endpoints share (sampling, n, stop, streaming, ...); the
     * endpoint has parsed what differs: prompts, max_tokens, logprobs, echo and the
     * add_special_tokens default.
     */
    static CompletionRequest build(RequestFields f, List<Prompt> prompts, Integer maxTokens, Integer logprobs,
                                   boolean echo, boolean addSpecialTokensByDefault) {
        int n = f.integer("n", 1);
        if (n < 1) throw OpenAiError.badRequest("n must be at least 1, got " + n + ".", "n");
        Integer bestOf = f.integer("best_of");
        if (bestOf != null && bestOf < n) {
            throw OpenAiError.badRequest("best_of must be greater than or equal to n, got n=" + n
                    + " and best_of=" + bestOf + ".", "best_of");
        }
        if (bestOf != null && bestOf > n) {
            throw OpenAiError.badRequest("best_of > n is not supported yet", "best_of");
        }

        boolean stream = f.bool("stream", false);
        boolean includeUsage = false;
        boolean continuousUsage = false;
        RequestFields streamOptions = f.object("stream_options");
        if (streamOptions != null) {
            if (!stream) {
                throw OpenAiError.badRequest("Stream options can only be defined when `stream=True`.",
                        "stream_options");
            }
            includeUsage = streamOptions.bool("include_usage", false);
            continuousUsage = streamOptions.bool("continuous_usage_stats", false);
        }

        Integer truncate = f.integer("truncate_prompt_tokens");
        if (truncate != null && truncate < -1) {
            throw OpenAiError.badRequest("truncate_prompt_tokens must be -1 or at least 0, got " + truncate,
                    "truncate_prompt_tokens");
        }

        return new CompletionRequest(f.string("model", null), prompts, maxTokens,
                f.number("temperature", 1.0), f.number("top_p", 1.0), f.integer("top_k", 0),
                f.number("min_p", 0.0), f.longInteger("seed"), stop(f), stopTokenIds(f),
                f.bool("ignore_eos", false), f.bool("include_stop_str_in_output", false),
                f.integer("min_tokens", 0), f.bool("skip_special_tokens", true),
                f.bool("add_special_tokens", addSpecialTokensByDefault), n, echo, logprobs, stream, includeUsage,
                continuousUsage, f.bool("return_token_ids", false), truncate, f.string("request_id", null));
    }

    static void requireLogprobsWithinLimit(int requested, String param) {
        if (requested > MAX_LOGPROBS) {
            throw OpenAiError.badRequest("Requested sample logprobs of " + requested
                    + ", which is greater than max allowed: " + MAX_LOGPROBS, param);
        }
    }

    static void logUnknown(RequestFields f, Set<String> known) {
        Set<String> unknown = new LinkedHashSet<>(f.names());
        unknown.removeAll(known);
        if (!unknown.isEmpty()) {
            LOG.log(Level.WARNING, "The following fields were present in the request but ignored: {0}", unknown);
        }
    }

    /** Fields both endpoints accept but cannot honour yet, unless set to their neutral value. */
    static void rejectUnsupported(RequestFields f) {
        for (String penalty : List.of("frequency_penalty", "presence_penalty")) {
            Double v = f.number(penalty);
            if (v != null && v != 0.0) throw notSupported(penalty, "only 0 is accepted");
        }
        Double repetition = f.number("repetition_penalty");
        if (repetition != null && repetition != 1.0) throw notSupported("repetition_penalty", "only 1.0 is accepted");
        JsonNode logitBias = f.raw("logit_bias");
        if (logitBias != null && !(logitBias.isObject() && logitBias.isEmpty())) throw notSupported("logit_bias", null);
        JsonNode badWords = f.raw("bad_words");
        if (badWords != null && !(badWords.isArray() && badWords.isEmpty())) throw notSupported("bad_words", null);
        for (String name : UNSUPPORTED_IF_SET) {
            if (f.has(name)) throw notSupported(name, null);
        }
        for (String name : GUIDED) {
            if (f.has(name)) throw notSupported(name, "structured outputs are not implemented");
        }
        RequestFields responseFormat = f.object("response_format");
        if (responseFormat != null && !"text".equals(responseFormat.string("type", "text"))) {
            throw notSupported("response_format", "only type 'text' is accepted");
        }
        if (f.bool("use_beam_search", false)) throw notSupported("use_beam_search", null);
        if (f.integer("priority", 0) != 0) throw notSupported("priority", "priority scheduling is not enabled");
        if (!f.bool("spaces_between_special_tokens", true)) {
            throw notSupported("spaces_between_special_tokens", "only true is accepted");
        }
        if (f.bool("return_tokens_as_token_ids", false)) throw notSupported("return_tokens_as_token_ids", null);
    }

    static OpenAiError notSupported(String field, String detail) {
        return OpenAiError.badRequest(field + " is not supported yet" + (detail == null ? "" : " (" + detail + ")"),
                field);
    }

    /** str, list[str], list[int] or list[list[int]]; every prompt non-empty. */
    static List<Prompt> prompts(RequestFields f) {
        JsonNode p = f.raw("prompt");
        if (p == null) {
            throw OpenAiError.badRequest("Either prompt or prompt_embeds must be provided and non-empty.", "prompt");
        }
        List<Prompt> out = new ArrayList<>();
        if (p.isTextual()) {
            out.add(Prompt.ofText(p.textValue()));
        } else if (p.isArray()) {
            if (p.isEmpty()) throw emptyPrompt();
            JsonNode first = p.get(0);
            if (first.isTextual()) {
                for (JsonNode e : p) {
                    if (!e.isTextual()) throw promptTypeError();
                    out.add(Prompt.ofText(e.textValue()));
                }
            } else if (first.isNumber()) {
                out.add(Prompt.ofTokens(tokenIds(p)));
            } else if (first.isArray()) {
                for (JsonNode e : p) {
                    if (!e.isArray()) throw promptTypeError();
                    out.add(Prompt.ofTokens(tokenIds(e)));
                }
            } else {
                throw promptTypeError();
            }
        } else {
            throw promptTypeError();
        }
        for (Prompt prompt : out) {
            if (prompt.isText() ? prompt.text().isEmpty() : prompt.tokenIds().length == 0) throw emptyPrompt();
        }
        return out;
    }

    private static int[] tokenIds(JsonNode array) {
        int[] ids = new int[array.size()];
        for (int i = 0; i < ids.length; i++) {
            JsonNode e = array.get(i);
            if (!e.isNumber()) throw promptTypeError();
            ids[i] = RequestFields.toInt("prompt", e);
        }
        return ids;
    }

    static OpenAiError emptyPrompt() {
        return OpenAiError.badRequest("The decoder prompt cannot be empty", "prompt");
    }

    private static OpenAiError promptTypeError() {
        return OpenAiError.badRequest("Invalid value for 'prompt': input should be a string, a list of strings, "
                + "a list of integers or a list of lists of integers", "prompt");
    }

    private static List<String> stop(RequestFields f) {
        JsonNode s = f.raw("stop");
        List<String> stops = new ArrayList<>();
        if (s == null) return stops;
        if (s.isTextual()) {
            stops.add(s.textValue());
        } else if (s.isArray()) {
            for (JsonNode e : s) {
                if (!e.isTextual()) throw RequestFields.typeError("stop", "a string or a list of strings", s);
                stops.add(e.textValue());
            }
        } else {
            throw RequestFields.typeError("stop", "a string or a list of strings", s);
        }
        if (stops.stream().anyMatch(String::isEmpty)) {
            throw OpenAiError.badRequest("stop cannot contain an empty string.", "stop");
        }
        return stops;
    }

    private static Set<Integer> stopTokenIds(RequestFields f) {
        List<Integer> ids = f.integerList("stop_token_ids");
        return ids == null ? Set.of() : Set.copyOf(ids);
    }
}
