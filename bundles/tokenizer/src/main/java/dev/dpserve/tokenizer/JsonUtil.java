// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;

/** Small helpers for reading Hugging Face JSON files. */
final class JsonUtil {

    private JsonUtil() {}

    static String type(JsonNode node, String what) {
        JsonNode type = node.get("type");
        if (type == null || !type.isTextual()) {
            throw new IllegalArgumentException(what + " without a type: " + abbreviate(node));
        }
        return type.asText();
    }

    /** A token written either as a string or as an AddedToken object with {@code content}. */
    static String tokenContent(JsonNode node) {
        if (node == null || node.isNull() || node.isMissingNode()) {
            return null;
        }
        if (node.isTextual()) {
            return node.asText();
        }
        JsonNode content = node.get("content");
        return content != null && content.isTextual() ? content.asText() : null;
    }

    static String abbreviate(JsonNode node) {
        String s = String.valueOf(node);
        return s.length() > 200 ? s.substring(0, 200) + "..." : s;
    }
}
