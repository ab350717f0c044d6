// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dpserve.model.ConfigJson;
import dev.dpserve.model.Fixtures;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class LlamaConfigTest {

    private static Map<String, Object> base() {
        Map<String, Object> c = new HashMap<>();
        c.put("model_type", "llama");
        c.put("hidden_size", 64);
        c.put("intermediate_size", 128);
        c.put("num_hidden_layers", 2);
        c.put("num_attention_heads", 4);
        c.put("vocab_size", 100);
        return c;
    }

    @Test
    void appliesHuggingFaceDefaults() {
        LlamaConfig c = LlamaConfig.from(base());
        assertEquals(4, c.numKvHeads());
        assertEquals(16, c.headDim());
        assertNull(c.ropeScaling());
        assertFalse(c.qkvBias());
        assertFalse(c.tieWordEmbeddings());
        assertEquals(-1, c.bosTokenId());
        assertEquals(List.of(), c.eosTokenIds());
    }

    @Test
    void readsTheGoldenFixture() throws Exception {
        LlamaConfig c = LlamaConfig.from(ConfigJson.read(Fixtures.dir("llama-tiny")));
        assertEquals(2, c.numKvHeads());
        assertEquals("llama3", c.ropeScaling().type());
        assertEquals(64, c.ropeScaling().originalMaxPositionEmbeddings());
        assertEquals(500000.0, c.ropeTheta());
        assertEquals(List.of(1), c.eosTokenIds());
    }

    @Test
    void qwen2AlwaysHasQkvBiasAndEosListsWork() {
        Map<String, Object> m = base();
        m.put("model_type", "qwen2");
        m.put("eos_token_id", List.of(7, 8));
        LlamaConfig c = LlamaConfig.from(m);
        assertTrue(c.qkvBias());
        assertFalse(c.outputBias());
        assertEquals(List.of(7, 8), c.eosTokenIds());
        m.put("use_sliding_window", true);
        assertThrows(IllegalArgumentException.class, () -> LlamaConfig.from(m));
    }

    @Test
    void ropeScalingVariants() {
        Map<String, Object> m = base();
        m.put("rope_scaling", Map.of("type", "linear", "factor", 2.0));
        LlamaConfig linear = LlamaConfig.from(m);
        m.remove("rope_scaling");
        LlamaConfig plain = LlamaConfig.from(m);
        double[] a = LlamaModel.inverseFrequencies(linear);
        double[] b = LlamaModel.inverseFrequencies(plain);
        for (int i = 0; i < a.length; i++) assertEquals(b[i] / 2, a[i], 1e-15);
        m.put("rope_scaling", Map.of("rope_type", "yarn", "factor", 4.0));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LlamaConfig.from(m));
        assertTrue(e.getMessage().contains("yarn"));
        m.put("rope_scaling", Map.of("rope_type", "default"));
        assertNull(LlamaConfig.from(m).ropeScaling());
        m.put("hidden_act", "gelu");
        assertThrows(IllegalArgumentException.class, () -> LlamaConfig.from(m));
    }

    @Test
    void llama3ScalingKeepsHighFrequenciesAndSlowsLowOnes() {
        Map<String, Object> m = base();
        m.put("rope_theta", 500000.0);
        m.put("rope_scaling", Map.of("rope_type", "llama3", "factor", 8.0, "low_freq_factor", 1.0,
                "high_freq_factor", 4.0, "original_max_position_embeddings", 64));
        double[] scaled = LlamaModel.inverseFrequencies(LlamaConfig.from(m));
        m.remove("rope_scaling");
        double[] plain = LlamaModel.inverseFrequencies(LlamaConfig.from(m));
        assertEquals(plain[0], scaled[0]);
        assertEquals(plain[plain.length - 1] / 8, scaled[scaled.length - 1], 1e-18);
    }
}
