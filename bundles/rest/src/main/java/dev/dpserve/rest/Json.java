// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.rest;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;
import java.io.UncheckedIOException;

/** The bundle's one JSON mapper (thread-safe once configured) and small tree helpers. */
final class Json {
    static final ObjectMapper MAPPER = JsonMapper.builder()
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .build();

    private Json() {
    }

    static ObjectNode object() { return MAPPER.createObjectNode(); }

    static ArrayNode array() { return MAPPER.createArrayNode(); }

    static String write(JsonNode node) {
        try {
            return MAPPER.writeValueAsString(node);
        } catch (JsonProcessingException e) {
            throw new UncheckedIOException(e);
        }
    }

    static final String CONTENT_TYPE = MediaType.APPLICATION_JSON;

    static Response ok(JsonNode node) {
        return Response.ok(write(node), MediaType.APPLICATION_JSON_TYPE).build();
    }

    /** The API accepts only JSON bodies, as vLLM does: other content types are a 400, not a 415. */
    static void requireJsonContentType(String contentType) {
        String media = contentType == null ? "" : contentType.split(";", 2)[0].strip();
        if (!media.equalsIgnoreCase(MediaType.APPLICATION_JSON)) {
            throw OpenAiError.badRequest("Unsupported Media Type: Only 'application/json' is allowed", null);
        }
    }
}
