// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Checks shared by the data-parallel system tests, against a server serving llama-tiny. */
final class DpChecks {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Pattern ENGINE = Pattern.compile("engine=\"([^\"]*)\"");

    private DpChecks() {
    }

    /** The engine JVMs under a launcher (bin/dpserve execs java, so each is one java process with {@code --role engine}). */
    static List<ProcessHandle> engineProcesses(ServerProcess launcher) {
        return launcher.process.toHandle().descendants().filter(h -> hasRole(h, "engine")).toList();
    }

    /** The DP coordinator JVM under a head launcher ({@code --role coordinator}); empty on a headless node or with N = 1. */
    static List<ProcessHandle> coordinatorProcesses(ServerProcess launcher) {
        return launcher.process.toHandle().descendants().filter(h -> hasRole(h, "coordinator")).toList();
    }

    private static boolean hasRole(ProcessHandle h, String role) {
        String[] args = h.info().arguments().orElse(new String[0]);
        for (int i = 0; i + 1 < args.length; i++) if (args[i].equals("--role") && args[i + 1].equals(role)) return true;
        return false;
    }

    /** Tokens the golden reference generated per prompt. */
    static final int GOLDEN_TOKENS = 24;

    /** {@code requests} concurrent greedy completions of the golden prompts; each must equal the reference's tokens. */
    static void greedyRequestsMatchGolden(ServerProcess server, int requests) throws Exception {
        int maxTokens = GOLDEN_TOKENS;
        JsonNode golden = JSON.readTree(TestSupport.fixture("llama-tiny").resolve("golden.json").toFile());
        List<JsonNode> prompts = new ArrayList<>();
        golden.path("prompts").forEach(prompts::add);
        ExecutorService pool = Executors.newFixedThreadPool(requests);
        try {
            List<Future<JsonNode>> futures = new ArrayList<>();
            for (int i = 0; i < requests; i++) {
                JsonNode p = prompts.get(i % prompts.size());
                String body = "{\"model\":\"llama-tiny\",\"prompt\":" + p.path("prompt") + ",\"max_tokens\":" + maxTokens
                        + ",\"temperature\":0,\"ignore_eos\":true,\"return_token_ids\":true}";
                futures.add(pool.submit(() -> {
                    HttpResponse<String> r = server.post("/v1/completions", body);
                    assertEquals(r.body(), 200, r.statusCode());
                    return JSON.readTree(r.body());
                }));
            }
            for (int i = 0; i < requests; i++) {
                JsonNode p = prompts.get(i % prompts.size());
                JsonNode choice = futures.get(i).get(180, TimeUnit.SECONDS).path("choices").path(0);
                assertEquals("request " + i + " (prompt " + p.path("index") + ")", p.path("generated").toString(),
                        choice.path("token_ids").toString());
                assertEquals("length", choice.path("finish_reason").asText());
            }
        } finally {
            pool.shutdownNow();
        }
    }

    /**
     * Generated tokens per engine rank from /metrics, once they add up to {@code expectedTotal}
     * (per-rank counters arrive with the engines' next stats report, at most a second later).
     */
    static Map<String, Double> generationTokensPerRank(ServerProcess server, double expectedTotal) throws Exception {
        Map<String, Double> perRank = Map.of();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (System.nanoTime() < deadline) {
            perRank = generationTokensByEngine(server.get("/metrics").body());
            if (perRank.values().stream().mapToDouble(Double::doubleValue).sum() >= expectedTotal) break;
            Thread.sleep(250);
        }
        return perRank;
    }

    static Map<String, Double> generationTokensByEngine(String metrics) {
        return byEngine(metrics, "vllm:generation_tokens_total");
    }

    /** Samples of a metric without other labels than model_name and engine, by {@code engine} label. */
    static Map<String, Double> byEngine(String metrics, String name) {
        Map<String, Double> out = new TreeMap<>();
        Matcher m = Pattern.compile("^" + Pattern.quote(name) + "\\{([^}]*)} (\\S+)$", Pattern.MULTILINE).matcher(metrics);
        while (m.find()) {
            Matcher e = ENGINE.matcher(m.group(1));
            if (!e.find()) fail("no engine label in " + m.group());
            out.merge(e.group(1), Double.parseDouble(m.group(2)), Double::sum);
        }
        return out;
    }

    /**
     * The per-rank engine metrics of a DP front end: for every rank (label {@code engine="R"})
     * prefix-cache queries and hits, preemptions, KV usage, running and waiting; the front end's
     * latency histograms under {@code engine="dp"}, each with one observation per request.
     */
    static void perRankMetrics(ServerProcess server, List<String> ranks, int requests) throws Exception {
        String metrics = server.get("/metrics").body();
        for (String name : List.of("vllm:prefix_cache_queries_total", "vllm:prefix_cache_hits_total", "vllm:num_preemptions_total",
                "vllm:kv_cache_usage_perc", "vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:prompt_tokens_total")) {
            assertEquals(name + " per rank", ranks, List.copyOf(byEngine(metrics, name).keySet()));
        }
        for (Map.Entry<String, Double> e : byEngine(metrics, "vllm:prefix_cache_queries_total").entrySet()) {
            // Every request's prompt is looked up in the rank's prefix cache, so a rank that served queried it.
            if (!(e.getValue() > 0)) fail("rank " + e.getKey() + " reported no prefix cache queries:\n" + metrics);
        }
        double hits = byEngine(metrics, "vllm:prefix_cache_hits_total").values().stream().mapToDouble(Double::doubleValue).sum();
        double queries = byEngine(metrics, "vllm:prefix_cache_queries_total").values().stream().mapToDouble(Double::doubleValue).sum();
        if (!(hits >= 0 && hits <= queries)) fail("hits " + hits + " vs queries " + queries);
        for (String histogram : List.of("vllm:time_to_first_token_seconds_count", "vllm:e2e_request_latency_seconds_count",
                "vllm:request_queue_time_seconds_count", "vllm:inter_token_latency_seconds_count")) {
            Map<String, Double> h = byEngine(metrics, histogram);
            assertEquals(histogram + " is the front end's, labelled engine=\"dp\"", List.of("dp"), List.copyOf(h.keySet()));
            double expected = histogram.startsWith("vllm:inter_token") ? requests * (GOLDEN_TOKENS - 1) : requests;
            if (histogram.startsWith("vllm:request_queue")) {
                // Queue time now crosses the wire; a request scheduled in the step it arrived in has 0 and is not observed.
                if (!(h.get("dp") > 0 && h.get("dp") <= requests)) fail(histogram + " " + h);
            } else {
                assertEquals(histogram, expected, h.get("dp"), 0.0);
            }
        }
    }

    /** Waits up to 15 s for each child process to exit; any still alive outlived its launcher. */
    static void assertAllExited(List<ProcessHandle> children) throws Exception {
        for (ProcessHandle h : children) {
            try {
                h.onExit().get(15, java.util.concurrent.TimeUnit.SECONDS);
            } catch (java.util.concurrent.TimeoutException stillAlive) {
                // reported just below
            }
            org.junit.Assert.assertFalse("process " + h.pid() + " outlived its launcher", h.isAlive());
        }
    }
}
