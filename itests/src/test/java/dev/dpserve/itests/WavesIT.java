// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

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
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.Timeout;

/**
 * Request waves on a MoE model (the deepseek-v3-tiny fixture) with {@code --data-parallel-size 2}
 * on one node (spec 4): the head runs the front end, the DP coordinator JVM and two engine JVMs
 * that step in lockstep. One request served by one rank makes the other run dummy forwards; after
 * the work ends both ranks pause in the next wave and their JVMs use about no CPU; new requests
 * wake both; greedy outputs equal the single-engine golden reference throughout. Every process is
 * stopped by PID.
 */
public class WavesIT {

    @Rule
    public final Timeout timeout = Timeout.seconds(420);

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Pattern SAMPLE = Pattern.compile("^(dpserve:dp_[a-z_]+|vllm:generation_tokens_total)\\{([^}]*)} (\\S+)$",
            Pattern.MULTILINE);
    private static final Pattern ENGINE = Pattern.compile("engine=\"([^\"]*)\"");
    /** Linux reports utime/stime in clock ticks of 10 ms (USER_HZ = 100). */
    private static final int TICK_MILLIS = 10;

    /** metric name → engine label → value. */
    private static Map<String, Map<String, Double>> metrics(ServerProcess server) throws Exception {
        Map<String, Map<String, Double>> out = new TreeMap<>();
        Matcher m = SAMPLE.matcher(server.get("/metrics").body());
        while (m.find()) {
            Matcher e = ENGINE.matcher(m.group(2));
            if (!e.find()) continue;
            out.computeIfAbsent(m.group(1), k -> new TreeMap<>()).put(e.group(1), Double.parseDouble(m.group(3)));
        }
        return out;
    }

    private static double value(Map<String, Map<String, Double>> metrics, String name, String rank) {
        return metrics.getOrDefault(name, Map.of()).getOrDefault(rank, -1.0);
    }

