// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.rest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import jakarta.ws.rs.core.Response;
import java.nio.charset.StandardCharsets;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class ServingMetricsTest {

    private final ScriptedEngine engine = new ScriptedEngine();
    private final ServingMetrics metrics = new ServingMetrics(engine);
    private final CompletionsResource completions = new CompletionsResource(engine, metrics);

    @AfterEach
    void close() { engine.close(); }

    private String scrape() throws Exception {
        Response r = new MetricsResource(metrics).get();
        assertEquals(200, r.getStatus());
        assertTrue(r.getMediaType().toString().startsWith("text/plain"), r.getMediaType().toString());
        return new String((byte[]) r.getEntity(), StandardCharsets.UTF_8);
    }

    private static double value(String text, String series) {
        Matcher m = Pattern.compile("(?m)^" + Pattern.quote(series) + " ([0-9.eE+-]+)$").matcher(text);
        assertTrue(m.find(), series + " not in\n" + text);
        return Double.parseDouble(m.group(1));
    }

    @Test
    void exposesVllmNamesAndObservesRequests() throws Exception {
        String model = engine.model().servedName();
        String labels = "{engine=\"scripted\",model_name=\"" + model + "\"}";
        String before = scrape();
        assertEquals(0, value(before, "vllm:num_requests_running" + labels));
        assertEquals(0, value(before, "vllm:num_requests_waiting" + labels));
        assertEquals(0, value(before, "vllm:kv_cache_usage_perc" + labels));
        assertTrue(before.contains("# TYPE vllm:prefix_cache_queries_total counter"), before);

        for (int i = 0; i < 3; i++) {
            Response r = completions.create("{\"prompt\":\"abc\",\"max_tokens\":4,\"ignore_eos\":true}", "application/json", null);
            assertEquals(200, r.getStatus());
        }
        String after = scrape();
        String reqLabels = "{engine=\"scripted\",model_name=\"" + model + "\"";
        assertEquals(3, value(after, "vllm:time_to_first_token_seconds_count" + reqLabels + "}"));
        assertEquals(3 * 3, value(after, "vllm:inter_token_latency_seconds_count" + reqLabels + "}"), "3 gaps per 4-token request");
        assertEquals(3, value(after, "vllm:e2e_request_latency_seconds_count" + reqLabels + "}"));
        assertEquals(3, value(after, "vllm:request_queue_time_seconds_count" + reqLabels + "}"));
        assertEquals(3 * 4, value(after, "vllm:request_generation_tokens_sum" + reqLabels + "}"));
        assertEquals(3, value(after, "vllm:request_success_total{engine=\"scripted\",finished_reason=\"length\",model_name=\"" + model + "\"}"));
    }
}
