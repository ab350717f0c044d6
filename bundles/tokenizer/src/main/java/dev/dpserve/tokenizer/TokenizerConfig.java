// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.MissingNode;
import java.util.Set;

/**
 * What dpserve reads from {@code tokenizer_config.json}. Tokens may be written as strings or as
 * AddedToken objects; {@code chat_template} may be a string or a list of {@code {name, template}}
 * (the one named {@code default} is used).
 *
 * @param addBosToken null when the file does not say
 * @param addEosToken null when the file does not say
 * @param bosToken content of {@code bos_token}, or null
 * @param eosToken content of {@code eos_token}, or null
 * @param cleanUpTokenizationSpaces transformers' flag; false when absent (its current default)
 * @param chatTemplate the template, or null
 * @param tokenizerClass e.g. {@code LlamaTokenizerFast}, or null
 */
record TokenizerConfig(Boolean addBosToken, Boolean addEosToken, String bosToken, String eosToken,
                       boolean cleanUpTokenizationSpaces, String chatTemplate, String tokenizerClass) {

    /** transformers classes whose post-processor is rebuilt from add_bos_token/add_eos_token. */
    private static final Set<String> BOS_EOS_CLASSES = Set.of(
            "LlamaTokenizer", "LlamaTokenizerFast", "CodeLlamaTokenizer", "CodeLlamaTokenizerFast",
            "GemmaTokenizer", "GemmaTokenizerFast");

    static final TokenizerConfig EMPTY = fromJson(MissingNode.getInstance());

    static TokenizerConfig fromJson(JsonNode node) {
        return new TokenizerConfig(
                optionalBoolean(node.get("add_bos_token")),
                optionalBoolean(node.get("add_eos_token")),
                JsonUtil.tokenContent(node.get("bos_token")),
                JsonUtil.tokenContent(node.get("eos_token")),
                node.path("clean_up_tokenization_spaces").asBoolean(false),
                chatTemplate(node.get("chat_template")),
                node.hasNonNull("tokenizer_class") ? node.get("tokenizer_class").asText() : null);
    }

    private static Boolean optionalBoolean(JsonNode n) {
        return n == null || n.isNull() ? null : n.asBoolean();
    }

    private static String chatTemplate(JsonNode n) {
        if (n == null || n.isNull()) return null;
        if (n.isTextual()) return n.asText();
        if (n.isArray()) {
            for (JsonNode entry : n) {
                if ("default".equals(entry.path("name").asText())) return entry.path("template").asText();
            }
        }
        return null;
    }

    /**
     * Whether transformers replaces the tokenizer.json post-processor by BOS/EOS from this file
     * (it does for the Llama and Gemma tokenizer classes); if so, which ones to add.
     */
    boolean overridesSpecialTokens() {
        return tokenizerClass != null && BOS_EOS_CLASSES.contains(tokenizerClass);
    }

    /** add_bos_token with the Llama default (true). */
    boolean addBos() {
        return addBosToken == null || addBosToken;
    }

    /** add_eos_token with the Llama default (false). */
    boolean addEos() {
        return addEosToken != null && addEosToken;
    }
}
