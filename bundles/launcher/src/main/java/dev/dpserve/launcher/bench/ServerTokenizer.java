// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.launcher.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;

/**
 * Tokenizes through the server's vLLM endpoints {@code POST /tokenize} and {@code POST /detokenize},
 * so no local copy of the model is needed. The vocabulary size is found by bisecting on the
 * ids /detokenize accepts (about 2·log2(vocab) small requests, once).
 */
final class ServerTokenizer implements BenchTokenizer {

    private static final ObjectMapper MAPPER = new ObjectMapper();

    private final HttpClient http;
    private final String baseUrl;
    private final String model;
    private volatile int vocabSize = -1;

    ServerTokenizer(HttpClient http, String baseUrl, String model) {
        this.http = http;
        this.baseUrl = baseUrl;
        this.model = model;
    }

    @Override
    public int[] encode(String text, boolean addSpecialTokens) throws IOException {
        ObjectNode body = MAPPER.createObjectNode().put("model", model).put("prompt", text).put("add_special_tokens", addSpecialTokens);
        HttpResponse<String> r = post("/tokenize", body);
        if (r.statusCode() != 200) throw new IOException("POST /tokenize: HTTP " + r.statusCode() + ": " + SseTimer.abbreviate(r.body()));
        JsonNode tokens = MAPPER.readTree(r.body()).path("tokens");
        int[] ids = new int[tokens.size()];
        for (int i = 0; i < ids.length; i++) ids[i] = tokens.get(i).asInt();
        return ids;
    }

    @Override
    public String decode(int[] ids) throws IOException {
        HttpResponse<String> r = detokenize(ids);
        if (r.statusCode() != 200) throw new IOException("POST /detokenize: HTTP " + r.statusCode() + ": " + SseTimer.abbreviate(r.body()));
        return MAPPER.readTree(r.body()).path("prompt").asText();
    }

    @Override
    public int vocabSize() throws IOException {
        int v = vocabSize;
        if (v > 0) return v;
        synchronized (this) {
            if (vocabSize > 0) return vocabSize;
            HttpResponse<String> zero = detokenize(new int[] {0});
            if (zero.statusCode() != 200) {
                throw new IOException("POST " + baseUrl + "/detokenize rejects token id 0 (HTTP " + zero.statusCode() + ": "
                        + SseTimer.abbreviate(zero.body()) + "): cannot find the vocabulary size");
            }
            long lo = 0;      // accepted
            long hi = 1024;   // probe upwards until rejected
            while (accepts(hi)) {
                lo = hi;
                hi *= 2;
                if (hi > Integer.MAX_VALUE) throw new IOException("POST /detokenize accepts every id: cannot find the vocabulary size");
            }
            while (hi - lo > 1) {
                long mid = (lo + hi) >>> 1;
                if (accepts(mid)) lo = mid;
                else hi = mid;
            }
            vocabSize = (int) hi;
            return vocabSize;
        }
    }

    private boolean accepts(long id) throws IOException {
        return detokenize(new int[] {(int) id}).statusCode() == 200;
    }

    @Override
    public int numSpecialTokensToAdd() throws IOException {
        return encode("", true).length - encode("", false).length;
    }

    @Override
    public String id() {
        return baseUrl + " (/tokenize, /detokenize of " + model + ")";
    }

    private HttpResponse<String> detokenize(int[] ids) throws IOException {
        ObjectNode body = MAPPER.createObjectNode().put("model", model);
        var arr = body.putArray("tokens");
        for (int id : ids) arr.add(id);
        return post("/detokenize", body);
    }

    private HttpResponse<String> post(String path, ObjectNode body) throws IOException {
        HttpRequest req = HttpRequest.newBuilder(URI.create(baseUrl + path)).timeout(Duration.ofSeconds(60))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body.toString())).build();
        try {
            return http.send(req, HttpResponse.BodyHandlers.ofString());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        }
    }
}
