// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.Timeout;
import org.zeromq.SocketType;
import org.zeromq.ZContext;
import org.zeromq.ZMQ;

/**
 * Data parallelism when things go wrong, with real launchers on loopback (head on 127.0.0.1,
 * headless "node" on 127.0.0.2) and short timeouts: a headless node that starts before its head,
 * a node with the wrong cluster key, ranks that never join (and a head that never appears), and
 * malformed frames on every socket the head binds. Every process is stopped by PID, and each case
 * checks that no engine JVM outlives its launcher.
 */
public class DpFailureIT {

    @Rule
    public final Timeout timeout = Timeout.seconds(420);

    private static final Pattern STARTED = Pattern.compile("dpserve: started engine dp(\\d+) \\(pid (\\d+)\\)");

    private static Path model() {
        Path model = TestSupport.fixture("llama-tiny");
        assertTrue("fixture missing: " + model, Files.isRegularFile(model.resolve("model.safetensors")));
        return model;
    }

    private static List<String> dp(int size, int local, int rpcPort, int startupTimeout, Path key) {
        List<String> a = new ArrayList<>(List.of("--max-model-len", "256", "--seed", "1", "--data-parallel-size", Integer.toString(size),
                "--data-parallel-size-local", Integer.toString(local), "--data-parallel-address", "127.0.0.1",
                "--data-parallel-rpc-port", Integer.toString(rpcPort), "--data-parallel-startup-timeout", Integer.toString(startupTimeout)));
        if (key != null) a.addAll(List.of("--cluster-key-file", key.toString()));
        return a;
    }

    private static String[] headless(int size, int local, int startRank, int rpcPort, int startupTimeout, Path key, String... extra) {
        List<String> a = new ArrayList<>(List.of("--headless"));
        a.addAll(dp(size, local, rpcPort, startupTimeout, key));
        a.addAll(List.of("--data-parallel-start-rank", Integer.toString(startRank), "--data-parallel-node-address", "127.0.0.2"));
        a.addAll(List.of(extra));
        return a.toArray(String[]::new);
    }

    /** Engine PIDs as the launcher announced them ("started engine dpR (pid P)"), by rank. */
    private static Map<Integer, Long> enginePids(ServerProcess launcher) throws Exception {
        Map<Integer, Long> out = new java.util.TreeMap<>();
        Matcher m = STARTED.matcher(Files.readString(launcher.log));
        while (m.find()) out.put(Integer.parseInt(m.group(1)), Long.parseLong(m.group(2)));
        return out;
    }

    private static void assertGone(Map<Integer, Long> pids) throws Exception {
        for (Map.Entry<Integer, Long> e : pids.entrySet()) {
            var h = ProcessHandle.of(e.getValue());
            if (h.isPresent()) h.get().onExit().get(20, TimeUnit.SECONDS);
            assertFalse("engine dp" + e.getKey() + " (pid " + e.getValue() + ") outlived its launcher",
                    ProcessHandle.of(e.getValue()).map(ProcessHandle::isAlive).orElse(false));
        }
    }

