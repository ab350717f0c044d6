// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.launcher.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class BenchmarkMetricsTest {

    private static RequestOutput ok(double startS, double ttft, double[] itl, int outTokens, int promptLen) {
        RequestOutput o = new RequestOutput();
        o.success = true;
        o.startNanos = (long) (startS * 1e9);
        o.ttft = ttft;
        double lat = ttft;
        for (double d : itl) {
            o.itl.add(d);
            lat += d;
        }
        o.latency = lat;
        o.outputTokens = outTokens;
        o.promptLen = promptLen;
        return o;
    }

    @Test
    void throughputTpotGoodputPeaks() {
        List<RequestOutput> outs = List.of(
                ok(0.0, 0.1, new double[] {0.1, 0.1, 0.1}, 4, 10),   // tpot 0.1, e2el 0.4
                ok(0.5, 0.2, new double[] {0.3}, 2, 20),             // tpot 0.3, e2el 0.5, ends 1.0
                ok(1.2, 0.05, new double[0], 1, 30),                 // 1 token: no TPOT
                RequestOutput.failed(0, 40, "HTTP 500: boom"));
        BenchmarkMetrics m = BenchmarkMetrics.calculate(outs, 2.0, Map.of("ttft", 150.0, "tpot", 200.0), Map.of());
        assertEquals(3, m.completed);
        assertEquals(1, m.failed);
        assertEquals(60, m.totalInput, "failed requests' prompts are not counted");
        assertEquals(7, m.totalOutput);
        assertEquals(1.5, m.requestThroughput(), 1e-12);
        assertEquals(3.5, m.outputThroughput(), 1e-12);
        assertEquals(33.5, m.totalTokenThroughput(), 1e-12);
        assertEquals(2, m.values.get("tpot").length);
        assertEquals(0.2, Stats.mean(m.values.get("tpot")), 1e-12);
        assertEquals(4, m.values.get("itl").length);
        // good: #1 (ttft 0.1, tpot 0.1) and #3 (ttft 0.05, tpot counted as 0); #2 misses ttft
        assertEquals(1.0, m.requestGoodput(), 1e-12);
        // chunks: #1 at 0.1,0.2,0.3,0.4 ; #2 at 0.7,1.0 ; #3 at 1.25 -> bucket0 = 5, bucket1 = 2
        assertEquals(5.0, m.maxOutputTokensPerS);
        // second 0: #1, #2 ; second 1: #2 (ends at 1.0), #3
        assertEquals(2, m.maxConcurrentRequests);
    }

    @Test
    void retokenizedCountsWhenUsageIsMissing() {
        RequestOutput o = ok(0, 0.1, new double[] {0.1}, -1, 5);
        BenchmarkMetrics m = BenchmarkMetrics.calculate(List.of(o), 1, Map.of(), Map.of(0, 3));
        assertEquals(3, m.totalOutput);
    }

    @Test
    void reportLooksLikeVllms() throws Exception {
        List<RequestOutput> outs = List.of(ok(0.0, 0.1, new double[] {0.1, 0.1}, 3, 10), ok(0.1, 0.2, new double[] {0.2}, 2, 10));
        BenchmarkMetrics m = BenchmarkMetrics.calculate(outs, 1.0, Map.of(), Map.of());
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        ObjectNode result = new ObjectMapper().createObjectNode();
        m.report(new PrintStream(bytes, true, StandardCharsets.UTF_8), result, 4, 20, Map.of(), List.of("ttft", "tpot", "itl", "e2el"),
                List.of(50.0, 99.0, 99.9));
        String text = bytes.toString(StandardCharsets.UTF_8);
        assertTrue(text.startsWith("============ Serving Benchmark Result ============\n"), text);
        assertTrue(text.contains("Successful requests:                     2"), text);
        assertTrue(text.contains("Maximum request concurrency:             4"), text);
        assertTrue(text.contains("Request rate configured (RPS):           20.00"), text);
        assertTrue(text.contains("Total generated tokens:                  5"), text);
        assertTrue(text.contains("---------------Time to First Token----------------"), text);
        assertTrue(text.contains("-----Time per Output Token (excl. 1st token)------"), text);
        assertTrue(text.contains("Mean TTFT (ms):                          150.00"), text);
        assertTrue(text.contains("P99.9 E2EL (ms):"), text);
        assertTrue(text.endsWith("=".repeat(50) + "\n"), text);
        assertEquals(150.0, result.path("mean_ttft_ms").asDouble(), 1e-9);
        assertEquals(5, result.path("total_output_tokens").asInt());
        assertTrue(result.has("p99_tpot_ms") && result.has("p50_itl_ms") && result.has("p99.9_e2el_ms"));
        assertTrue(result.path("request_goodput").isNull());
    }
}
