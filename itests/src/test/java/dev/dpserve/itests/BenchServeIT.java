// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.AfterClass;
import org.junit.BeforeClass;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.Timeout;

/**
 * Runs the built distribution's {@code bin/dpserve bench serve} as a real process against
 * {@code bin/dpserve serve} on a tiny generated model; both are stopped by PID.
 */
public class BenchServeIT {

    @Rule
    public final Timeout timeout = Timeout.seconds(300);

    private static final ObjectMapper JSON = new ObjectMapper();
    private static ServerProcess server;

    @BeforeClass
    public static void startServer() throws Exception {
        server = ServerProcess.start(TestSupport.tinyModel(), "tiny-bench", "serve-bench.log", "--max-model-len", "256", "--seed", "1");
    }

    @AfterClass
    public static void stopServer() throws Exception {
        if (server != null) server.close();
    }

    record Run(int exit, String output) {
    }

    /** Runs {@code bin/dpserve bench serve args...}; at most 120 s, then it is killed by PID and the test fails. */
    private static Run bench(String logName, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(TestSupport.dist().resolve("bin/dpserve").toString(), "bench", "serve"));
        cmd.addAll(List.of(args));
        Path log = TestSupport.work().resolve(logName);
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile())
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null"))).start();
        try {
            if (!p.waitFor(120, TimeUnit.SECONDS)) fail("bench serve did not finish in 120 s:\n" + Files.readString(log));
            return new Run(p.exitValue(), Files.readString(log));
        } finally {
            if (p.isAlive()) {
                ProcessHandle.of(p.pid()).ifPresent(ProcessHandle::destroyForcibly);
                p.waitFor(10, TimeUnit.SECONDS);
            }
        }
    }

    private static JsonNode onlyResult(Path dir) throws Exception {
        List<Path> files;
        try (Stream<Path> s = Files.list(dir)) {
            files = s.filter(f -> f.toString().endsWith(".json")).toList();
        }
        assertEquals("one result file in " + dir + ": " + files, 1, files.size());
        return JSON.readTree(files.getFirst().toFile());
    }

    @Test
    public void randomDatasetTokenizedByTheServer() throws Exception {
        Path dir = Files.createTempDirectory(TestSupport.work(), "bench-result");
        Run run = bench("bench-serve.log", "--base-url", server.base, "--num-prompts", "8", "--random-input-len", "16",
                "--random-output-len", "8", "--request-rate", "20", "--ignore-eos", "--seed", "1", "--max-concurrency", "4",
                "--save-result", "--result-dir", dir.toString());
        assertEquals(run.output(), 0, run.exit());
        String out = run.output();
        assertTrue(out, out.contains("Tokenizing through " + server.base + "/tokenize"));
        assertTrue(out, out.contains("============ Serving Benchmark Result ============"));
        assertTrue(out, out.matches("(?s).*Successful requests:\\s+8\\s.*"));
        assertTrue(out, out.matches("(?s).*Total generated tokens:\\s+64\\s.*"));
        assertTrue(out, out.contains("Mean TTFT (ms):") && out.contains("P99 TPOT (ms):") && out.contains("Median ITL (ms):"));

        JsonNode r = onlyResult(dir);
        assertEquals(r.toString(), 8, r.path("completed").asInt());
        assertEquals(r.toString(), 0, r.path("failed").asInt());
        assertEquals(r.toString(), 64, r.path("total_output_tokens").asInt());
        assertEquals("tiny-bench", r.path("model_id").asText());
        assertEquals(20.0, r.path("request_rate").asDouble(), 0);
        assertEquals(4, r.path("max_concurrency").asInt());
        // 16 requested tokens minus the BOS the server adds, per prompt (re-encoding may shift a few)
        assertTrue(r.toString(), r.path("total_input_tokens").asInt() > 8 * 10);
        for (String key : List.of("mean_ttft_ms", "median_ttft_ms", "p99_ttft_ms", "mean_tpot_ms", "median_tpot_ms", "p99_tpot_ms",
                "mean_itl_ms", "duration", "request_throughput", "output_throughput")) {
            assertTrue(key + " present and positive: " + r, r.path(key).isNumber() && r.path(key).asDouble() > 0);
        }
        assertTrue(r.path("std_ttft_ms").isNumber());
        assertTrue(r.path("max_concurrent_requests").asInt() >= 1);
    }

    @Test
    public void localTokenizerFromTheModelDirectory() throws Exception {
        Path dir = Files.createTempDirectory(TestSupport.work(), "bench-detailed");
        Run run = bench("bench-serve-local.log", "--base-url", server.base, "--model", TestSupport.tinyModel().toString(),
                "--served-model-name", "tiny-bench", "--num-prompts", "4", "--random-input-len", "12", "--random-output-len", "4",
                "--random-prefix-len", "3", "--ignore-eos", "--percentile-metrics", "ttft,e2el", "--metric-percentiles", "50,90",
                "--goodput", "e2el:60000", "--save-detailed", "--result-dir", dir.toString(), "--result-filename", "r.json",
                "--disable-tqdm");
        assertEquals(run.output(), 0, run.exit());
        assertTrue(run.output(), !run.output().contains("Tokenizing through"));
        assertTrue(run.output(), run.output().contains("P90 E2EL (ms):"));
        JsonNode r = JSON.readTree(dir.resolve("r.json").toFile());
        assertEquals(r.toString(), 4, r.path("completed").asInt());
        assertEquals(16, r.path("total_output_tokens").asInt());
        assertEquals(4, r.path("output_lens").size());
        assertEquals(4, r.path("itls").size());
        int gaps = r.path("itls").path(0).size(); // one per later chunk; a chunk may carry several tokens
        assertTrue(r.toString(), gaps >= 1 && gaps <= 3);
        assertTrue(r.toString(), r.path("request_goodput").asDouble() > 0);
        assertTrue(r.toString(), r.path("p90_e2el_ms").asDouble() > 0);
    }

    @Test
    public void exitCodes() throws Exception {
        Run usage = bench("bench-usage.log", "--base-url", server.base, "--num-promts", "3");
        assertEquals(usage.output(), 2, usage.exit());
        assertTrue(usage.output(), usage.output().contains("did you mean --num-prompts?"));
        Run unreachable = bench("bench-unreachable.log", "--base-url", "http://127.0.0.1:" + TestSupport.freePort(), "--num-prompts", "2");
        assertEquals(unreachable.output(), 1, unreachable.exit());
        assertTrue(unreachable.output(), unreachable.output().contains("cannot reach the server"));
    }
}