    /** Polls /metrics until {@code condition} holds (stats reach the front end within about a second). */
    private static Map<String, Map<String, Double>> awaitMetrics(ServerProcess server, String what,
                                                                 Predicate<Map<String, Map<String, Double>>> condition) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        Map<String, Map<String, Double>> m = metrics(server);
        while (!condition.test(m)) {
            if (System.nanoTime() > deadline) throw new AssertionError("timed out waiting for " + what + "; metrics: " + m);
            Thread.sleep(200);
            m = metrics(server);
        }
        return m;
    }

    private static boolean pausedAt(Map<String, Map<String, Double>> m, int wave) {
        for (String r : List.of("0", "1")) {
            if (value(m, "dpserve:dp_engines_running", r) != 0 || value(m, "dpserve:dp_current_wave", r) != wave) return false;
        }
        return true;
    }

    /** utime + stime of a process, in clock ticks, from /proc/PID/stat (fields 14 and 15, after the parenthesised name). */
    private static long cpuTicks(ProcessHandle h) throws Exception {
        String stat = Files.readString(Path.of("/proc", Long.toString(h.pid()), "stat"));
        String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        return Long.parseLong(f[11]) + Long.parseLong(f[12]); // fields 3.. after the name: utime is field 14 overall
    }

    /** Greedy completions of golden prompts {@code indexes}, concurrently; each must equal the reference. */
    private static void greedyMatchesGolden(ServerProcess server, JsonNode golden, List<Integer> indexes) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(indexes.size());
        try {
            List<Future<JsonNode>> futures = new ArrayList<>();
            for (int i : indexes) {
                JsonNode p = golden.path("prompts").get(i);
                String body = "{\"model\":\"deepseek-tiny\",\"prompt\":" + p.path("prompt") + ",\"max_tokens\":24,"
                        + "\"temperature\":0,\"ignore_eos\":true,\"return_token_ids\":true}";
                futures.add(pool.submit(() -> {
                    HttpResponse<String> r = server.post("/v1/completions", body);
                    assertEquals(r.body(), 200, r.statusCode());
                    return JSON.readTree(r.body());
                }));
            }
            for (int k = 0; k < indexes.size(); k++) {
                JsonNode p = golden.path("prompts").get(indexes.get(k));
                JsonNode choice = futures.get(k).get(180, TimeUnit.SECONDS).path("choices").path(0);
                assertEquals("prompt " + p.path("index"), p.path("generated").toString(), choice.path("token_ids").toString());
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    public void idleRankRunsDummyBatchesThenAllPauseAtZeroCpuAndANewRequestWakesBoth() throws Exception {
        Path model = TestSupport.fixture("deepseek-v3-tiny");
        JsonNode golden = JSON.readTree(model.resolve("golden.json").toFile());
        int prompts = golden.path("prompts").size();
        assertTrue("golden prompts: " + prompts, prompts >= 2);
        ServerProcess server = ServerProcess.start(model, "deepseek-tiny", "serve-waves.log", "--max-model-len", "512",
                "--data-parallel-size", "2", "--data-parallel-rpc-port", Integer.toString(TestSupport.freePort()));
        List<ProcessHandle> children = new ArrayList<>();
        try {
            List<ProcessHandle> engines = DpChecks.engineProcesses(server);
            List<ProcessHandle> coordinator = DpChecks.coordinatorProcesses(server);
            assertEquals("engines: " + engines, 2, engines.size());
            assertEquals("coordinator: " + coordinator, 1, coordinator.size());
            children.addAll(engines);
            children.addAll(coordinator);

            // Cold start: nothing has run; both ranks are paused in wave 0.
            awaitMetrics(server, "both ranks paused in wave 0", m -> pausedAt(m, 0));

            // One request: one rank serves it, the other runs dummy forwards in lockstep.
            greedyMatchesGolden(server, golden, List.of(0));
            Map<String, Map<String, Double>> m = awaitMetrics(server, "wave 0 to end on both ranks", x -> pausedAt(x, 1));
            Map<String, Double> tokens = m.get("vllm:generation_tokens_total");
            String busy = tokens.get("0") >= 24 ? "0" : "1";
            String idle = busy.equals("0") ? "1" : "0";
            assertEquals("one rank served the request: " + tokens, 0.0, tokens.get(idle), 0.0);
            assertTrue("the idle rank ran dummy batches: " + m, value(m, "dpserve:dp_dummy_steps_total", idle) > 0);
            assertEquals("lockstep: both ranks made the same exchanges: " + m, value(m, "dpserve:dp_exchanges_total", "0"),
                    value(m, "dpserve:dp_exchanges_total", "1"), 0.0);
            assertTrue(value(m, "dpserve:dp_exchange_seconds_total", busy) > 0);

            // Paused: no steps and ~0 CPU in the engine JVMs (they block on their input).
            Thread.sleep(1000); // let a late JIT compilation or GC finish
            long[] before = new long[engines.size()];
            for (int i = 0; i < engines.size(); i++) before[i] = cpuTicks(engines.get(i));
            double exchanges = value(m, "dpserve:dp_exchanges_total", "0");
            Thread.sleep(2000);
            for (int i = 0; i < engines.size(); i++) {
                long used = (cpuTicks(engines.get(i)) - before[i]) * TICK_MILLIS;
                assertTrue("paused engine " + engines.get(i).pid() + " used " + used + " ms CPU in 2 s", used <= 200);
            }
            Map<String, Map<String, Double>> still = metrics(server);
            assertTrue(pausedAt(still, 1));
            assertEquals("no exchanges while paused", exchanges, value(still, "dpserve:dp_exchanges_total", "0"), 0.0);

            // New work wakes both ranks; they pause again in the next wave; outputs stay equal to the reference.
            List<Integer> all = new ArrayList<>();
            for (int i = 0; i < prompts; i++) all.add(i);
            greedyMatchesGolden(server, golden, all);
            m = awaitMetrics(server, "wave 1 to end on both ranks", x -> pausedAt(x, 2));
            assertTrue("both ranks stepped again: " + m, value(m, "dpserve:dp_exchanges_total", "1") > exchanges);
            assertEquals(value(m, "dpserve:dp_exchanges_total", "0"), value(m, "dpserve:dp_exchanges_total", "1"), 0.0);
            assertEquals(200, server.get("/health").statusCode());
        } finally {
            server.close();
        }
        DpChecks.assertAllExited(children);
        String log = Files.readString(server.log);
        assertTrue(log, log.contains("[coordinator] ") && log.contains("lockstep mode"));
        assertFalse("exits during shutdown are expected, not reported:\n" + log, log.contains(") exited with"));
    }

    /**
     * Cold start across "nodes": the head has rank 0 (and the coordinator), a headless launcher rank
     * 1. No request has run anywhere; the first one must start wave 0 on both (the front end's
     * FIRST_REQ through the coordinator), and the group must pause afterwards.
     */
    @Test
    public void coldStartWithAHeadlessRank() throws Exception {
        Path model = TestSupport.fixture("deepseek-v3-tiny");
        JsonNode golden = JSON.readTree(model.resolve("golden.json").toFile());
        String rpcPort = Integer.toString(TestSupport.freePort());
        // The node on its own loopback address and every link (handshake, requests, coordinator,
        // DP group collectives) under the cluster key, as between real nodes.
        Path key = TestSupport.keygen("waves-it");
        List<String> dp = List.of("--max-model-len", "512", "--data-parallel-size", "2", "--data-parallel-size-local", "1",
                "--data-parallel-address", "127.0.0.1", "--data-parallel-rpc-port", rpcPort, "--data-parallel-startup-timeout", "240",
                "--cluster-key-file", key.toString());
        List<String> nodeArgs = new ArrayList<>(List.of("--headless"));
        nodeArgs.addAll(dp);
        nodeArgs.addAll(List.of("--data-parallel-start-rank", "1", "--data-parallel-node-address", "127.0.0.2"));
        List<ProcessHandle> children = new ArrayList<>();
        ServerProcess node = ServerProcess.startHeadless(model, "waves-headless-node.log", nodeArgs.toArray(String[]::new));
        ServerProcess head = null;
        try {
            head = ServerProcess.start(model, "deepseek-tiny", "waves-headless-head.log", dp.toArray(String[]::new));
            node.awaitLog("dpserve: headless node: engines dp1..dp1 joined the head at 127.0.0.1:" + rpcPort, 60);
            children.addAll(DpChecks.engineProcesses(head));
            children.addAll(DpChecks.coordinatorProcesses(head));
            children.addAll(DpChecks.engineProcesses(node));
            assertEquals("head engine + coordinator + headless engine: " + children, 3, children.size());
            assertTrue(DpChecks.coordinatorProcesses(node).isEmpty());
            ServerProcess server = head;
            awaitMetrics(server, "both ranks paused in wave 0", m -> pausedAt(m, 0));

            greedyMatchesGolden(server, golden, List.of(1));
            Map<String, Map<String, Double>> m = awaitMetrics(server, "wave 0 to end on both ranks", x -> pausedAt(x, 1));
            double dummies = value(m, "dpserve:dp_dummy_steps_total", "0") + value(m, "dpserve:dp_dummy_steps_total", "1");
            assertTrue("the idle rank ran dummy batches: " + m, dummies > 0);
            assertEquals(value(m, "dpserve:dp_exchanges_total", "0"), value(m, "dpserve:dp_exchanges_total", "1"), 0.0);

            greedyMatchesGolden(server, golden, List.of(0, 1));
            awaitMetrics(server, "wave 1 to end on both ranks", x -> pausedAt(x, 2));
            String headLog = Files.readString(head.log);
            assertTrue(headLog, headLog.contains("engines (CurveZMQ with the cluster key)"));
            assertTrue(headLog, headLog.contains("DP rank 0 joined its DP group of 2 at"));
            assertTrue(headLog, headLog.matches("(?s).*DP rank 0 joined its DP group of 2 at \\S+ \\(CurveZMQ with the cluster key\\).*"));
            String nodeLog = Files.readString(node.log);
            assertTrue(nodeLog, nodeLog.contains("(CurveZMQ with the cluster key)"));
        } finally {
            try {
                if (head != null) head.close();
            } finally {
                node.close();
            }
        }
        DpChecks.assertAllExited(children);
    }

    /**
     * A rank that vanishes mid-wave (SIGKILL) must not hang the other: its collective times out
     * (30 s), its request ends with the reason, it reports itself dead, /health turns 503 and new
     * requests are refused at once; the launcher still stops everything by PID.
     */
    @Test
    public void aVanishedRankEndsTheWaveWithAnErrorInsteadOfAHang() throws Exception {
        Path model = TestSupport.fixture("deepseek-v3-tiny");
        ServerProcess server = ServerProcess.start(model, "deepseek-tiny", "waves-vanished.log", "--max-model-len", "512",
                "--data-parallel-size", "2", "--data-parallel-rpc-port", Integer.toString(TestSupport.freePort()));
        List<ProcessHandle> children = new ArrayList<>();
        try {
            List<ProcessHandle> engines = DpChecks.engineProcesses(server);
            children.addAll(engines);
            children.addAll(DpChecks.coordinatorProcesses(server));
            awaitMetrics(server, "both ranks paused in wave 0", m -> pausedAt(m, 0));
            ExecutorService pool = Executors.newSingleThreadExecutor();
            try {
                // A long request keeps the group running; then one engine JVM disappears.
                Future<HttpResponse<String>> running = pool.submit(() -> server.post("/v1/completions",
                        "{\"model\":\"deepseek-tiny\",\"prompt\":[1,2,3],\"max_tokens\":480,\"temperature\":0,\"ignore_eos\":true}"));
                awaitMetrics(server, "the wave to run", m -> value(m, "dpserve:dp_engines_running", "0") == 1
                        && value(m, "dpserve:dp_engines_running", "1") == 1);
                long t0 = System.nanoTime();
                ProcessHandle victim = engines.get(1);
                assertTrue(victim.destroyForcibly());
                HttpResponse<String> r = running.get(120, TimeUnit.SECONDS);
                long seconds = TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - t0);
                assertTrue("the request ended after " + seconds + " s: " + r.body(), seconds < 90);
                assertFalse("the request cannot have completed normally: " + r.body(),
                        r.statusCode() == 200 && r.body().contains("\"finish_reason\":\"length\"") && !r.body().contains("error"));
            } finally {
                pool.shutdownNow();
            }
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            HttpResponse<String> health = server.get("/health");
            while (health.statusCode() == 200 && System.nanoTime() < deadline) {
                Thread.sleep(500);
                health = server.get("/health");
            }
            assertEquals(health.body(), 503, health.statusCode());
            HttpResponse<String> refused = server.post("/v1/completions",
                    "{\"model\":\"deepseek-tiny\",\"prompt\":[1,2,3],\"max_tokens\":4,\"temperature\":0}");
            assertTrue(refused.body(), refused.statusCode() >= 500);
            server.awaitLog("left lockstep", 60);
        } finally {
            server.close();
        }
        DpChecks.assertAllExited(children);
    }
}