    @Test
    public void aHeadlessNodeStartedBeforeItsHeadJoinsWhenTheHeadComesUp() throws Exception {
        Path key = TestSupport.keygen("early");
        int rpc = TestSupport.freePort();
        Path nodeRun = TestSupport.work().resolve("early-node-run.json");
        Files.deleteIfExists(nodeRun);
        ServerProcess node = ServerProcess.startHeadless(model(), "dpfail-early-node.log",
                headless(2, 1, 1, rpc, 240, key, "--run-file", nodeRun.toString()));
        ServerProcess head = null;
        Map<Integer, Long> pids = new java.util.TreeMap<>();
        try {
            // The engine is up and knocking at a port nobody listens on yet.
            node.awaitLog("DP rank 1: connecting to the head at tcp://127.0.0.1:" + rpc + " from node 127.0.0.2 with cluster key", 120);
            Thread.sleep(3000);
            assertTrue("the headless node waits for its head:\n" + Files.readString(node.log), node.process.isAlive());
            assertFalse(Files.exists(nodeRun));

            head = ServerProcess.start(model(), "llama-tiny", "dpfail-early-head.log", dp(2, 1, rpc, 240, key).toArray(String[]::new));
            node.awaitLog("dpserve: headless node: engines dp1..dp1 joined the head at 127.0.0.1:" + rpc, 60);
            pids.putAll(enginePids(head));
            pids.putAll(enginePids(node));
            assertEquals("dp0 on the head, dp1 on the node: " + pids, List.of(0, 1), List.copyOf(pids.keySet()));

            JsonNode run = TestSupport.awaitRunFile(nodeRun, 10);
            assertEquals("headless", run.path("role").asText());
            assertEquals("127.0.0.2", run.path("nodeAddress").asText());
            assertEquals(node.process.pid(), run.path("pid").asLong());
            assertTrue(run.path("curve").asBoolean());
            assertEquals(pids.get(1).longValue(), run.path("engines").path(0).path("pid").asLong());
            assertEquals("engines connect, they bind nothing: " + run, 0, run.path("bound").size());

            DpChecks.greedyRequestsMatchGolden(head, 8);
            Map<String, Double> perRank = DpChecks.generationTokensPerRank(head, 8 * DpChecks.GOLDEN_TOKENS);
            assertEquals("engine labels " + perRank, List.of("0", "1"), List.copyOf(perRank.keySet()));
            for (Map.Entry<String, Double> e : perRank.entrySet()) {
                assertTrue("rank " + e.getKey() + " served requests: " + perRank, e.getValue() >= DpChecks.GOLDEN_TOKENS);
            }
            String headLog = Files.readString(head.log);
            assertTrue(headLog, headLog.contains("DP sockets use CurveZMQ with the cluster key"));
        } finally {
            try {
                if (head != null) head.close();
            } finally {
                node.close();
            }
        }
        assertGone(pids);
        assertFalse("the run file goes with its launcher", Files.exists(nodeRun));
    }

    @Test
    public void aWrongClusterKeyIsRefusedOnBothSidesAndTheHeadGivesUpNamingTheRank() throws Exception {
        Path headKey = TestSupport.keygen("head");
        Path otherKey = TestSupport.keygen("other");
        int rpc = TestSupport.freePort();
        ServerProcess head = ServerProcess.startNoWait(model(), "dpfail-wrongkey-head.log",
                concat(List.of("--served-model-name", "llama-tiny"), dp(2, 1, rpc, 25, headKey)));
        // The node may wait longer than the head: it is refused within a second or two of the head binding anyway.
        ServerProcess node = ServerProcess.startHeadless(model(), "dpfail-wrongkey-node.log", headless(2, 1, 1, rpc, 90, otherKey));
        Map<Integer, Long> pids = new java.util.TreeMap<>();
        try {
            int nodeExit = node.awaitExit(120);
            pids.putAll(enginePids(node));
            String nodeLog = Files.readString(node.log);
            assertEquals(nodeLog, 1, nodeExit);
            assertTrue(nodeLog, nodeLog.contains("dpserve: headless node: engine dp1 (pid " + pids.get(1) + ") could not join the head at 127.0.0.1:"
                    + rpc + ": no reply from the head at tcp://127.0.0.1:" + rpc));
            assertTrue(nodeLog, nodeLog.contains("refused: wrong cluster key or unreachable head"));
            assertTrue(nodeLog, nodeLog.contains("Check that --cluster-key-file holds the same key as on the head"));

            head.awaitLog("the CurveZMQ handshake failed (ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC), the peer uses a different cluster key", 30);
            String refused = Files.readString(head.log);
            assertTrue(refused, refused.contains("refused a connection from 127.0.0.1:"));
            int headExit = head.awaitExit(120);
            pids.putAll(enginePids(head));
            String headLog = Files.readString(head.log);
            assertEquals(headLog, 1, headExit);
            // Rank 0 connected but cannot be READY: the coordinator waits for every rank's subscription.
            assertTrue(headLog, headLog.contains("dpserve: data-parallel startup failed: DP engines did not join within 25 s on tcp://127.0.0.1:"
                    + rpc + ": rank 0 (connected, not ready: loading its model or waiting for the coordinator), rank 1 (never connected)"));
            assertTrue("the timeout error repeats the refusal:\n" + headLog, headLog.contains("; refused peers: refused a connection from"));
            assertFalse(headLog, headLog.contains("dpserve: serving"));
        } finally {
            stopIfAlive(head);
            stopIfAlive(node);
        }
        assertEquals("one engine per launcher: " + pids, List.of(0, 1), List.copyOf(pids.keySet()));
        assertGone(pids);
    }

