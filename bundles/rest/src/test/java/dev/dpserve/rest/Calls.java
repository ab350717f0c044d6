// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.rest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import jakarta.ws.rs.core.Response;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;

/** Helpers to call resources directly and read their responses. */
final class Calls {
    private Calls() {
    }

    static JsonNode json(Response r) {
        try {
            return Json.MAPPER.readTree((String) r.getEntity());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static JsonNode json(String s) {
        try {
            return Json.MAPPER.readTree(s);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Asserts an OpenAI error response and returns its "error" object. */
    static JsonNode assertError(Response r, int status, String type, String param) {
        assertEquals(status, r.getStatus(), () -> String.valueOf(r.getEntity()));
        assertEquals("application/json", r.getMediaType().toString());
        JsonNode e = json(r).get("error");
        assertEquals(type, e.get("type").asText());
        assertEquals(status, e.get("code").asInt());
        if (param == null) {
            assertTrue(e.get("param").isNull(), e.toString());
        } else {
            assertEquals(param, e.get("param").asText(), e.toString());
        }
        return e;
    }

    /** Runs a streaming response (entity: the {@link CompletionStream}) to completion; returns its chunks. */
    static List<String> streamChunks(Response r) {
        assertEquals(200, r.getStatus(), () -> String.valueOf(r.getEntity()));
        assertEquals("text/event-stream", r.getMediaType().toString());
        List<String> chunks = new ArrayList<>();
        ((CompletionStream) r.getEntity()).run(new SseWriter(chunks::add));
        return chunks;
    }

    static String streamBody(Response r) {
        return String.join("", streamChunks(r));
    }

    /** Splits an SSE body into its data payloads, asserting the exact framing and the final [DONE]. */
    static List<String> events(String body) {
        assertTrue(body.endsWith("data: [DONE]\n\n"), body);
        List<String> events = new ArrayList<>();
        for (String block : body.split("\n\n", -1)) {
            if (block.isEmpty()) continue;
            assertTrue(block.startsWith("data: "), block);
            assertTrue(!block.contains("\n"), block);
            events.add(block.substring("data: ".length()));
        }
        assertEquals("[DONE]", events.removeLast());
        assertTrue(events.stream().noneMatch("[DONE]"::equals));
        return events;
    }
}
