// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
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
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.Timeout;

/**
 * {@code dpserve serve --data-parallel-size 2} on one node: the launcher is the front end and runs
 * two engine processes. Greedy outputs must equal the single-engine golden reference, both ranks
 * must serve, a dead rank must turn /health to 503, and stopping the launcher by PID must leave
 * no engine process behind.
 */
public class DataParallelIT {

    @Rule
    public final Timeout timeout = Timeout.seconds(420);

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int REQUESTS = 16;
    private static final int MAX_TOKENS = 24;

    private static ServerProcess startDp2(String log) throws Exception {
        Path model = TestSupport.fixture("llama-tiny");
        assertTrue("fixture missing: " + model, Files.isRegularFile(model.resolve("model.safetensors")));
        return ServerProcess.start(model, "llama-tiny", log, "--max-model-len", "256", "--seed", "1",
                "--data-parallel-size", "2", "--data-parallel-rpc-port", Integer.toString(TestSupport.freePort()));
    }

    /** The engine JVMs under the launcher (bin/dpserve execs java, so each child is one java process). */
    private static List<ProcessHandle> engines(ServerProcess server) {
        List<ProcessHandle> all = server.process.toHandle().descendants().toList();
        assertEquals("two engine processes under the launcher: " + all, 2, all.size());
        return all;
    }

    @Test
    public void twoRanksServeGreedyRequestsLikeOneEngineAndStopWithTheLauncher() throws Exception {
        JsonNode golden = JSON.readTree(TestSupport.fixture("llama-tiny").resolve("golden.json").toFile());
        List<JsonNode> prompts = new ArrayList<>();
        golden.path("prompts").forEach(prompts::add);
        ServerProcess server = startDp2("serve-dp2.log");
        List<ProcessHandle> children;
        try {
            children = engines(server);
            ExecutorService pool = Executors.newFixedThreadPool(REQUESTS);
            try {
                List<Future<JsonNode>> futures = new ArrayList<>();
                for (int i = 0; i < REQUESTS; i++) {
                    JsonNode p = prompts.get(i % prompts.size());
                    String body = "{\"model\":\"llama-tiny\",\"prompt\":" + p.path("prompt") + ",\"max_tokens\":" + MAX_TOKENS
                            + ",\"temperature\":0,\"ignore_eos\":true,\"return_token_ids\":true}";
                    futures.add(pool.submit(() -> {
                        HttpResponse<String> r = server.post("/v1/completions", body);
                        assertEquals(r.body(), 200, r.statusCode());
                        return JSON.readTree(r.body());
                    }));
                }
                for (int i = 0; i < REQUESTS; i++) {
                    JsonNode p = prompts.get(i % prompts.size());
                    JsonNode choice = futures.get(i).get(180, TimeUnit.SECONDS).path("choices").path(0);
                    assertEquals("request " + i + " (prompt " + p.path("index") + ")", p.path("generated").toString(),
                            choice.path("token_ids").toString());
                    assertEquals("length", choice.path("finish_reason").asText());
                }
            } finally {
                pool.shutdownNow();
            }
            // Per-rank counters arrive with the engines' next stats report (at most a second later).
            Map<String, Double> perRank = Map.of();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
            while (System.nanoTime() < deadline) {
                perRank = generationTokensByEngine(server.get("/metrics").body());
                if (perRank.values().stream().mapToDouble(Double::doubleValue).sum() >= REQUESTS * MAX_TOKENS) break;
                Thread.sleep(250);
            }
            assertEquals("engine labels " + perRank, List.of("0", "1"), List.copyOf(perRank.keySet()));
            assertEquals(REQUESTS * MAX_TOKENS, perRank.values().stream().mapToDouble(Double::doubleValue).sum(), 0.0);
            for (Map.Entry<String, Double> e : perRank.entrySet()) {
                assertTrue("rank " + e.getKey() + " served requests: " + perRank, e.getValue() >= MAX_TOKENS);
            }
            assertEquals(200, server.get("/health").statusCode());
        } finally {
            server.close();
        }
        for (ProcessHandle h : children) {
            h.onExit().get(15, TimeUnit.SECONDS);
            assertFalse("engine process " + h.pid() + " outlived the launcher", h.isAlive());
        }
        String log = Files.readString(server.log);
        assertTrue(log, log.contains("[dp0] ") && log.contains("[dp1] "));
        assertFalse("engine exits during shutdown are expected, not reported:\n" + log, log.contains(") exited with"));
    }

    @Test
    public void aDeadRankIsReportedAndTurnsHealthTo503() throws Exception {
        ServerProcess server = startDp2("serve-dp2-dead-rank.log");
        List<ProcessHandle> children;
        try {
            children = engines(server);
            ProcessHandle victim = children.get(1);
            assertTrue(victim.destroyForcibly()); // SIGKILL: no goodbye, the front end must notice the silence
            victim.onExit().get(15, TimeUnit.SECONDS);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            HttpResponse<String> health = server.get("/health");
            while (health.statusCode() == 200 && System.nanoTime() < deadline) {
                Thread.sleep(500);
                health = server.get("/health");
            }
            assertEquals(health.body(), 503, health.statusCode());
            assertTrue(Files.readString(server.log), Files.readString(server.log).contains("(pid " + victim.pid() + ") exited with"));
            // The surviving rank still serves.
            HttpResponse<String> r = server.post("/v1/completions",
                    "{\"model\":\"llama-tiny\",\"prompt\":[1,2,3],\"max_tokens\":4,\"temperature\":0}");
            assertEquals(r.body(), 200, r.statusCode());
        } finally {
            server.close();
        }
        for (ProcessHandle h : children) {
            h.onExit().get(15, TimeUnit.SECONDS);
            assertFalse("engine process " + h.pid() + " outlived the launcher", h.isAlive());
        }
    }

    private static final Pattern GENERATION = Pattern.compile("^vllm:generation_tokens_total\\{([^}]*)} (\\S+)$", Pattern.MULTILINE);
    private static final Pattern ENGINE = Pattern.compile("engine=\"([^\"]*)\"");

    /** {@code vllm:generation_tokens_total} summed per {@code engine} label. */
    static Map<String, Double> generationTokensByEngine(String metrics) {
        Map<String, Double> out = new TreeMap<>();
        Matcher m = GENERATION.matcher(metrics);
        while (m.find()) {
            Matcher e = ENGINE.matcher(m.group(1));
            if (!e.find()) fail("no engine label in " + m.group());
            out.merge(e.group(1), Double.parseDouble(m.group(2)), Double::sum);
        }
        return out;
    }
}
