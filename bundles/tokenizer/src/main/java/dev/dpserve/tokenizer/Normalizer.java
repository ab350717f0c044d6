// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;

/**
 * The {@code normalizer} section of tokenizer.json: a text-to-text function applied to each
 * piece of input that is not an added token. Offsets are not tracked (dpserve needs ids only).
 * The NF* forms use the reference implementation's Unicode 9 tables ({@link Unicode9Normalizer}).
 */
interface Normalizer {

    String normalize(String text);

    Normalizer IDENTITY = text -> text;

    /** Builds a normalizer from its JSON; null or JSON null gives {@link #IDENTITY}. */
    static Normalizer fromJson(JsonNode node) {
        if (node == null || node.isNull()) {
            return IDENTITY;
        }
        String type = JsonUtil.type(node, "normalizer");
        return switch (type) {
            case "NFC" -> unicode(java.text.Normalizer.Form.NFC);
            case "NFD" -> unicode(java.text.Normalizer.Form.NFD);
            case "NFKC" -> unicode(java.text.Normalizer.Form.NFKC);
            case "NFKD" -> unicode(java.text.Normalizer.Form.NFKD);
            case "Lowercase" -> text -> text.toLowerCase(Locale.ROOT);
            case "Prepend" -> {
                String prefix = node.path("prepend").asText();
                yield text -> text.isEmpty() ? text : prefix + text;
            }
            case "Append" -> {
                String suffix = node.path("append").asText();
                yield text -> text.isEmpty() ? text : text + suffix;
            }
            case "Replace" -> replace(node);
            case "Strip" -> {
                boolean left = node.path("strip_left").asBoolean(false);
                boolean right = node.path("strip_right").asBoolean(false);
                yield text -> Whitespace.strip(text, left, right);
            }
            case "Sequence" -> {
                List<Normalizer> steps = new ArrayList<>();
                for (JsonNode n : node.path("normalizers")) {
                    steps.add(fromJson(n));
                }
                yield steps.isEmpty() ? IDENTITY : text -> {
                    for (Normalizer step : steps) {
                        text = step.normalize(text);
                    }
                    return text;
                };
            }
            default -> throw new IllegalArgumentException("unsupported normalizer type: " + type);
        };
    }

    private static Normalizer unicode(java.text.Normalizer.Form form) {
        return text -> Unicode9Normalizer.normalize(text, form);
    }

    private static Normalizer replace(JsonNode node) {
        String content = node.path("content").asText();
        JsonNode pattern = node.path("pattern");
        if (pattern.has("String")) {
            String literal = pattern.get("String").asText();
            return text -> literal.isEmpty() ? text : text.replace(literal, content);
        }
        if (pattern.has("Regex")) {
            Pattern regex = OnigRegex.compile(pattern.get("Regex").asText());
            String quoted = java.util.regex.Matcher.quoteReplacement(content);
            return text -> regex.matcher(text).replaceAll(quoted);
        }
        throw new IllegalArgumentException("Replace normalizer without String or Regex pattern");
    }
}
