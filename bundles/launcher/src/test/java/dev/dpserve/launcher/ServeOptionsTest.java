// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.launcher;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class ServeOptionsTest {

    /** The seed's node0 command, as written (model path and address filled in). */
    static final List<String> SEED_NODE0 = List.of("/root/.cache/ds_v3", "--host", "0.0.0.0", "--port", "8004",
            "--data-parallel-size", "4", "--data-parallel-size-local", "2", "--data-parallel-address", "127.0.0.1",
            "--data-parallel-rpc-port", "13389", "--tensor-parallel-size", "4", "--seed", "1024",
            "--served-model-name", "deepseek_v3", "--enable-expert-parallel", "--max-num-seqs", "16",
            "--max-model-len", "32768", "--quantization", "ascend", "--max-num-batched-tokens", "4096",
            "--trust-remote-code", "--no-enable-prefix-caching", "--gpu-memory-utilization", "0.9",
            "--additional-config", "{\"ascend_scheduler_config\":{\"enabled\":true},\"torchair_graph_config\":{\"enabled\":true}}");

    @Test
    void supportedFlagsParse() throws Exception {
        ServeOptions o = ServeOptions.parse(List.of("/m", "--host", "127.0.0.1", "--port=9000", "--served-model-name", "x",
                "--max-model-len", "128", "--seed", "5", "--max-num-seqs", "3", "--max_num_batched_tokens", "64",
                "--dtype", "half", "--trust-remote-code", "--no-enable-prefix-caching",
                "--additional-config", "{\"torchair_graph_config\":{\"enabled\":true}}"));
        assertEquals("/m", o.model);
        assertEquals("127.0.0.1", o.host);
        assertEquals(9000, o.port);
        assertEquals("x", o.servedModelName);
        assertEquals(128, o.maxModelLen);
        assertEquals(5, o.seed);
        assertEquals(3, o.maxNumSeqs);
        assertEquals(64, o.maxNumBatchedTokens);
        assertEquals("float16", o.dtype);
        assertTrue(o.trustRemoteCode);
        assertEquals(1, o.notices.size(), o.notices.toString());
        assertTrue(o.notices.get(0).contains("torchair_graph_config"));
        assertEquals(false, o.enablePrefixCaching);
    }

    @Test
    void quantizationW8a8OrNone() throws Exception {
        assertEquals("none", ServeOptions.parse(List.of()).quantization);
        assertEquals("w8a8", ServeOptions.parse(List.of("--quantization", "w8a8")).quantization);
        String bad = assertThrows(ServeOptions.UsageException.class, () -> ServeOptions.parse(List.of("--quantization", "awq"))).getMessage();
        assertTrue(bad.contains("invalid choice 'awq'") && bad.contains("none, w8a8"), bad);
        String ascend = assertThrows(ServeOptions.UsageException.class, () -> ServeOptions.parse(List.of("--quantization", "ascend"))).getMessage();
        assertTrue(ascend.startsWith("--quantization ascend: not supported yet"), ascend);
    }

    @Test
    void kernelBackendAndSeparateEngineProcess() throws Exception {
        ServeOptions o = ServeOptions.parse(List.of("/m", "--kernel-backend", "vector", "--separate-engine-process"));
        assertEquals("vector", o.kernelBackend);
        assertTrue(o.separateEngineProcess);
        ServeOptions d = ServeOptions.parse(List.of("/m"));
        assertEquals(null, d.kernelBackend);
        assertFalse(d.separateEngineProcess);
    }

    @Test
    void kvAndSchedulerFlags() throws Exception {
        ServeOptions o = ServeOptions.parse(List.of("--block-size", "32", "--gpu-memory-utilization", "0.5", "--kv-cache-memory", "2GiB",
                "--device-memory", "16GB", "--long-prefill-token-threshold", "256",
                "--additional-config", "{\"ascend_scheduler_config\":{\"enabled\":true,\"max_long_partial_prefills\":2}}"));
        assertEquals(32, o.blockSize);
        assertEquals(0.5, o.gpuMemoryUtilization);
        assertEquals(2L << 30, o.kvCacheMemory);
        assertEquals(16_000_000_000L, o.deviceMemory);
        assertEquals(256, o.longPrefillTokenThreshold);
        assertEquals("ascend", o.scheduler);
        assertEquals(2, o.ascendSchedulerConfig.get("max.long.partial.prefills"));
        ServeOptions chunked = ServeOptions.parse(List.of("--additional-config",
                "{\"ascend_scheduler_config\":{\"enabled\":true,\"enable_chunked_prefill\":true}}"));
        assertEquals("", chunked.scheduler);
        assertEquals("", ServeOptions.parse(List.of("--additional-config", "{\"ascend_scheduler_config\":{\"enabled\":false}}")).scheduler);
        assertTrue(message("--gpu-memory-utilization", "1.5").contains("(0, 1]"));
        assertTrue(message("--kv-cache-memory", "lots").contains("invalid size"));
    }

    @Test
    void defaultsAreVllms() throws Exception {
        ServeOptions o = ServeOptions.parse(List.of());
        assertEquals(null, o.model);
        assertEquals(8000, o.port);
        assertEquals("0.0.0.0", o.host);
        assertEquals("auto", o.dtype);
    }

    @Test
    void everySeedFlagIsKnownAndUnbuiltOnesSayNotSupportedYet() {
        // Each seed flag alone (on a DP = 4 head, so the local size makes sense): accepted or refused
        // with "not supported yet" naming it.
        List<String> refused = new ArrayList<>();
        for (int i = 1; i < SEED_NODE0.size(); i++) {
            String flag = SEED_NODE0.get(i);
            if (!flag.startsWith("--")) continue;
            boolean hasValue = i + 1 < SEED_NODE0.size() && !SEED_NODE0.get(i + 1).startsWith("--");
            List<String> args = new ArrayList<>(List.of("--data-parallel-size", "4"));
            args.addAll(hasValue ? List.of(flag, SEED_NODE0.get(i + 1)) : List.of(flag));
            try {
                ServeOptions.parse(args);
            } catch (ServeOptions.UsageException e) {
                assertTrue(e.getMessage().startsWith(flag) && e.getMessage().contains("not supported yet"), e.getMessage());
                refused.add(flag);
            }
        }
        assertEquals(List.of("--tensor-parallel-size", "--enable-expert-parallel", "--quantization"), refused);
        ServeOptions.UsageException whole = assertThrows(ServeOptions.UsageException.class, () -> ServeOptions.parse(SEED_NODE0));
        assertTrue(whole.getMessage().contains("not supported yet"), whole.getMessage());
    }

    @Test
    void dataParallelFlagsWithVllmDefaults() throws Exception {
        ServeOptions one = ServeOptions.parse(List.of());
        assertEquals(1, one.dataParallelSize);
        assertEquals(1, one.dataParallelSizeLocal);
        assertEquals("127.0.0.1", one.dataParallelAddress);
        assertEquals(29550, one.dataParallelRpcPort);
        assertEquals(600, one.dataParallelStartupTimeout);
        ServeOptions two = ServeOptions.parse(List.of("/m", "--data-parallel-size", "2", "--data-parallel-rpc-port", "13389",
                "--data-parallel-startup-timeout", "30"));
        assertEquals(2, two.dataParallelSize);
        assertEquals(2, two.dataParallelSizeLocal, "local defaults to the size");
        assertEquals(13389, two.dataParallelRpcPort);
        assertEquals(30, two.dataParallelStartupTimeout);
        assertEquals("serve", two.role);
        ServeOptions head = ServeOptions.parse(List.of("/m", "--data-parallel-size", "4", "--data-parallel-size-local", "2"));
        assertEquals(2, head.dataParallelSizeLocal);
        assertEquals(0, head.dataParallelStartRank);
        assertEquals(false, head.headless);
        assertTrue(message("--data-parallel-size", "2", "--data-parallel-address", "10.255.255.1")
                .contains("10.255.255.1 is not a loopback address: data parallelism beyond loopback requires --cluster-key-file"));
        assertTrue(message("--headless", "--data-parallel-size", "4", "--data-parallel-size-local", "2", "--data-parallel-start-rank", "2",
                "--data-parallel-address", "10.255.255.1").contains("requires --cluster-key-file"));
        ServeOptions engine = ServeOptions.parse(List.of("/m", "--data-parallel-size", "2", "--role", "engine", "--engine-rank", "1",
                "--parent-pid", "42"));
        assertEquals("engine", engine.role);
        assertEquals(1, engine.engineRank);
        assertEquals(42, engine.parentPid);
        assertTrue(message("--role", "engine").contains("--engine-rank"));
        assertTrue(!new ServeOptions().help().contains("--role"), "internal flags stay out of --help");
        ServeOptions coordinator = ServeOptions.parse(List.of("/m", "--data-parallel-size", "2", "--role", "coordinator",
                "--coordinator-ports", "4001,4002, 4003", "--parent-pid", "42"));
        assertEquals("coordinator", coordinator.role);
        assertArrayEquals(new int[] {4001, 4002, 4003}, coordinator.coordinatorPorts);
        assertTrue(message("--role", "coordinator", "--coordinator-ports", "1,2").contains("three comma-separated ports"));
        assertTrue(!new ServeOptions().help().contains("--coordinator-ports"), "internal flags stay out of --help");
    }

    @Test
    void seedNode1FlagsMakeAHeadlessNode() throws Exception {
        ServeOptions node1 = ServeOptions.parse(List.of("/m", "--headless", "--data-parallel-size", "4", "--data-parallel-size-local", "2",
                "--data-parallel-start-rank", "2", "--data-parallel-address", "127.0.0.1", "--data-parallel-rpc-port", "13389"));
        assertTrue(node1.headless);
        assertEquals(4, node1.dataParallelSize);
        assertEquals(2, node1.dataParallelSizeLocal);
        assertEquals(2, node1.dataParallelStartRank);
        ServeOptions engine = ServeOptions.parse(List.of("/m", "--headless", "--data-parallel-size", "4", "--data-parallel-size-local", "2",
                "--data-parallel-start-rank", "2", "--role", "engine", "--engine-rank", "3"));
        assertEquals(3, engine.engineRank);
        // vLLM's rules: the start rank needs the local size; a headless node needs engines.
        assertEquals("--data-parallel-start-rank requires --data-parallel-size-local",
                message("--headless", "--data-parallel-size", "4", "--data-parallel-start-rank", "2"));
        assertTrue(message("--data-parallel-start-rank", "2").contains("requires --data-parallel-size-local"));
        assertTrue(message("--headless", "--data-parallel-size", "4", "--data-parallel-size-local", "0").startsWith("--headless requires"));
        assertTrue(message("--headless").startsWith("--headless needs --data-parallel-size > 1"));
        assertTrue(message("--headless", "--data-parallel-size", "4", "--data-parallel-size-local", "2", "--data-parallel-start-rank", "3")
                .contains("exceeds --data-parallel-size 4"));
        assertTrue(message("--data-parallel-size", "2", "--data-parallel-size-local", "3").contains("exceeds"));
        assertTrue(message("--data-parallel-size", "4", "--data-parallel-size-local", "2", "--data-parallel-start-rank", "2")
                .contains("not supported yet"), "a non-headless node other than the head");
        assertTrue(message("--headless", "--data-parallel-size", "4", "--data-parallel-size-local", "2", "--data-parallel-start-rank", "2",
                "--role", "engine", "--engine-rank", "1").contains("not a rank of this node"));
    }

    @Test
    void beyondLoopbackNeedsAClusterKeyAndANodeHasItsOwnAddress() throws Exception {
        ServeOptions head = ServeOptions.parse(List.of("/m", "--data-parallel-size", "2", "--data-parallel-address", "10.255.255.1",
                "--cluster-key-file", "/k"));
        assertEquals("/k", head.clusterKeyFile);
        // Loopback runs without a key; with one, the key is kept (CURVE on loopback too).
        assertEquals(null, ServeOptions.parse(List.of("--data-parallel-size", "2")).clusterKeyFile);
        assertEquals("/k", ServeOptions.parse(List.of("--data-parallel-size", "2", "--cluster-key-file", "/k")).clusterKeyFile);
        ServeOptions node = ServeOptions.parse(List.of("--headless", "--data-parallel-size", "4", "--data-parallel-size-local", "2",
                "--data-parallel-start-rank", "2", "--data-parallel-address", "127.0.0.1", "--data-parallel-node-address", "127.0.0.2"));
        assertEquals("127.0.0.2", node.dataParallelNodeAddress);
        assertTrue(message("--headless", "--data-parallel-size", "4", "--data-parallel-size-local", "2", "--data-parallel-start-rank", "2",
                "--data-parallel-node-address", "10.255.255.2").contains("--data-parallel-node-address 10.255.255.2 is not a loopback"
                + " address: data parallelism beyond loopback requires --cluster-key-file"));
        assertTrue(message("--data-parallel-size", "2", "--data-parallel-node-address", "127.0.0.2")
                .contains("on the head must equal --data-parallel-address"));
        ServeOptions single = ServeOptions.parse(List.of("--cluster-key-file", "/k"));
        assertTrue(single.notices.getFirst().contains("no effect with --data-parallel-size 1"), single.notices.toString());
        assertEquals("/tmp/run.json", ServeOptions.parse(List.of("--run-file", "/tmp/run.json")).runFile);
        assertTrue(!new ServeOptions().help().contains("--run-dir"), "internal flags stay out of --help");
    }

    @Test
    void theNodeAddressIsTheHeadsOnTheHeadAndDerivedOrGivenOnAHeadlessNode() throws Exception {
        assertEquals("127.0.0.1", Main.nodeAddress(ServeOptions.parse(List.of("--data-parallel-size", "2"))));
        List<String> node = List.of("--headless", "--data-parallel-size", "2", "--data-parallel-size-local", "1",
                "--data-parallel-start-rank", "1", "--data-parallel-address", "127.0.0.1");
        assertEquals("127.0.0.1", Main.nodeAddress(ServeOptions.parse(node)), "the route to a loopback head is loopback");
        List<String> second = new java.util.ArrayList<>(node);
        second.addAll(List.of("--data-parallel-node-address", "127.0.0.2"));
        assertEquals("127.0.0.2", Main.nodeAddress(ServeOptions.parse(second)), "all of 127/8 is this machine");
        List<String> foreign = new java.util.ArrayList<>(node);
        foreign.addAll(List.of("--data-parallel-node-address", "192.0.2.1", "--cluster-key-file", "/k")); // TEST-NET-1
        String m = assertThrows(ServeOptions.UsageException.class, () -> Main.nodeAddress(ServeOptions.parse(foreign))).getMessage();
        assertTrue(m.contains("192.0.2.1 is not an address of this machine"), m);
    }

    @Test
    void runDirCollectsEveryBoundEndpointFromTheStateFiles(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
        RunDir run = RunDir.of(dir);
        java.nio.file.Files.writeString(dir.resolve("frontend.json"), "{\"state\":\"ready\",\"pid\":10,"
                + "\"endpoints\":{\"handshake\":\"tcp://127.0.0.1:5\",\"outputs\":\"tcp://127.0.0.1:6\"},"
                + "\"socketTypes\":{\"handshake\":\"ROUTER\",\"outputs\":\"PULL\"}}");
        java.nio.file.Files.writeString(dir.resolve("engine-1.json"), "{\"state\":\"failed\",\"pid\":11,\"error\":\"refused\"}");
        assertEquals("ready", run.state("frontend"));
        assertEquals("failed", run.state("engine-1"));
        assertEquals("refused", run.error("engine-1"));
        assertEquals(null, run.state("engine-2"));
        var bound = run.boundEndpoints();
        assertEquals(2, bound.size());
        assertEquals("frontend", bound.get(0).path("process").asText());
        assertEquals(10, bound.get(0).path("pid").asLong());
        assertEquals("ROUTER", bound.get(0).path("type").asText());
        assertEquals("tcp://127.0.0.1:5", bound.get(0).path("endpoint").asText());
        assertEquals("PULL", bound.get(1).path("type").asText());
        run.delete();
        assertTrue(!java.nio.file.Files.exists(dir));
    }

    @Test
    void aMissingOrMalformedClusterKeyFileFailsAtStartup(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        PrintStream ps = new PrintStream(out, true, StandardCharsets.UTF_8);
        java.nio.file.Path missing = dir.resolve("missing.key");
        String m = assertThrows(ServeOptions.UsageException.class, () -> Main.run(List.of("serve", "--data-parallel-size", "2",
                "--cluster-key-file", missing.toString()), ps, ps)).getMessage();
        assertTrue(m.startsWith("argument --cluster-key-file: ") && m.contains("does not exist"), m);
        java.nio.file.Path bad = dir.resolve("bad.key");
        java.nio.file.Files.writeString(bad, "public-key = short\nsecret-key = short\n");
        java.nio.file.Files.setPosixFilePermissions(bad, java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"));
        m = assertThrows(ServeOptions.UsageException.class, () -> Main.run(List.of("serve", "--data-parallel-size", "2",
                "--cluster-key-file", bad.toString()), ps, ps)).getMessage();
        assertTrue(m.startsWith("argument --cluster-key-file: ") && m.contains("40 Z85 characters"), m);
    }

    @Test
    void badInputIsAClearError() {
        assertTrue(message("--max-model-length", "5").contains("did you mean --max-model-len?"));
        assertTrue(message("--port", "x").contains("invalid int value"));
        assertTrue(message("--port", "70000").contains("out of range"));
        assertTrue(message("--dtype", "int4").contains("invalid choice"));
        assertTrue(message("--additional-config", "{not json").contains("not valid JSON"));
        assertTrue(message("--port").contains("expected one value"));
        assertTrue(message("a", "b").contains("only one MODEL_DIR"));
        assertTrue(message("--trust-remote-code=yes").contains("takes no value"));
    }

    private static String message(String... args) {
        return assertThrows(ServeOptions.UsageException.class, () -> ServeOptions.parse(List.of(args))).getMessage();
    }

    @Test
    void cliExitCodes() throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        PrintStream ps = new PrintStream(out, true, StandardCharsets.UTF_8);
        assertEquals(0, Main.run(List.of("version"), ps, ps));
        assertTrue(out.toString(StandardCharsets.UTF_8).contains("dpserve 0.1.0"));
        assertEquals(0, Main.run(List.of("serve", "--help"), ps, ps));
        assertTrue(out.toString(StandardCharsets.UTF_8).contains("--max-model-len"));
        assertEquals(2, Main.run(List.of("make-model", "--arch", "llama"), ps, ps), "missing --out");
        assertThrows(ServeOptions.UsageException.class, () -> Main.run(List.of("frobnicate"), ps, ps));
        assertThrows(ServeOptions.UsageException.class, () -> Main.run(List.of("serve", "/nonexistent/model"), ps, ps));
    }

    @Test
    void keygenWritesAKeyOnceWithOwnerOnlyPermissions(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
        java.nio.file.Path key = dir.resolve("cluster.key");
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        PrintStream ps = new PrintStream(out, true, StandardCharsets.UTF_8);
        assertEquals(0, Main.run(List.of("keygen", "--out", key.toString()), ps, ps));
        assertTrue(out.toString(StandardCharsets.UTF_8).contains("public key"));
        assertEquals("rw-------", java.nio.file.attribute.PosixFilePermissions.toString(java.nio.file.Files.getPosixFilePermissions(key)));
        assertEquals(dev.dpserve.transport.ClusterKeys.load(key).publicKeyZ85().length(), 40);
        assertTrue(assertThrows(ServeOptions.UsageException.class,
                () -> Main.run(List.of("keygen", "--out", key.toString()), ps, ps)).getMessage().contains("never replaces"));
        assertThrows(ServeOptions.UsageException.class, () -> Main.run(List.of("keygen"), ps, ps));
    }
}
