// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model.deepseek;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dpserve.api.model.CausalLm.BatchEntry;
import dev.dpserve.api.model.KvCacheLayout;
import dev.dpserve.api.model.ModelSource;
import dev.dpserve.model.ConfigJson;
import dev.dpserve.model.Fixtures;
import dev.dpserve.model.PagedSequences;
import dev.dpserve.model.deepseek.DeepseekV3Model.AttentionForm;
import dev.dpserve.model.generate.CheckpointGenerator;
import dev.dpserve.tensor.VectorKernelBackend;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The optimised DeepSeek path (paged MLA cache, absorbed decode, batched experts, mixed batches)
 * against {@link NaiveDeepseek} (full recompute, expanded attention, token-by-token experts,
 * float64) on generated checkpoints with several layers and experts; and batching, chunking,
 * paging, prefix sharing, recompute and both attention forms against each other.
 */
class DeepseekV3ModelTest {

    /** F32 compute against the float64 reference, logits of magnitude up to ~10. */
    private static final double REFERENCE_TOLERANCE = 1e-4;
    /** The same arithmetic in another batch layout or attention form. */
    private static final double TOLERANCE = 1e-5;
    private static final int DECODE_STEPS = 5;
    private static final int BLOCK_SIZE = 4;
    private static final int[][] PROMPTS = {
            {5, 17, 300, 42, 42, 7, 99, 100, 256, 3, 8, 15, 16, 23, 42, 511, 0, 77, 9},
            {0},
            {9, 8, 7, 6, 5, 4, 3, 2, 1, 400, 401, 402},
            {250, 251},
    };

    @TempDir
    static Path tmp;

    private static VectorKernelBackend kernels;
    private static Path v3;
    private static Path v2;
    private static DeepseekV3Model model;

    @BeforeAll
    static void generate() throws IOException {
        kernels = new VectorKernelBackend(2);
        v3 = tmp.resolve("v3");
        // 4 groups of 2 experts, 2 groups kept, 3 experts per token; one MTP layer the loader skips
        CheckpointGenerator.generate(CheckpointGenerator.Options.parse("--arch", "deepseek_v3", "--out", v3.toString(),
                "--hidden", "64", "--layers", "4", "--heads", "4", "--intermediate", "128", "--vocab", "512",
                "--max-position", "512", "--q-lora-rank", "32", "--kv-lora-rank", "16", "--qk-nope-dim", "16",
                "--qk-rope-dim", "8", "--v-head-dim", "16", "--moe-intermediate", "32", "--experts", "8", "--groups", "4",
                "--topk-group", "2", "--experts-per-token", "3", "--first-dense", "1", "--rope-factor", "8",
                "--nextn-layers", "1"));
        // DeepSeek-V2 style: plain q_proj, no YaRN, softmax scores, group_limited_greedy without the bias
        v2 = tmp.resolve("v2");
        CheckpointGenerator.generate(CheckpointGenerator.Options.parse("--arch", "deepseek_v3", "--out", v2.toString(),
                "--hidden", "64", "--layers", "3", "--heads", "2", "--intermediate", "96", "--vocab", "512",
                "--max-position", "512", "--q-lora-rank", "0", "--kv-lora-rank", "24", "--qk-nope-dim", "8",
                "--qk-rope-dim", "4", "--v-head-dim", "12", "--moe-intermediate", "16", "--experts", "6", "--groups", "3",
                "--topk-group", "2", "--experts-per-token", "2", "--shared-experts", "2", "--first-dense", "1",
                "--rope-factor", "0"));
        editConfig(v2, Map.of("model_type", "deepseek_v2", "architectures", List.of("DeepseekV2ForCausalLM"),
                "scoring_func", "softmax", "topk_method", "group_limited_greedy", "norm_topk_prob", false,
                "routed_scaling_factor", 16.0));
        model = (DeepseekV3Model) Fixtures.load(v3, kernels, "auto");
    }

    @AfterAll
    static void close() {
        model.close();
        kernels.close();
    }

    private static void editConfig(Path dir, Map<String, Object> changes) throws IOException {
        ObjectMapper json = new ObjectMapper();
        ObjectNode config = (ObjectNode) json.readTree(dir.resolve("config.json").toFile());
        changes.forEach((k, v) -> config.set(k, json.valueToTree(v)));
        json.writeValue(dir.resolve("config.json").toFile(), config);
    }

    /** A fresh paged cache of {@value #BLOCK_SIZE}-token blocks for {@code m} (discarding the previous one). */
    private static PagedSequences pages(DeepseekV3Model m) {
        return new PagedSequences(m, 64, BLOCK_SIZE);
    }

    /** Logits of prefill then greedy decode steps, one sequence per forward call. */
    private static List<float[]> alone(DeepseekV3Model m, int[] prompt) {
        List<float[]> out = new ArrayList<>();
        PagedSequences.Seq seq = pages(m).newSequence();
        float[] logits = seq.forward(prompt);
        out.add(logits);
        for (int s = 0; s < DECODE_STEPS; s++) {
            logits = seq.forward(new int[] {Fixtures.argmax(logits)});
            out.add(logits);
        }
        return out;
    }