    @Test
    public void ranksThatNeverJoinFailTheHeadAndAHeadThatNeverAppearsFailsTheNode() throws Exception {
        int rpc = TestSupport.freePort();
        int nobody = TestSupport.freePort();
        ServerProcess head = ServerProcess.startNoWait(model(), "dpfail-missing-ranks-head.log",
                concat(List.of("--served-model-name", "llama-tiny"), dp(4, 2, rpc, 20, null)));
        ServerProcess node = ServerProcess.startHeadless(model(), "dpfail-no-head-node.log", headless(2, 1, 1, nobody, 15, null));
        Map<Integer, Long> headPids = new java.util.TreeMap<>();
        Map<Integer, Long> nodePids = new java.util.TreeMap<>();
        try {
            int headExit = head.awaitExit(150);
            headPids.putAll(enginePids(head));
            String headLog = Files.readString(head.log);
            assertEquals(headLog, 1, headExit);
            assertTrue(headLog, headLog.contains("dpserve: data-parallel startup failed: DP engines did not join within 20 s on tcp://127.0.0.1:"
                    + rpc + ": rank 0 (connected, not ready: loading its model or waiting for the coordinator), rank 1 (connected, not ready:"
                    + " loading its model or waiting for the coordinator), rank 2 (never connected), rank 3 (never connected)."));
            assertEquals("the head started ranks 0 and 1: " + headPids, List.of(0, 1), List.copyOf(headPids.keySet()));

            int nodeExit = node.awaitExit(150);
            nodePids.putAll(enginePids(node));
            String nodeLog = Files.readString(node.log);
            assertEquals(nodeLog, 1, nodeExit);
            assertTrue(nodeLog, nodeLog.contains("dpserve: headless node: engine dp1 (pid " + nodePids.get(1)
                    + ") could not join the head at 127.0.0.1:" + nobody + ": no reply from the head at tcp://127.0.0.1:" + nobody
                    + " within 15 s"));
            assertTrue(nodeLog, nodeLog.contains("(no TCP connection could be made)"));
        } finally {
            stopIfAlive(head);
            stopIfAlive(node);
        }
        assertGone(headPids);
        assertGone(nodePids);
    }

