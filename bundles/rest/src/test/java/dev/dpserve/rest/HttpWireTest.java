// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.rest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.glassfish.grizzly.http.server.HttpServer;
import org.glassfish.jersey.grizzly2.httpserver.GrizzlyHttpServerFactory;
import org.glassfish.jersey.server.ResourceConfig;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The resources behind a real Jersey (Grizzly container): routes, content types, SSE bytes on
 * the wire, per-event flushing and disconnect handling.
 */
class HttpWireTest {
    private static final ScriptedEngine engine = new ScriptedEngine();
    private static HttpServer server;
    private static String base;

    @BeforeAll
    static void start() {
        ResourceConfig config = new ResourceConfig().registerInstances(new CompletionsResource(engine),
                new ModelsResource(engine), new HealthResource(engine), new TokenizeResource(engine),
                new ChatCompletionsResource(engine, new ScriptedRenderer()));
        engine.tokenizer.chatTemplate = ScriptedRenderer.TEMPLATE;
        server = GrizzlyHttpServerFactory.createHttpServer(URI.create("http://127.0.0.1:0/"), config);
        base = "http://127.0.0.1:" + server.getListeners().iterator().next().getPort();
    }

    @AfterAll
    static void stop() {
        server.shutdownNow();
        engine.close();
    }

    @BeforeEach
    void reset() {
        engine.stepDelayMillis = 0;
        engine.script = r -> ByteTokenizer.ids("abcdefghijklmnopqrstuvwxyz");
        engine.aborted.clear();
        CompletionCalls.heartbeatAfterMillis = 2000;
    }

    private static HttpURLConnection open(String method, String path, String contentType, String body)
            throws IOException {
        HttpURLConnection c = (HttpURLConnection) URI.create(base + path).toURL().openConnection();
        c.setRequestMethod(method);
        if (body != null) {
            c.setDoOutput(true);
            if (contentType != null) c.setRequestProperty("Content-Type", contentType);
            try (OutputStream out = c.getOutputStream()) {
                out.write(body.getBytes(StandardCharsets.UTF_8));
            }
        }
        return c;
    }

    private static String read(HttpURLConnection c) throws IOException {
        InputStream in = c.getResponseCode() >= 400 ? c.getErrorStream() : c.getInputStream();
        return in == null ? "" : new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }

    @Test
    void routes() throws IOException {
        HttpURLConnection health = open("GET", "/health", null, null);
        assertEquals(200, health.getResponseCode());
        assertEquals("", read(health));
        assertEquals(200, open("POST", "/ping", null, "").getResponseCode());
        assertEquals(200, open("GET", "/ping", null, null).getResponseCode());
        assertEquals("{\"version\":\"0.1.0\"}", read(open("GET", "/version", null, null)));
        assertTrue(read(open("GET", "/v1/models", null, null)).contains("\"owned_by\":\"vllm\""));
        HttpURLConnection tok = open("POST", "/tokenize", "application/json", "{\"prompt\":\"ab\"}");
        assertEquals(200, tok.getResponseCode());
        assertEquals("application/json", tok.getContentType());
        assertTrue(read(tok).contains("\"count\":3"));
        assertTrue(read(open("POST", "/detokenize", "application/json", "{\"tokens\":[67]}")).contains("\"a\""));
    }

    @Test
    void completionJsonAndErrors() throws IOException {
        HttpURLConnection ok = open("POST", "/v1/completions", "application/json", "{\"prompt\":\"x\",\"max_tokens\":2}");
        assertEquals(200, ok.getResponseCode());
        assertEquals("application/json", ok.getContentType());
        assertTrue(read(ok).contains("\"text\":\"ab\""));

        HttpURLConnection text = open("POST", "/v1/completions", "text/plain", "{\"prompt\":\"x\"}");
        assertEquals(400, text.getResponseCode());
        assertTrue(read(text).contains("\"type\":\"BadRequestError\""));

        HttpURLConnection broken = open("POST", "/v1/completions", "application/json", "{\"prompt\":");
        assertEquals(400, broken.getResponseCode());
        assertTrue(read(broken).startsWith("{\"error\":{\"message\":"));

        HttpURLConnection model = open("POST", "/v1/completions", "application/json", "{\"prompt\":\"x\",\"model\":\"m\"}");
        assertEquals(404, model.getResponseCode());
    }

    @Test
    void sseBytesOnTheWire() throws IOException {
        HttpURLConnection c = open("POST", "/v1/completions", "application/json",
                "{\"prompt\":\"x\",\"stream\":true,\"max_tokens\":2,\"stream_options\":{\"include_usage\":true}}");
        assertEquals(200, c.getResponseCode());
        assertEquals("text/event-stream", c.getContentType());
        List<String> events = Calls.events(read(c));
        assertEquals(3, events.size());
        assertTrue(events.get(0).contains("\"text\":\"a\""));
        assertTrue(events.get(2).contains("\"choices\":[]"));
    }

