// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
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

    private static final int REQUESTS = 16;
    private static final int MAX_TOKENS = DpChecks.GOLDEN_TOKENS;

    private static ServerProcess startDp2(String log) throws Exception {
        return startDp2(false, log);
    }

    private static ServerProcess startDp2(boolean console, String log) throws Exception {
        Path model = TestSupport.fixture("llama-tiny");
        assertTrue("fixture missing: " + model, Files.isRegularFile(model.resolve("model.safetensors")));
        return ServerProcess.start(console, model, "llama-tiny", log, "--max-model-len", "256", "--seed", "1",
                "--data-parallel-size", "2", "--data-parallel-rpc-port", Integer.toString(TestSupport.freePort()));
    }

    /** The engine JVMs and the DP coordinator JVM under the launcher. */
    private static List<ProcessHandle> engines(ServerProcess server) {
        List<ProcessHandle> all = server.process.toHandle().descendants().toList();
        assertEquals("two engine processes and the coordinator under the launcher: " + all, 3, all.size());
        assertEquals(2, DpChecks.engineProcesses(server).size());
        assertEquals(1, DpChecks.coordinatorProcesses(server).size());
        return all;
    }

    @Test
    public void twoRanksServeGreedyRequestsLikeOneEngineAndStopWithTheLauncher() throws Exception {
        ServerProcess server = startDp2("serve-dp2.log");
        List<ProcessHandle> children;
        try {
            children = engines(server);
            // each engine JVM sees its share of the cores, so that two kernel pools do not oversubscribe them
            String share = "-XX:ActiveProcessorCount=" + Math.max(1, Runtime.getRuntime().availableProcessors() / 2);
            for (ProcessHandle e : DpChecks.engineProcesses(server)) {
                List<String> args = List.of(e.info().arguments().orElse(new String[0]));
                assertTrue("engine " + e.pid() + " runs with " + share + ": " + args, args.contains(share));
            }
            DpChecks.greedyRequestsMatchGolden(server, REQUESTS);
            Map<String, Double> perRank = DpChecks.generationTokensPerRank(server, REQUESTS * MAX_TOKENS);
            assertEquals("engine labels " + perRank, List.of("0", "1"), List.copyOf(perRank.keySet()));
            assertEquals(REQUESTS * MAX_TOKENS, perRank.values().stream().mapToDouble(Double::doubleValue).sum(), 0.0);
            for (Map.Entry<String, Double> e : perRank.entrySet()) {
                assertTrue("rank " + e.getKey() + " served requests: " + perRank, e.getValue() >= MAX_TOKENS);
            }
            DpChecks.perRankMetrics(server, List.of("0", "1"), REQUESTS);
            assertEquals(200, server.get("/health").statusCode());
        } finally {
            server.close();
        }
        DpChecks.assertAllExited(children);
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
            ProcessHandle victim = DpChecks.engineProcesses(server).get(1);
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
        DpChecks.assertAllExited(children);
    }


    @Test
    public void theShellsShutdownCommandStopsTheLauncherAndEveryEngine() throws Exception {
        ServerProcess server = startDp2(true, "serve-dp2-shutdown.log");
        List<ProcessHandle> children = List.of();
        try {
            children = engines(server);
            server.type("dpserve:shutdown");
            assertTrue("the launcher stopped after dpserve:shutdown:\n" + Files.readString(server.log),
                    server.process.waitFor(60, TimeUnit.SECONDS));
            assertEquals(Files.readString(server.log), 0, server.process.exitValue());
        } finally {
            server.close();
        }
        DpChecks.assertAllExited(children);
    }
}
