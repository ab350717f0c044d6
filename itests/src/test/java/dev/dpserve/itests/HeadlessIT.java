// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.Timeout;

/**
 * The seed's two-node form on one machine, over loopback: a head on 127.0.0.1
 * ({@code --data-parallel-size 4 --data-parallel-size-local 2}: front end plus ranks 0 and 1) and
 * a {@code --headless} launcher as a second node on 127.0.0.2 ({@code --data-parallel-start-rank 2}:
 * ranks 2 and 3, no HTTP), both with the same cluster key from {@code dpserve keygen}, so every
 * DP socket runs CurveZMQ. The headless node starts first and is already knocking when the head
 * comes up, as a second node may. Greedy outputs must equal the single-engine golden reference,
 * all four ranks must serve and show up in the per-rank metrics, and stopping both launchers by
 * PID must leave no engine process behind.
 */
public class HeadlessIT {

    @Rule
    public final Timeout timeout = Timeout.seconds(480);

    private static final int REQUESTS = 16;
    private static final int MAX_TOKENS = DpChecks.GOLDEN_TOKENS;

    /** The engine JVMs under a launcher, and on the head its DP coordinator JVM. */
    private static List<ProcessHandle> engines(ServerProcess launcher, int expected) {
        List<ProcessHandle> engines = DpChecks.engineProcesses(launcher);
        assertEquals("engine processes under launcher " + launcher.process.pid() + ": " + engines, expected, engines.size());
        List<ProcessHandle> all = launcher.process.toHandle().descendants().toList();
        assertEquals("only engines and the coordinator: " + all, expected + DpChecks.coordinatorProcesses(launcher).size(), all.size());
        return all;
    }

    @Test
    public void headAndHeadlessNodeServeFourRanksLikeOneEngineAndStopCleanly() throws Exception {
        Path model = TestSupport.fixture("llama-tiny");
        assertTrue("fixture missing: " + model, Files.isRegularFile(model.resolve("model.safetensors")));
        String rpcPort = Integer.toString(TestSupport.freePort());
        Path key = TestSupport.keygen("headless-it");
        List<String> dp = List.of("--max-model-len", "256", "--seed", "1", "--data-parallel-size", "4",
                "--data-parallel-size-local", "2", "--data-parallel-address", "127.0.0.1", "--data-parallel-rpc-port", rpcPort,
                "--data-parallel-startup-timeout", "240", "--cluster-key-file", key.toString());
        List<String> nodeArgs = new ArrayList<>(List.of("--headless"));
        nodeArgs.addAll(dp);
        nodeArgs.addAll(List.of("--data-parallel-start-rank", "2", "--data-parallel-node-address", "127.0.0.2"));

        List<ProcessHandle> children = new ArrayList<>();
        ServerProcess node = ServerProcess.startHeadless(model, "headless-node1.log", nodeArgs.toArray(String[]::new));
        ServerProcess head = null;
        try {
            node.awaitLog("dpserve: headless node 127.0.0.2: engines dp2..dp3 of 4 joining the head at 127.0.0.1:" + rpcPort
                    + " with the cluster key (CurveZMQ)", 60);
            node.awaitLog("DP rank 2: connecting to the head at tcp://127.0.0.1:" + rpcPort + " from node 127.0.0.2 with cluster key", 120);
            head = ServerProcess.start(model, "llama-tiny", "headless-head.log", dp.toArray(String[]::new));
            node.awaitLog("dpserve: headless node: engines dp2..dp3 joined the head at 127.0.0.1:" + rpcPort, 60);
            children.addAll(engines(head, 2));
            children.addAll(engines(node, 2));
            ServerProcess server = head;

            DpChecks.greedyRequestsMatchGolden(server, REQUESTS);
            Map<String, Double> perRank = DpChecks.generationTokensPerRank(server, REQUESTS * MAX_TOKENS);
            assertEquals("engine labels " + perRank, List.of("0", "1", "2", "3"), List.copyOf(perRank.keySet()));
            assertEquals(REQUESTS * MAX_TOKENS, perRank.values().stream().mapToDouble(Double::doubleValue).sum(), 0.0);
            for (Map.Entry<String, Double> e : perRank.entrySet()) {
                assertTrue("rank " + e.getKey() + " served requests: " + perRank, e.getValue() >= MAX_TOKENS);
            }
            DpChecks.perRankMetrics(server, List.of("0", "1", "2", "3"), REQUESTS);
            assertEquals(200, server.get("/health").statusCode());
        } finally {
            try {
                if (head != null) head.close();
            } finally {
                node.close();
            }
        }
        DpChecks.assertAllExited(children);
        String headLog = Files.readString(head.log);
        String nodeLog = Files.readString(node.log);
        assertTrue(headLog, headLog.contains("[dp0] ") && headLog.contains("[dp1] ") && !headLog.contains("[dp2] "));
        assertTrue(nodeLog, nodeLog.contains("[dp2] ") && nodeLog.contains("[dp3] ") && !nodeLog.contains("[dp0] "));
        assertFalse("engine exits during shutdown are expected, not reported:\n" + nodeLog, nodeLog.contains(") exited with"));
        assertFalse("the headless node has no front end:\n" + nodeLog, nodeLog.contains("dpserve: serving"));
    }
}
