// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.launcher.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class BenchServeOptionsTest {

    /** The seed's benchmark command, as written (node0 address filled in). */
    static final List<String> SEED_BENCH = List.of("--model", "/root/.cache/ds_v3", "--served-model-name", "deepseek_v3",
            "--dataset-name", "random", "--random-input-len", "128", "--random-output-len", "128",
            "--num-prompts", "200", "--trust-remote-code", "--base-url", "http://10.0.0.1:8004", "--request-rate", "1");

    @Test
    void defaultsAreVllms() throws Exception {
        BenchServeOptions o = BenchServeOptions.parse(List.of());
        assertEquals("http://127.0.0.1:8000", o.baseUrl());
        assertEquals("/v1/completions", o.endpoint);
        assertEquals("completions", o.requestKind());
        assertEquals("vllm", o.endpointType());
        assertEquals("random", o.datasetName);
        assertEquals(1000, o.numPrompts);
        assertEquals(1024, o.randomInputLen);
        assertEquals(128, o.randomOutputLen);
        assertEquals(0.0, o.randomRangeRatio);
        assertEquals(0, o.randomPrefixLen);
        assertEquals(0, o.seed);
        assertTrue(Double.isInfinite(o.requestRate));
        assertEquals(1.0, o.burstiness);
        assertNull(o.maxConcurrency);
        assertFalse(o.ignoreEos);
        assertEquals(List.of("ttft", "tpot", "itl"), o.percentileMetrics);
        assertEquals(List.of(99.0), o.metricPercentiles);
        assertTrue(o.goodput.isEmpty());
        assertFalse(o.saveResult);
        assertNull(o.model);
        assertNull(o.tokenizer);
    }

    @Test
    void seedCommandParses() throws Exception {
        BenchServeOptions o = BenchServeOptions.parse(SEED_BENCH);
        assertEquals("/root/.cache/ds_v3", o.model);
        assertEquals("deepseek_v3", o.servedModelName);
        assertEquals(128, o.randomInputLen);
        assertEquals(200, o.numPrompts);
        assertTrue(o.trustRemoteCode);
        assertEquals("http://10.0.0.1:8004", o.baseUrl());
        assertEquals(1.0, o.requestRate);
    }

    @Test
    void everyFlagParses() throws Exception {
        BenchServeOptions o = BenchServeOptions.parse(List.of("--host", "10.1.2.3", "--port=9000", "--endpoint", "v1/chat/completions",
                "--backend", "openai-chat", "--tokenizer", "/tok", "--random-range-ratio", "0.25", "--random_prefix_len", "7",
                "--seed", "-3", "--request-rate", "inf", "--burstiness", "0.5", "--max-concurrency", "4", "--ignore-eos",
                "--percentile-metrics", "ttft,e2el", "--metric-percentiles", "50,90,99.9", "--goodput", "ttft:500", "tpot:50",
                "e2el:2000", "--save-result", "--save-detailed", "--result-dir", "/r", "--result-filename", "x.json",
                "--label", "L", "--metadata", "a=1", "b=two", "--disable-tqdm", "--ready-check-timeout-sec", "5"));
        assertEquals("http://10.1.2.3:9000", o.baseUrl());
        assertEquals("/v1/chat/completions", o.endpoint);
        assertEquals("chat", o.requestKind());
        assertEquals("openai-chat", o.endpointType());
        assertEquals(0.25, o.randomRangeRatio);
        assertEquals(7, o.randomPrefixLen);
        assertEquals(-3, o.seed);
        assertEquals(0.5, o.burstiness);
        assertEquals(4, o.maxConcurrency);
        assertTrue(o.ignoreEos);
        assertEquals(List.of("ttft", "e2el"), o.percentileMetrics);
        assertEquals(List.of(50.0, 90.0, 99.9), o.metricPercentiles);
        assertEquals(Map.of("ttft", 500.0, "tpot", 50.0, "e2el", 2000.0), o.goodput);
        assertTrue(o.saveResult && o.saveDetailed && o.disableTqdm);
        assertEquals(Map.of("a", "1", "b", "two"), o.metadata);
        assertEquals(5, o.readyCheckTimeoutSec);
    }

    @Test
    void baseUrlWinsAndLosesTrailingSlash() throws Exception {
        assertEquals("http://h:1", BenchServeOptions.parse(List.of("--base-url", "http://h:1/", "--port", "5")).baseUrl());
        assertEquals("/v1/chat/completions", BenchServeOptions.parse(List.of("--endpoint", "/v1/chat/completions")).endpoint);
    }

    @Test
    void errorsAreUsageErrors() {
        assertMessage("unrecognized argument: --num-promts (did you mean --num-prompts?)", "--num-promts", "5");
        assertMessage("see dpserve bench serve --help", "--zzzzzzzzzzzzz");
        assertMessage("only 'random'", "--dataset-name", "sharegpt");
        assertMessage("must be in [0, 1)", "--random-range-ratio", "1.0");
        assertMessage("must be in [0, 1)", "--random-range-ratio", "-0.1");
        assertMessage("must be > 0 or inf", "--request-rate", "0");
        assertMessage("invalid float value", "--request-rate", "fast");
        assertMessage("positive", "--burstiness", "0");
        assertMessage("out of range", "--max-concurrency", "0");
        assertMessage("out of range", "--num-prompts", "0");
        assertMessage("invalid int value", "--num-prompts", "ten");
        assertMessage("expected one value", "--model");
        assertMessage("expected at least one value", "--goodput", "--ignore-eos");
        assertMessage("expected KEY:VALUE", "--goodput", "ttft");
        assertMessage("invalid metric 'itl'", "--goodput", "itl:5");
        assertMessage("unknown metric 'foo'", "--percentile-metrics", "ttft,foo");
        assertMessage("not in [0, 100]", "--metric-percentiles", "101");
        assertMessage("takes no value", "--ignore-eos=1");
        assertMessage("is not supported", "--endpoint", "/v1/embeddings");
        assertMessage("does not match", "--backend", "openai-chat");
        assertMessage("not supported", "--backend", "tgi");
        assertMessage("unexpected argument 'x'", "x");
        assertMessage("need --ramp-up-strategy", "--ramp-up-start-rps", "1");
        assertMessage("needs --ramp-up-start-rps", "--ramp-up-strategy", "linear");
    }

    @Test
    void helpSaysTheRandomDatasetIsNotNumpys() {
        String help = new BenchServeOptions().help();
        assertTrue(help.contains("SplittableRandom"), help);
        assertTrue(help.contains("--random-input-len"), help);
    }

    @Test
    void commandExitCodes() throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        PrintStream o = new PrintStream(out, true, StandardCharsets.UTF_8);
        PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8);
        assertEquals(2, BenchCommand.run(List.of("serve", "--bogus"), o, e));
        assertTrue(err.toString(StandardCharsets.UTF_8).contains("dpserve: error: unrecognized argument: --bogus"));
        assertEquals(2, BenchCommand.run(List.of("throughput"), o, e));
        assertEquals(0, BenchCommand.run(List.of("serve", "--help"), o, e));
        assertTrue(out.toString(StandardCharsets.UTF_8).contains("usage: dpserve bench serve"));
        err.reset();
        // port 1 on loopback: nothing listens there
        assertEquals(1, BenchCommand.run(List.of("serve", "--base-url", "http://127.0.0.1:1", "--num-prompts", "1"), o, e));
        assertTrue(err.toString(StandardCharsets.UTF_8).contains("cannot reach the server at http://127.0.0.1:1"), err.toString());
    }

    private static void assertMessage(String expected, String... args) {
        BenchUsageException e = assertThrows(BenchUsageException.class, () -> BenchServeOptions.parse(List.of(args)));
        assertTrue(e.getMessage().contains(expected), e.getMessage());
    }
}
