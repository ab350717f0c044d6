// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.launcher.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@code --max-concurrency N} bounds the requests in flight: {@code bench serve} runs against a
 * loopback test double of the remote server (JDK HttpServer) that counts the completion requests
 * it is serving at once. Each one is held open for a while, so requests the client lets through
 * together overlap at the server. The double answers {@code /v1/models}, {@code /tokenize} and
 * {@code /detokenize} (words {@code w<id>}, 100 ids, a BOS id 0) and streams two chunks per request.
 */
class MaxConcurrencyTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int VOCAB = 100;
    private static final long HOLD_MS = 250;

    private HttpServer server;
    private String base;
    private final AtomicInteger inFlight = new AtomicInteger();
    private final AtomicInteger peak = new AtomicInteger();
    private final AtomicInteger served = new AtomicInteger();

    @BeforeEach
    void start() throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 100);
        server.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
        server.createContext("/v1/models", ex -> json(ex, 200, "{\"object\":\"list\",\"data\":[{\"id\":\"fake\",\"object\":\"model\"}]}"));
        server.createContext("/tokenize", this::tokenize);
        server.createContext("/detokenize", this::detokenize);
        server.createContext("/v1/completions", this::complete);
        server.start();
        base = "http://127.0.0.1:" + server.getAddress().getPort();
    }

    @AfterEach
    void stop() {
        server.stop(0);
    }

    record Run(int exit, String out, String err) {
    }

    private Run bench(String... flags) throws Exception {
        List<String> args = new ArrayList<>(List.of("serve", "--base-url", base));
        args.addAll(List.of(flags));
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int exit = BenchCommand.run(args, new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Run(exit, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    @Test
    void atMostNRequestsInFlight() throws Exception {
        Run r = bench("--num-prompts", "12", "--random-input-len", "8", "--random-output-len", "2", "--max-concurrency", "3",
                "--disable-tqdm");
        assertEquals(0, r.exit(), r.out() + r.err());
        assertTrue(r.out().contains("Maximum request concurrency: 3"), r.out());
        assertTrue(r.out().matches("(?s).*Successful requests:\\s+12\\s.*"), r.out());
        assertEquals(13, served.get(), "the initial test request and the 12 of the run");
        // All 12 are due at once (request rate inf): the limit, and nothing else, keeps them to 3.
        assertEquals(3, peak.get(), "most completion requests the server was serving at once");
    }

    @Test
    void withoutTheLimitTheyOverlapMore() throws Exception {
        Run r = bench("--num-prompts", "12", "--random-input-len", "8", "--random-output-len", "2", "--disable-tqdm");
        assertEquals(0, r.exit(), r.out() + r.err());
        assertTrue(r.out().contains("Maximum request concurrency: None"), r.out());
        assertTrue(r.out().matches("(?s).*Successful requests:\\s+12\\s.*"), r.out());
        assertTrue(peak.get() > 3, "the double sees more than 3 at once when nothing limits them: " + peak.get());
    }

    @Test
    void oneAtATime() throws Exception {
        Run r = bench("--num-prompts", "5", "--random-input-len", "4", "--random-output-len", "2", "--max-concurrency", "1",
                "--disable-tqdm");
        assertEquals(0, r.exit(), r.out() + r.err());
        assertEquals(6, served.get());
        assertEquals(1, peak.get());
    }

    private void complete(HttpExchange ex) throws IOException {
        int now = inFlight.incrementAndGet();
        peak.accumulateAndGet(now, Math::max);
        served.incrementAndGet();
        try (ex) {
            JsonNode req = JSON.readTree(ex.getRequestBody());
            int maxTokens = req.path("max_tokens").asInt(1);
            try {
                Thread.sleep(HOLD_MS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            ex.getResponseHeaders().set("Content-Type", "text/event-stream");
            ex.sendResponseHeaders(200, 0);
            OutputStream os = ex.getResponseBody();
            for (int i = 0; i < maxTokens; i++) {
                os.write(("data: {\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":\" w" + i
                        + "\",\"finish_reason\":null}]}\n\n").getBytes(StandardCharsets.UTF_8));
                os.flush();
            }
            os.write(("data: {\"object\":\"text_completion\",\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":"
                    + maxTokens + ",\"total_tokens\":" + (maxTokens + 1) + "}}\n\ndata: [DONE]\n\n").getBytes(StandardCharsets.UTF_8));
            os.flush();
            // Leave the count before the final chunk goes out (at close), so the client cannot have
            // seen the end of this response, released its permit and started another one before.
            inFlight.decrementAndGet();
        }
    }

    private void tokenize(HttpExchange ex) throws IOException {
        try (ex) {
            JsonNode req = JSON.readTree(ex.getRequestBody());
            ObjectNode resp = JSON.createObjectNode();
            ArrayNode tokens = resp.putArray("tokens");
            if (req.path("add_special_tokens").asBoolean(true)) tokens.add(0);
            for (String w : req.path("prompt").asText().trim().split("\\s+")) {
                if (w.startsWith("w")) tokens.add(Integer.parseInt(w.substring(1)));
            }
            resp.put("count", tokens.size());
            json(ex, 200, resp.toString());
        }
    }

    private void detokenize(HttpExchange ex) throws IOException {
        try (ex) {
            JsonNode req = JSON.readTree(ex.getRequestBody());
            StringBuilder text = new StringBuilder();
            for (JsonNode id : req.path("tokens")) {
                if (id.asInt() < 0 || id.asInt() >= VOCAB) {
                    json(ex, 400, "{\"error\":{\"message\":\"token id out of range\"}}");
                    return;
                }
                text.append(" w").append(id.asInt());
            }
            json(ex, 200, JSON.createObjectNode().put("prompt", text.toString()).toString());
        }
    }

    private static void json(HttpExchange ex, int status, String body) throws IOException {
        byte[] b = body.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", "application/json");
        ex.sendResponseHeaders(status, b.length);
        ex.getResponseBody().write(b);
        ex.close();
    }
}
