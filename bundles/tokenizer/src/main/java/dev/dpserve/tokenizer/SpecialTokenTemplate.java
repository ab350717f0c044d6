// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * The ids that {@code encode(text, addSpecialTokens=true)} puts around a single sequence, read from
 * the {@code post_processor} of tokenizer.json (TemplateProcessing, BertProcessing,
 * RobertaProcessing, ByteLevel, Sequence).
 *
 * @param prefix ids before the text
 * @param suffix ids after the text
 */
record SpecialTokenTemplate(int[] prefix, int[] suffix) {

    static final SpecialTokenTemplate NONE = new SpecialTokenTemplate(new int[0], new int[0]);

    static SpecialTokenTemplate fromJson(JsonNode node) {
        if (node == null || node.isNull()) return NONE;
        String type = JsonUtil.type(node, "post_processor");
        return switch (type) {
            case "ByteLevel" -> NONE;
            case "Sequence" -> {
                SpecialTokenTemplate result = NONE;
                for (JsonNode n : node.path("processors")) {
                    SpecialTokenTemplate t = fromJson(n);
                    result = new SpecialTokenTemplate(concat(result.prefix, t.prefix), concat(t.suffix, result.suffix));
                }
                yield result;
            }
            case "BertProcessing", "RobertaProcessing" -> new SpecialTokenTemplate(
                    new int[] {node.path("cls").path(1).asInt()}, new int[] {node.path("sep").path(1).asInt()});
            case "TemplateProcessing" -> template(node);
            default -> throw new IllegalArgumentException("unsupported post_processor type: " + type);
        };
    }

    private static SpecialTokenTemplate template(JsonNode node) {
        JsonNode specials = node.path("special_tokens");
        int[] prefix = new int[0];
        int[] suffix = new int[0];
        boolean seenSequence = false;
        for (JsonNode item : node.path("single")) {
            if (item.has("Sequence")) {
                seenSequence = true;
            } else if (item.has("SpecialToken")) {
                String name = item.get("SpecialToken").path("id").asText();
                JsonNode ids = specials.path(name).path("ids");
                if (!ids.isArray()) {
                    throw new IllegalArgumentException("TemplateProcessing names unknown special token " + name);
                }
                int[] values = new int[ids.size()];
                for (int i = 0; i < values.length; i++) values[i] = ids.get(i).asInt();
                if (seenSequence) suffix = concat(suffix, values);
                else prefix = concat(prefix, values);
            }
        }
        return new SpecialTokenTemplate(prefix, suffix);
    }

    private static int[] concat(int[] a, int[] b) {
        int[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