    @Test
    public void malformedFramesOnEveryBoundSocketHarmNoProcess() throws Exception {
        int rpc = TestSupport.freePort();
        Path runFile = TestSupport.work().resolve("malformed-head-run.json");
        Files.deleteIfExists(runFile);
        List<String> args = dp(2, 2, rpc, 240, null);
        args.addAll(List.of("--run-file", runFile.toString()));
        ServerProcess head = ServerProcess.start(model(), "llama-tiny", "dpfail-malformed-head.log", args.toArray(String[]::new));
        Map<Integer, Long> pids;
        try {
            JsonNode run = TestSupport.awaitRunFile(runFile, 10);
            assertEquals("head", run.path("role").asText());
            assertEquals(head.process.pid(), run.path("pid").asLong());
            assertFalse(run.path("curve").asBoolean());
            pids = enginePids(head);
            assertEquals(2, run.path("engines").size());
            for (JsonNode e : run.path("engines")) assertEquals(pids.get(e.path("rank").asInt()).longValue(), e.path("pid").asLong());
            List<String> names = new ArrayList<>();
            for (JsonNode b : run.path("bound")) names.add(b.path("name").asText());
            assertTrue("the head's bound sockets: " + run.path("bound"), names.containsAll(List.of("handshake", "requests", "outputs",
                    "engineControl", "engineOutput", "frontEnds")));

            for (JsonNode b : run.path("bound")) {
                String endpoint = b.path("endpoint").asText();
                assertTrue(endpoint, endpoint.startsWith("tcp://127.0.0.1:"));
                if (b.path("name").asText().equals("handshake")) assertEquals("tcp://127.0.0.1:" + rpc, endpoint);
                rawTcpGarbage(endpoint);
                zmqGarbage(endpoint, b.path("type").asText());
            }
            Thread.sleep(2000);

            assertTrue("the launcher survived", head.process.isAlive());
            for (Map.Entry<Integer, Long> e : pids.entrySet()) {
                assertTrue("engine dp" + e.getKey() + " survived", ProcessHandle.of(e.getValue()).map(ProcessHandle::isAlive).orElse(false));
            }
            long coordinator = run.path("coordinator").path("pid").asLong();
            assertTrue("the run file names the coordinator: " + run, coordinator > 0);
            assertTrue("the coordinator survived", ProcessHandle.of(coordinator).map(ProcessHandle::isAlive).orElse(false));
            assertEquals(200, head.get("/health").statusCode());
            DpChecks.greedyRequestsMatchGolden(head, 4);
            String log = Files.readString(head.log);
            assertTrue("junk on the rpc socket is logged:\n" + log, log.contains("dropped a handshake frame from identity rank"));
            assertTrue("a late HELLO is answered:\n" + log, log.contains("the DP group is already complete; DP rank 7 cannot join"));
            assertTrue("junk on the request socket is logged:\n" + log, log.contains("dropped an unexpected message on the request socket"));
            assertTrue("junk on the output socket is logged:\n" + log, log.contains("dropped a frame on the output socket"));
        } finally {
            head.close();
        }
        assertGone(pids);
        assertFalse("the run file goes with its launcher", Files.exists(runFile));
    }

    private static void stopIfAlive(ServerProcess p) throws Exception {
        if (p.process.isAlive()) {
            p.process.toHandle().destroy(); // SIGTERM to exactly this PID
            if (!p.process.waitFor(60, TimeUnit.SECONDS)) p.process.destroyForcibly();
        }
    }

    private static String[] concat(List<String> a, List<String> b) {
        List<String> out = new ArrayList<>(a);
        out.addAll(b);
        return out.toArray(String[]::new);
    }

    /** Bytes that are not ZMTP at all: random junk, a greeting with a bad signature, a megabyte of noise. */
    private static void rawTcpGarbage(String endpoint) throws Exception {
        String hostPort = endpoint.substring("tcp://".length());
        int colon = hostPort.lastIndexOf(':');
        InetSocketAddress addr = new InetSocketAddress(hostPort.substring(0, colon), Integer.parseInt(hostPort.substring(colon + 1)));
        Random random = new Random(5);
        for (int size : new int[] {64, 1 << 20}) {
            try (Socket s = new Socket()) {
                s.connect(addr, 5000);
                OutputStream out = s.getOutputStream();
                byte[] junk = new byte[size];
                random.nextBytes(junk);
                out.write(junk);
                out.flush();
            } catch (java.io.IOException dropped) {
                // the peer closing on us mid-write is a fine answer to junk
            }
        }
        try (Socket s = new Socket()) {
            s.connect(addr, 5000);
            byte[] greeting = new byte[64];
            greeting[0] = (byte) 0xff;
            greeting[9] = 0x7f;
            greeting[10] = 99; // ZMTP major version 99
            s.getOutputStream().write(greeting);
            s.getOutputStream().flush();
        } catch (java.io.IOException dropped) {
            // closed by the peer: fine
        }
    }