    /** The naive reference's logits for each step of a greedy run that produced {@code steps}. */
    private static void assertMatchesNaive(NaiveDeepseek naive, int[] prompt, List<float[]> steps, String what) {
        int[] seq = prompt.clone();
        for (int s = 0; s < steps.size(); s++) {
            double[] expected = naive.lastLogits(seq);
            float[] got = steps.get(s);
            assertEquals(expected.length, got.length);
            for (int i = 0; i < got.length; i++) assertEquals(expected[i], got[i], REFERENCE_TOLERANCE, what + " step " + s + " logit " + i);
            seq = Arrays.copyOf(seq, seq.length + 1);
            seq[seq.length - 1] = Fixtures.argmax(got);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"v3", "v2"})
    void matchesNaiveFullRecompute(String variant) throws IOException {
        Path dir = variant.equals("v3") ? v3 : v2;
        try (DeepseekV3Model m = (DeepseekV3Model) Fixtures.load(dir, kernels, "auto"); NaiveDeepseek naive = new NaiveDeepseek(dir)) {
            assertEquals(variant.equals("v3") ? "deepseek_v3" : "deepseek_v2", m.info().modelType());
            for (int p = 0; p < PROMPTS.length; p++) assertMatchesNaive(naive, PROMPTS[p], alone(m, PROMPTS[p]), variant + " prompt " + p);
        }
    }

    @Test
    void absorbedAndExpandedAttentionAgree() {
        for (int[] prompt : PROMPTS) {
            model.attentionForm(AttentionForm.ABSORBED);
            List<float[]> absorbed = alone(model, prompt);
            model.attentionForm(AttentionForm.EXPANDED);
            List<float[]> expanded = alone(model, prompt);
            model.attentionForm(AttentionForm.AUTO);
            for (int s = 0; s < absorbed.size(); s++) assertClose(expanded.get(s), absorbed.get(s), "step " + s);
        }
    }

    @Test
    void mixedPrefillAndDecodeBatchEqualsEachSequenceAloneAndTheReference() throws IOException {
        List<List<float[]>> expected = new ArrayList<>();
        for (int[] p : PROMPTS) expected.add(alone(model, p));

        List<List<float[]>> got = pages(model).staggered(PROMPTS, DECODE_STEPS);
        try (NaiveDeepseek naive = new NaiveDeepseek(v3)) {
            for (int i = 0; i < PROMPTS.length; i++) {
                assertEquals(expected.get(i).size(), got.get(i).size());
                for (int s = 0; s < expected.get(i).size(); s++) assertClose(expected.get(i).get(s), got.get(i).get(s), "seq " + i + " step " + s);
                assertMatchesNaive(naive, PROMPTS[i], got.get(i), "batched seq " + i);
            }
        }
    }

    @ParameterizedTest
    @EnumSource(AttentionForm.class)
    void chunkedPrefillEqualsPrefillAtOnce(AttentionForm form) {
        int[] prompt = PROMPTS[0];
        List<float[]> expected = alone(model, prompt);
        model.attentionForm(form);
        try {
            PagedSequences.Seq seq = pages(model).newSequence();
            float[] logits = null;
            int[] chunks = {5, 1, 9, 4};
            for (int at = 0, c = 0; at < prompt.length; at += chunks[c++]) {
                logits = seq.forward(Arrays.copyOfRange(prompt, at, at + chunks[c]));
            }
            assertClose(expected.get(0), logits, form + " after chunked prefill");
            logits = seq.forward(new int[] {Fixtures.argmax(logits)});
            assertClose(expected.get(1), logits, form + " first decode after chunked prefill");
        } finally {
            model.attentionForm(AttentionForm.AUTO);
        }
    }

    @Test
    void chunksWithoutLogitsSkipTheHeadAndChangeNothing() {
        int[] prompt = PROMPTS[2];
        float[] expected = alone(model, prompt).get(0);
        PagedSequences.Seq seq = pages(model).newSequence();
        BatchEntry first = seq.entry(Arrays.copyOfRange(prompt, 0, 7), false);
        assertNull(model.forward(List.of(first))[0]);
        seq.advance(7);
        assertClose(expected, seq.forward(Arrays.copyOfRange(prompt, 7, prompt.length)), "after a logit-less chunk");
    }

    /** What the engine does for a preempted sequence: drop its blocks and recompute it on new ones. */
    @Test
    void recomputeOnANewSequenceGivesTheSameLogits() {
        int[] prompt = PROMPTS[0];
        List<float[]> expected = alone(model, prompt);
        PagedSequences pages = pages(model);
        PagedSequences.Seq preempted = pages.newSequence();
        float[] logits = preempted.forward(Arrays.copyOfRange(prompt, 0, 11));
        logits = preempted.forward(Arrays.copyOfRange(prompt, 11, prompt.length));
        assertClose(expected.get(0), logits, "before preemption");
        int[] generated = {Fixtures.argmax(logits)};

        // the recompute runs the prompt and the generated token, with the other blocks still holding the old sequence
        PagedSequences.Seq recomputed = pages.newSequence();
        int[] all = Arrays.copyOf(prompt, prompt.length + 1);
        all[prompt.length] = generated[0];
        BatchEntry prefix = recomputed.entry(Arrays.copyOfRange(all, 0, 6), false);
        assertNull(model.forward(List.of(prefix))[0]);
        recomputed.advance(6);
        assertClose(expected.get(1), recomputed.forward(Arrays.copyOfRange(all, 6, all.length)), "after recompute");
        assertClose(expected.get(2), recomputed.forward(new int[] {Fixtures.argmax(expected.get(1))}), "decode after recompute");
    }

