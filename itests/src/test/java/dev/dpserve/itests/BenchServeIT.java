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
 * {@code bin/dpserve serve} on a tiny generated model (one server for the class), and the seed's
 * benchmark command against the tiny DeepSeek-V3 fixture (its own server); all are stopped by PID.
 * The seed's command takes about 200 s (200 requests at 1 req/s).
 */
public class BenchServeIT {

    @Rule
    public final Timeout timeout = Timeout.seconds(330);

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
        return bench(120, logName, args);
    }

    /** As {@link #bench(String, String...)} with a limit of {@code seconds}. */
    private static Run bench(int seconds, String logName, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(TestSupport.dist().resolve("bin/dpserve").toString(), "bench", "serve"));
        cmd.addAll(List.of(args));
        Path log = TestSupport.work().resolve(logName);
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile())
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null"))).start();
        try {
            if (!p.waitFor(seconds, TimeUnit.SECONDS)) fail("bench serve did not finish in " + seconds + " s:\n" + Files.readString(log));
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

    /**
     * The seed's benchmark command, word for word: {@code vllm bench serve} becomes
     * {@code bin/dpserve bench serve} and {@code BASE} stands for the {@code "http://{ node0 ip }:8004"} template.
     */
    static final String SEED_COMMAND = "--model /root/.cache/ds_v3 --served-model-name deepseek_v3 --dataset-name random"
            + " --random-input-len 128 --random-output-len 128 --num-prompts 200 --trust-remote-code --base-url BASE --request-rate 1";

    /**
     * The seed's command against the tiny DeepSeek-V3 fixture served as {@code deepseek_v3} (its own
     * server, stopped by PID). {@code /root/.cache/ds_v3} is no directory here, so the prompts are
     * tokenized through the server. Only {@code --save-detailed --result-dir D --result-filename F}
     * are added, to get the per-request lists; they do not change what is sent. 200 requests at
     * 1 req/s with seed 0: the last one is sent at exactly 200 s.
     */
    @Test
    public void seedCommandAgainstDeepseekV3() throws Exception {
        Path dir = Files.createTempDirectory(TestSupport.work(), "bench-seed");
        try (ServerProcess ds = ServerProcess.start(TestSupport.fixture("deepseek-v3-tiny"), "deepseek_v3", "serve-bench-seed.log",
                "--max-model-len", "512")) {
            List<String> args = new ArrayList<>(List.of(SEED_COMMAND.replace("BASE", ds.base).split(" ")));
            args.addAll(List.of("--save-detailed", "--result-dir", dir.toString(), "--result-filename", "seed.json"));
            long t0 = System.nanoTime();
            Run run = bench(280, "bench-serve-seed.log", args.toArray(String[]::new));
            System.out.printf("seed command: %.1f s%n", (System.nanoTime() - t0) / 1e9);
            assertEquals(run.output(), 0, run.exit());
            String out = run.output();
            assertTrue(out, out.contains("Tokenizing through " + ds.base + "/tokenize and /detokenize (model deepseek_v3)"));
            assertTrue(out, out.contains("Sampling input_len from [127, 127] and output_len from [128, 128]")); // 128 minus the BOS
            assertTrue(out, out.contains("Traffic request rate: 1.0"));
            assertTrue(out, out.matches("(?s).*Successful requests:\\s+200\\s.*"));
            assertTrue(out, out.matches("(?s).*Failed requests:\\s+0\\s.*"));
            assertTrue(out, out.matches("(?s).*Request rate configured \\(RPS\\):\\s+1\\.00\\s.*"));
            assertTrue(out, out.contains("100%|") && out.contains("| 200/200 ["));

            JsonNode r = JSON.readTree(dir.resolve("seed.json").toFile());
            assertEquals(r.toString(), 200, r.path("completed").asInt());
            assertEquals(r.toString(), 0, r.path("failed").asInt());
            assertEquals("/root/.cache/ds_v3", r.path("model_id").asText());
            assertTrue(r.path("tokenizer_id").asText(), r.path("tokenizer_id").asText().contains("/tokenize"));
            assertEquals(1.0, r.path("request_rate").asDouble(), 0);
            assertTrue(r.path("max_concurrency").isNull());
            // The last request is sent at 200 s: the run lasts longer, so at most 1 req/s completes.
            double duration = r.path("duration").asDouble();
            assertTrue("duration " + duration, duration >= 200 && duration < 280);
            assertEquals(200 / duration, r.path("request_throughput").asDouble(), 1e-9);
            for (String metric : List.of("ttft", "tpot", "itl")) {
                double mean = r.path("mean_" + metric + "_ms").asDouble();
                double median = r.path("median_" + metric + "_ms").asDouble();
                double p99 = r.path("p99_" + metric + "_ms").asDouble();
                assertTrue(metric + ": " + r, mean > 0 && median > 0 && p99 >= median && r.path("std_" + metric + "_ms").asDouble() >= 0);
            }
            assertTrue(r.path("output_throughput").asDouble() > 0);

            // Per request: prompts of 127 tokens (re-encoding may shift a few), outputs of at most 128
            // (no --ignore-eos: a request may stop at EOS), E2EL = TTFT + the ITL gaps.
            assertEquals(200, r.path("input_lens").size());
            long inputs = 0;
            long outputs = 0;
            double[] e2el = new double[200];
            for (int i = 0; i < 200; i++) {
                int in = r.path("input_lens").get(i).asInt();
                int outLen = r.path("output_lens").get(i).asInt();
                assertTrue("input " + i + ": " + in, Math.abs(in - 127) <= 3);
                assertTrue("output " + i + ": " + outLen, outLen >= 1 && outLen <= 128);
                assertEquals("", r.path("errors").get(i).asText());
                assertTrue(r.path("itls").get(i).size() <= outLen - 1);
                inputs += in;
                outputs += outLen;
                e2el[i] = r.path("ttfts").get(i).asDouble();
                assertTrue("ttft " + i, e2el[i] > 0);
                for (JsonNode gap : r.path("itls").get(i)) e2el[i] += gap.asDouble();
            }
            assertEquals(inputs, r.path("total_input_tokens").asLong());
            assertEquals(outputs, r.path("total_output_tokens").asLong());
            java.util.Arrays.sort(e2el);
            assertTrue("E2EL " + e2el[0] + ".." + e2el[199], e2el[0] > 0 && e2el[199] < duration);
        }
    }

    /**
     * With {@code --max-concurrency 2} at most two requests are in flight, so the E2E latencies
     * (TTFT plus the ITL gaps, from the detailed result) add up to at most twice the run's
     * duration; all 12 due at once without the limit would add up to far more.
     */
    @Test
    public void maxConcurrencyBoundsTheRequestsInFlight() throws Exception {
        Path dir = Files.createTempDirectory(TestSupport.work(), "bench-concurrency");
        Run run = bench("bench-serve-concurrency.log", "--base-url", server.base, "--num-prompts", "12", "--random-input-len", "16",
                "--random-output-len", "16", "--ignore-eos", "--max-concurrency", "2", "--save-detailed", "--result-dir", dir.toString(),
                "--result-filename", "c.json", "--disable-tqdm");
        assertEquals(run.output(), 0, run.exit());
        assertTrue(run.output(), run.output().contains("Maximum request concurrency: 2"));
        JsonNode r = JSON.readTree(dir.resolve("c.json").toFile());
        assertEquals(r.toString(), 12, r.path("completed").asInt());
        assertEquals(2, r.path("max_concurrency").asInt());
        double sum = 0;
        for (int i = 0; i < 12; i++) {
            sum += r.path("ttfts").get(i).asDouble();
            for (JsonNode gap : r.path("itls").get(i)) sum += gap.asDouble();
        }
        double duration = r.path("duration").asDouble();
        assertTrue("sum of E2EL " + sum + " s vs duration " + duration + " s", sum > 0 && sum <= 2 * duration);
    }

    /** {@code --backend openai-chat --endpoint /v1/chat/completions} against the real server. */
    @Test
    public void chatCompletionsEndpoint() throws Exception {
        Path dir = Files.createTempDirectory(TestSupport.work(), "bench-chat");
        Run run = bench("bench-serve-chat.log", "--backend", "openai-chat", "--endpoint", "/v1/chat/completions", "--base-url",
                server.base, "--num-prompts", "6", "--random-input-len", "16", "--random-output-len", "8", "--ignore-eos",
                "--request-rate", "20", "--percentile-metrics", "ttft,tpot,itl,e2el", "--save-detailed", "--result-dir", dir.toString(),
                "--result-filename", "chat.json");
        assertEquals(run.output(), 0, run.exit());
        String out = run.output();
        assertTrue(out, out.matches("(?s).*Successful requests:\\s+6\\s.*"));
        assertTrue(out, out.matches("(?s).*Total generated tokens:\\s+48\\s.*"));
        assertTrue(out, out.contains("Mean E2EL (ms):"));
        JsonNode r = JSON.readTree(dir.resolve("chat.json").toFile());
        assertEquals("openai-chat", r.path("endpoint_type").asText());
        assertEquals(r.toString(), 6, r.path("completed").asInt());
        assertEquals(r.toString(), 0, r.path("failed").asInt());
        assertEquals(r.toString(), 48, r.path("total_output_tokens").asInt());
        for (int i = 0; i < 6; i++) {
            assertEquals(8, r.path("output_lens").get(i).asInt());
            assertTrue(r.toString(), r.path("input_lens").get(i).asInt() > 10); // the prompt's own tokens, not the template's
            assertTrue("generated text " + i, !r.path("generated_texts").get(i).asText().isEmpty());
        }
        for (String key : List.of("mean_ttft_ms", "mean_tpot_ms", "mean_itl_ms", "mean_e2el_ms", "request_throughput")) {
            assertTrue(key + ": " + r, r.path(key).asDouble() > 0);
        }
        assertTrue(r.toString(), r.path("p99_e2el_ms").asDouble() >= r.path("median_e2el_ms").asDouble());
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
