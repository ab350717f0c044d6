// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.zip.GZIPInputStream;

/** Golden files under src/test/resources/golden (see PROVENANCE.md there); loaded once per JVM. */
final class GoldenData {

    static final List<String> TOKENIZERS = List.of("deepseek_v3", "qwen3", "mistral_7b_v0_1");

    private static final ObjectMapper MAPPER = new ObjectMapper();
    private static final Map<String, HfTokenizer> TOKENIZER_CACHE = new ConcurrentHashMap<>();
    private static final Map<String, List<JsonNode>> JSONL_CACHE = new ConcurrentHashMap<>();

    private GoldenData() {}

    /** Opens a resource under /golden, transparently gunzipping {@code name + ".gz"}. */
    static InputStream open(String name) throws IOException {
        InputStream in = GoldenData.class.getResourceAsStream("/golden/" + name);
        if (in != null) return in;
        InputStream gz = GoldenData.class.getResourceAsStream("/golden/" + name + ".gz");
        if (gz == null) throw new IOException("missing test resource /golden/" + name);
        return new GZIPInputStream(gz, 1 << 16);
    }

    static HfTokenizer tokenizer(String key) {
        return TOKENIZER_CACHE.computeIfAbsent(key, k -> {
            try (InputStream json = open("tokenizers/" + k + "/tokenizer.json");
                 InputStream config = open("tokenizers/" + k + "/tokenizer_config.json")) {
                return HfTokenizer.fromStreams(json, config);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
    }

    static List<JsonNode> jsonl(String name) {
        return JSONL_CACHE.computeIfAbsent(name, n -> {
            List<JsonNode> rows = new ArrayList<>();
            try (BufferedReader r = new BufferedReader(new InputStreamReader(open(n), StandardCharsets.UTF_8))) {
                for (String line; (line = r.readLine()) != null; ) {
                    if (!line.isBlank()) rows.add(MAPPER.readTree(line));
                }
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            return List.copyOf(rows);
        });
    }

    static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) out[i] = array.get(i).asInt();
        return out;
    }
}