    /** ZeroMQ-level junk from a peer of the right socket type: bad tags, wrong fields, odd framing, an oversized frame. */
    private static void zmqGarbage(String endpoint, String boundType) throws Exception {
        SocketType peer = switch (boundType) {
            case "ROUTER" -> SocketType.DEALER;
            case "PULL" -> SocketType.PUSH;
            case "XPUB" -> SocketType.XSUB;
            case "PUB" -> SocketType.SUB;
            default -> null;
        };
        if (peer == null) return; // raw TCP junk is all we can send to an unknown type
        try (ZContext ctx = new ZContext()) {
            ctx.setLinger(2000);
            List<byte[]> frames = new ArrayList<>();
            byte[] random = new byte[200];
            new Random(7).nextBytes(random);
            frames.add(random);
            frames.add(new byte[0]);
            frames.add(new byte[] {(byte) 0xee, 1, 2, 3});                                        // unknown tag
            frames.add(tagged(0x10, cborMap("x", 1)));                                           // HELLO with a wrong field
            frames.add(tagged(0x10, cborMap("protocolVersion", "two", "dpRank", "seven", "local", 1, "headless", 0))); // wrong types
            frames.add(tagged(0x13, new byte[] {(byte) 0xbf, 0x61}));                            // READY, truncated CBOR
            frames.add(tagged(0x20, cborMap("requestId", 5)));                                   // ADD with wrong fields
            frames.add(tagged(0x30, cborMap("engineRank", -1, "outputs", "none")));              // OUTPUTS with wrong fields
            frames.add(tagged(0x31, cborMap("engineRank", "x")));                                // ENGINE_DEAD with wrong fields
            ZMQ.Socket s = ctx.createSocket(peer);
            if (peer == SocketType.DEALER) s.setIdentity(new byte[] {7, 0}); // rank 7: never part of this 2-rank deployment
            s.setSendTimeOut(2000);
            s.connect(endpoint);
            if (peer == SocketType.SUB) s.subscribe(new byte[0]);
            for (byte[] f : frames) s.send(f, 0);
            s.sendMore(new byte[] {1});
            s.sendMore(new byte[] {2});
            s.send(new byte[] {3}, 0);                                                            // three frames
            if (peer == SocketType.DEALER) {
                // A well-formed HELLO of a rank that is not in the deployment: answered with a rejection.
                s.send(tagged(0x10, cborMap("protocolVersion", 2, "dpRank", 7, "local", false, "headless", true)), 0);
            }
            Thread.sleep(300);
            // Oversized last, on its own socket: ZeroMQ drops a connection that exceeds the receiver's limit.
            ZMQ.Socket big = ctx.createSocket(peer);
            big.setSendTimeOut(2000);
            big.connect(endpoint);
            big.send(new byte[(64 << 20) + 1], 0); // above every frame limit of the protocol (64 MiB outputs)
            Thread.sleep(300);
        }
    }

    private static byte[] tagged(int tag, byte[] body) {
        byte[] out = new byte[body.length + 1];
        out[0] = (byte) tag;
        System.arraycopy(body, 0, out, 1, body.length);
        return out;
    }

    /** A CBOR map of text keys to small ints, booleans or short strings (enough for hand-made protocol frames). */
    private static byte[] cborMap(Object... keyValues) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(0xa0 | keyValues.length / 2);
        for (Object o : keyValues) {
            switch (o) {
                case String t -> {
                    byte[] b = t.getBytes(StandardCharsets.UTF_8);
                    out.write(0x60 | b.length); // short strings only (< 24 bytes)
                    out.writeBytes(b);
                }
                case Boolean b -> out.write(b ? 0xf5 : 0xf4);
                case Integer i when i >= 0 && i < 24 -> out.write(i);
                case Integer i when i < 0 && i >= -24 -> out.write(0x20 | (-1 - i));
                default -> throw new IllegalArgumentException("unsupported in this tiny CBOR writer: " + o);
            }
        }
        return out.toByteArray();
    }
}