    @Test
    void chatJsonAndSseOnTheWire() throws IOException {
        String messages = "\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]";
        HttpURLConnection json = open("POST", "/v1/chat/completions", "application/json",
                "{" + messages + ",\"max_tokens\":2}");
        assertEquals(200, json.getResponseCode());
        assertEquals("application/json", json.getContentType());
        assertTrue(read(json).contains("\"message\":{\"role\":\"assistant\",\"content\":\"ab\""));

        HttpURLConnection sse = open("POST", "/v1/chat/completions", "application/json",
                "{" + messages + ",\"max_tokens\":2,\"stream\":true,\"stream_options\":{\"include_usage\":true}}");
        assertEquals(200, sse.getResponseCode());
        assertEquals("text/event-stream", sse.getContentType());
        List<String> events = Calls.events(read(sse));
        assertEquals(4, events.size(), events.toString());
        assertTrue(events.get(0).contains("\"delta\":{\"role\":\"assistant\",\"content\":\"\"}"));
        assertTrue(events.get(1).contains("\"delta\":{\"content\":\"a\"}"));
        assertTrue(events.get(3).contains("\"choices\":[]"));

        HttpURLConnection bad = open("POST", "/v1/chat/completions", "application/json", "{\"messages\":[]}");
        assertEquals(400, bad.getResponseCode());
        assertTrue(read(bad).startsWith("{\"error\":{\"message\":"));
    }

    @Test
    void eventsAreFlushedOneByOneWhileTheEngineIsStillGenerating() throws Exception {
        // The engine holds the second token until the client has read the first event, so an
        // unflushed (buffered) stream would time out here.
        CountDownLatch gate = new CountDownLatch(1);
        engine.secondTokenGate = gate;
        try {
            HttpURLConnection c = open("POST", "/v1/completions", "application/json",
                    "{\"prompt\":\"x\",\"stream\":true,\"max_tokens\":3}");
            long start = System.nanoTime();
            BufferedReader in = new BufferedReader(new InputStreamReader(c.getInputStream(), StandardCharsets.UTF_8));
            String first = in.readLine();
            assertTrue(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(5), "first event arrived only after the gate");
            assertTrue(first.startsWith("data: {") && first.contains("\"text\":\"a\""), first);
            assertEquals("", in.readLine());
            gate.countDown();
            List<String> rest = new ArrayList<>();
            for (String line; (line = in.readLine()) != null; ) rest.add(line);
            assertEquals("data: [DONE]", rest.get(rest.size() - 2));
            assertEquals(6, rest.size(), rest.toString());
        } finally {
            engine.secondTokenGate = null;
            gate.countDown();
        }
    }

    @Test
    void disconnectAbortsTheEngineRequest() throws Exception {
        engine.stepDelayMillis = 20;
        HttpURLConnection c = open("POST", "/v1/completions", "application/json",
                "{\"prompt\":\"x\",\"stream\":true,\"max_tokens\":60,\"n\":2}");
        BufferedReader in = new BufferedReader(new InputStreamReader(c.getInputStream(), StandardCharsets.UTF_8));
        List<String> lines = new ArrayList<>();
        lines.add(in.readLine());
        assertTrue(lines.getFirst().startsWith("data: "));
        c.disconnect();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (engine.aborted.size() < 2 && System.nanoTime() < deadline) Thread.sleep(20);
        assertEquals(2, engine.aborted.size(), "both choices aborted after the client left");
    }

    @Test
    void aLongNonStreamingCallSendsSpacesThenItsJson() throws Exception {
        CompletionCalls.heartbeatAfterMillis = 100;
        engine.stepDelayMillis = 60;
        HttpURLConnection c = open("POST", "/v1/completions", "application/json", "{\"prompt\":\"x\",\"max_tokens\":10}");
        assertEquals(200, c.getResponseCode());
        assertTrue(c.getContentType().startsWith("application/json"), c.getContentType());
        String body = read(c);
        assertTrue(body.startsWith(" "), "heartbeat spaces first: '" + body + "'");
        JsonNode json = Calls.json(body.strip());
        assertEquals("text_completion", json.path("object").asText());
        assertEquals(10, json.path("usage").path("completion_tokens").asInt());
    }

    @Test
    void disconnectDuringALongNonStreamingCallAbortsIt() throws Exception {
        CompletionCalls.heartbeatAfterMillis = 100;
        engine.stepDelayMillis = 100;
        HttpURLConnection c = open("POST", "/v1/completions", "application/json",
                "{\"prompt\":\"x\",\"max_tokens\":60,\"n\":2}");
        assertEquals(200, c.getResponseCode());
        assertEquals(' ', c.getInputStream().read(), "a heartbeat space arrives while the engine runs");
        c.disconnect();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (engine.aborted.size() < 2 && System.nanoTime() < deadline) Thread.sleep(20);
        assertEquals(2, engine.aborted.size(), "both choices aborted after the client left");
    }
}