    @ParameterizedTest
    @EnumSource(AttentionForm.class)
    void sharedPrefixBlocksAreReadNotRecomputed(AttentionForm form) {
        int[] prompt = PROMPTS[0]; // 19 tokens: 4 full blocks and 3 more
        List<float[]> expected = alone(model, prompt);
        model.attentionForm(form);
        try {
            PagedSequences pages = pages(model);
            PagedSequences.Seq owner = pages.newSequence();
            owner.forward(Arrays.copyOfRange(prompt, 0, 16));
            PagedSequences.Seq sharer = pages.newSequence();
            owner.shareBlocksWith(sharer, 4);
            float[] logits = sharer.forward(Arrays.copyOfRange(prompt, 16, prompt.length));
            assertClose(expected.get(0), logits, form + " suffix over shared blocks");
            assertClose(expected.get(1), sharer.forward(new int[] {Fixtures.argmax(logits)}), form + " decode over shared blocks");
        } finally {
            model.attentionForm(AttentionForm.AUTO);
        }
    }

    @Test
    void rejectsInvalidBatches() {
        PagedSequences.Seq seq = pages(model).newSequence();
        BatchEntry ok = seq.entry(new int[] {1});
        assertThrows(IllegalArgumentException.class, () -> model.forward(List.of(new BatchEntry(ok.blockTable(), 0, new int[5], true))));
        assertThrows(IllegalArgumentException.class, () -> model.forward(List.of(new BatchEntry(ok.blockTable(), 0, new int[0], true))));
        assertThrows(IllegalArgumentException.class, () -> model.forward(List.of(new BatchEntry(ok.blockTable(), 0, new int[] {512}, true))));
        assertThrows(IllegalArgumentException.class, () -> model.forward(List.of(new BatchEntry(new int[] {64}, 0, new int[] {1}, true))));
        assertThrows(IllegalArgumentException.class, () -> model.forward(List.of(ok, ok)), "the same slot written twice");
        assertThrows(IllegalArgumentException.class, () -> model.forward(List.of(new BatchEntry(new int[] {7}, 2, new int[] {1}, true))),
                "reads of a block never written");
        assertThrows(IllegalArgumentException.class, () -> model.forward(List.of(new BatchEntry(ok.blockTable(), -1, new int[] {1}, true))));
    }

    @Test
    void reportsTheMlaCacheSizeAndSkipsMtpLayers() {
        // per layer: kv_lora 16 + rope 8 floats; the MTP layer's tensors are not counted
        assertEquals(new KvCacheLayout(4, 16 + 8, KvCacheLayout.MLA), model.kvCacheLayout());
        assertEquals(4L * (16 + 8) * Float.BYTES, model.info().kvBytesPerToken());
        assertEquals(4, model.info().numLayers());
        assertEquals("DeepseekV3ForCausalLM", model.info().architecture());
    }

    @Test
    void fp8CheckpointsFailWithTheConversionToRun() throws IOException {
        Path fp8 = tmp.resolve("fp8");
        Files.createDirectories(fp8);
        for (String f : List.of("model.safetensors", "config.json")) Files.copy(v3.resolve(f), fp8.resolve(f), StandardCopyOption.REPLACE_EXISTING);
        editConfig(fp8, Map.of("quantization_config", Map.of("quant_method", "fp8", "fmt", "e4m3", "weight_block_size", List.of(128, 128))));
        Map<String, Object> config = new LinkedHashMap<>(ConfigJson.read(fp8));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new DeepseekV3Architecture(kernels).load(new ModelSource(fp8, config, "auto")));
        assertTrue(e.getMessage().contains("fp8_cast_bf16.py"), e.getMessage());
    }

    @Test
    void bf16WeightsStayCloseToF32() {
        try (DeepseekV3Model bf16 = (DeepseekV3Model) Fixtures.load(v3, kernels, "bfloat16")) {
            assertEquals("BF16", bf16.info().weightDtype());
            float[] a = alone(model, PROMPTS[0]).getFirst();
            float[] b = alone(bf16, PROMPTS[0]).getFirst();
            double maxDiff = 0;
            for (int i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
            assertTrue(maxDiff < 0.5, "bf16 vs f32 max |Δlogit| " + maxDiff);
        }
    }

    private static void assertClose(float[] expected, float[] actual, String what) {
        assertEquals(expected.length, actual.length, what);
        for (int i = 0; i < expected.length; i++) assertEquals(expected[i], actual[i], TOLERANCE, what + " logit " + i);
    }
}
