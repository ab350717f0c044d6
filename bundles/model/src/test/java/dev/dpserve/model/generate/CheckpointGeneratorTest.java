// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model.generate;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.dpserve.api.model.CausalLm;
import dev.dpserve.model.Fixtures;
import dev.dpserve.model.PagedSequences;
import dev.dpserve.tensor.VectorKernelBackend;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CheckpointGeneratorTest {

    private static final String[] SMALL = {"--hidden", "64", "--layers", "2", "--heads", "4", "--kv-heads", "2",
            "--intermediate", "128", "--vocab", "512", "--max-position", "256"};

    @TempDir
    Path tmp;

    private static VectorKernelBackend kernels;

    @BeforeAll
    static void start() {
        kernels = new VectorKernelBackend(2);
    }

    @AfterAll
    static void stop() {
        kernels.close();
    }

    private Path generate(String name, String... extra) throws IOException {
        Path out = tmp.resolve(name);
        String[] args = Stream.concat(Stream.of("--out", out.toString()), Stream.concat(Stream.of(SMALL), Stream.of(extra)))
                .toArray(String[]::new);
        CheckpointGenerator.generate(CheckpointGenerator.Options.parse(args));
        return out;
    }

    @Test
    void sameSeedGivesIdenticalBytes() throws IOException {
        Path a = generate("a", "--seed", "7");
        Path b = generate("b", "--seed", "7");
        Path c = generate("c", "--seed", "8");
        for (String f : List.of("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")) {
            assertArrayEquals(Files.readAllBytes(a.resolve(f)), Files.readAllBytes(b.resolve(f)), f);
        }
        assertFalse(java.util.Arrays.equals(Files.readAllBytes(a.resolve("model.safetensors")), Files.readAllBytes(c.resolve("model.safetensors"))));
    }

    @Test
    void llamaLoadsAndGreedyTextIsNotOneRepeatedToken() throws IOException {
        for (Path dir : List.of(generate("llama"), generate("qwen2", "--arch", "qwen2", "--tie-embeddings"))) {
            try (CausalLm model = Fixtures.load(dir, kernels, "auto")) {
                List<Integer> tokens = greedy(model, 16);
                Set<Integer> distinct = new HashSet<>(tokens.subList(1, tokens.size()));
                assertTrue(distinct.size() > 2, dir + " greedy tokens " + tokens);
                assertEquals(512, model.info().vocabSize());
            }
        }
    }

    @Test
    void deepseekDefaultsLoadAndGreedyTextIsNotOneRepeatedToken() throws IOException {
        Path dir = tmp.resolve("deepseek");
        CheckpointGenerator.generate(CheckpointGenerator.Options.defaults("deepseek_v3", dir));
        JsonNode config = new ObjectMapper().readTree(dir.resolve("config.json").toFile());
        assertEquals("deepseek_v3", config.get("model_type").asText());
        assertEquals("yarn", config.get("rope_scaling").get("type").asText());
        try (CausalLm model = Fixtures.load(dir, kernels, "auto")) {
            assertEquals("DeepseekV3ForCausalLM", model.info().architecture());
            List<Integer> tokens = greedy(model, 24);
            Set<Integer> distinct = new HashSet<>(tokens.subList(1, tokens.size()));
            assertTrue(distinct.size() > 8, "greedy tokens " + tokens);
        }
        Path bf16 = generate("deepseek-bf16", "--arch", "deepseek_v3", "--heads", "4", "--dtype", "bf16", "--q-lora-rank", "0",
                "--nextn-layers", "1");
        try (CausalLm model = Fixtures.load(bf16, kernels, "auto")) {
            assertEquals("BF16", model.info().weightDtype());
            for (float v : logits(model, new int[] {0, 1, 2})) assertTrue(Float.isFinite(v));
        }
    }

    @Test
    void shardedCheckpointEqualsSingleFile() throws IOException {
        String[] bigger = {"--vocab", "2048", "--hidden", "128", "--intermediate", "256"};
        Path single = generate("single", bigger);
        Path sharded = generate("sharded", Stream.concat(Stream.of(bigger), Stream.of("--shard-size-mb", "1")).toArray(String[]::new));
        assertFalse(Files.exists(sharded.resolve("model.safetensors")));
        JsonNode index = new ObjectMapper().readTree(sharded.resolve("model.safetensors.index.json").toFile());
        Set<String> files = new HashSet<>();
        index.get("weight_map").forEach(n -> files.add(n.asText()));
        assertTrue(files.size() >= 2, files.toString());
        for (String f : files) assertTrue(Files.size(sharded.resolve(f)) <= (1 << 20) + 4096, f);
        try (CausalLm a = Fixtures.load(single, kernels, "auto"); CausalLm b = Fixtures.load(sharded, kernels, "auto")) {
            assertEquals(greedy(a, 6), greedy(b, 6));
        }
    }

    @Test
    void bf16CheckpointLoadsAndMatchesConvertedF32() throws IOException {
        Path f32 = generate("f32");
        Path bf16 = generate("bf16", "--dtype", "bf16");
        try (CausalLm stored = Fixtures.load(bf16, kernels, "auto"); CausalLm converted = Fixtures.load(f32, kernels, "bfloat16")) {
            assertEquals("BF16", stored.info().weightDtype());
            assertEquals("BF16", converted.info().weightDtype());
            float[] x = logits(stored, new int[] {0, 5, 9, 300});
            float[] y = logits(converted, new int[] {0, 5, 9, 300});
            for (int i = 0; i < x.length; i++) assertEquals(x[i], y[i], 1e-5, "logit " + i);
        }
        Path f16 = generate("f16", "--dtype", "f16");
        try (CausalLm model = Fixtures.load(f16, kernels, "auto")) {
            assertEquals("F16", model.info().weightDtype());
            for (float v : logits(model, new int[] {0, 1, 2})) assertTrue(Float.isFinite(v));
        }
    }

    @Test
    void tokenizerIsAByteLevelBpe() throws IOException {
        Path dir = generate("tok", "--vocab", "700");
        JsonNode tok = new ObjectMapper().readTree(dir.resolve("tokenizer.json").toFile());
        JsonNode vocab = tok.get("model").get("vocab");
        JsonNode merges = tok.get("model").get("merges");
        assertEquals(700, vocab.size());
        assertEquals(700 - 258, merges.size());
        assertEquals(0, vocab.get(CheckpointGenerator.BOS).asInt());
        assertEquals(1, vocab.get(CheckpointGenerator.EOS).asInt());
        assertEquals(2 + ' ', vocab.get("\u0120").asInt()); // GPT-2 spells the space byte as U+0120
        assertEquals(2 + 'a', vocab.get("a").asInt());
        for (JsonNode m : merges) {
            String[] parts = m.asText().split(" ");
            assertTrue(vocab.has(parts[0]) && vocab.has(parts[1]) && vocab.has(parts[0] + parts[1]), m.asText());
        }
        assertTrue(vocab.has("\u0120the"), "a frequent word becomes one token");
        assertEquals("ByteLevel", tok.get("pre_tokenizer").get("type").asText());
        assertEquals("ByteLevel", tok.get("decoder").get("type").asText());
        JsonNode cfg = new ObjectMapper().readTree(dir.resolve("tokenizer_config.json").toFile());
        assertTrue(cfg.get("add_bos_token").asBoolean());
        assertEquals(CheckpointGenerator.BOS, cfg.get("bos_token").asText());
    }

    @Test
    void badFlagsAreRejectedWithAMessage() {
        assertThrows(IllegalArgumentException.class, () -> CheckpointGenerator.Options.parse("--hidden", "64"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> CheckpointGenerator.Options.parse("--out", "x", "--bogus", "1"));
        assertTrue(e.getMessage().contains("--bogus"));
        assertThrows(IllegalArgumentException.class, () -> CheckpointGenerator.Options.parse("--out", "x", "--dtype", "q4"));
        assertThrows(IllegalArgumentException.class, () -> CheckpointGenerator.Options.parse("--out", "x", "--arch", "gpt2"));
        assertThrows(IllegalArgumentException.class, () -> CheckpointGenerator.Options.parse("--out", "x", "--layers", "two"));
        assertThrows(IllegalArgumentException.class, () -> CheckpointGenerator.Options.parse("--out", "x", "--heads", "5"));
        assertThrows(IllegalArgumentException.class, () -> CheckpointGenerator.Options.parse("--out", "x", "--seed"));
        assertThrows(IllegalArgumentException.class,
                () -> CheckpointGenerator.Options.parse("--out", "x", "--arch", "deepseek_v3", "--experts", "7"));
        assertThrows(IllegalArgumentException.class,
                () -> CheckpointGenerator.Options.parse("--out", "x", "--arch", "deepseek_v3", "--experts-per-token", "5"));
        assertThrows(IllegalArgumentException.class, () -> CheckpointGenerator.Options.parse("--out", "x", "--experts", "x"));
    }

    private static float[] logits(CausalLm model, int[] prompt) {
        return new PagedSequences(model, 1 + (prompt.length + 15) / 16, 16).newSequence().forward(prompt);
    }

    private static List<Integer> greedy(CausalLm model, int steps) {
        List<Integer> out = new ArrayList<>();
        PagedSequences.Seq seq = new PagedSequences(model, 1 + (steps + 16) / 16, 16).newSequence();
        int next = CheckpointGenerator.BOS_ID;
        for (int s = 0; s < steps; s++) {
            next = Fixtures.argmax(seq.forward(new int[] {next}));
            out.add(next);
        }
        return out;
    }
}
