// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model.deepseek;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dpserve.model.ConfigJson;
import dev.dpserve.model.Fixtures;
import java.io.IOException;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class DeepseekV3ConfigTest {

    private static Map<String, Object> base(String modelType) {
        Map<String, Object> c = new HashMap<>();
        c.put("model_type", modelType);
        c.put("hidden_size", 64);
        c.put("num_hidden_layers", 3);
        c.put("num_attention_heads", 4);
        c.put("kv_lora_rank", 16);
        c.put("qk_nope_head_dim", 16);
        c.put("qk_rope_head_dim", 8);
        c.put("v_head_dim", 16);
        c.put("intermediate_size", 128);
        c.put("moe_intermediate_size", 32);
        c.put("n_routed_experts", 8);
        c.put("num_experts_per_tok", 2);
        c.put("vocab_size", 100);
        return c;
    }

    @Test
    void readsTheFixtureConfig() throws IOException {
        DeepseekV3Config c = DeepseekV3Config.from(ConfigJson.read(Fixtures.dir("deepseek-v3-tiny")));
        assertEquals(32, c.qLoraRank());
        assertEquals("noaux_tc", c.topkMethod());
        assertEquals(24, c.cacheDim());
        assertFalse(c.isMoeLayer(0));
        assertTrue(c.isMoeLayer(1));
        assertEquals(40, c.ropeScaling().factor());
        // (16 + 8)^-0.5 · (0.1·ln 40 + 1)², the value golden.json records
        assertEquals(0.38249888831204115, c.softmaxScale(), 1e-12);
    }

    @Test
    void yarnRampMatchesTheGoldenReference() throws IOException {
        DeepseekV3Config c = DeepseekV3Config.from(ConfigJson.read(Fixtures.dir("deepseek-v3-tiny")));
        double[] f = DeepseekV3Model.inverseFrequencies(c);
        // golden.json: low 1, high 3 → dim 0 keeps its frequency, dim 3 is divided by the factor 40
        assertEquals(1.0, f[0], 1e-15);
        assertEquals(1 / Math.pow(10000, 6.0 / 8) / 40, f[3], 1e-15);
        double inter = 1 / Math.pow(10000, 4.0 / 8);
        assertEquals(inter / 40 * 0.5 + inter * 0.5, f[2], 1e-15);
    }

    @Test
    void appliesModelTypeDefaults() {
        DeepseekV3Config v3 = DeepseekV3Config.from(base("deepseek_v3"));
        assertEquals("noaux_tc", v3.topkMethod());
        assertEquals("sigmoid", v3.scoringFunc());
        assertTrue(v3.normTopkProb());
        assertEquals(0, v3.qLoraRank(), "absent (or null) q_lora_rank means a plain q_proj");
        assertNull(v3.ropeScaling());
        assertEquals(1 / Math.sqrt(24), v3.softmaxScale(), 1e-12);

        Map<String, Object> m = base("deepseek_v2");
        m.put("topk_method", "gready");
        DeepseekV3Config v2 = DeepseekV3Config.from(m);
        assertEquals("greedy", v2.topkMethod());
        assertEquals("softmax", v2.scoringFunc());
        assertFalse(v2.normTopkProb());
        assertEquals(1.0, v2.routedScalingFactor());
    }

    @Test
    void acceptsRopeTypeAndRejectsUnsupportedSettings() {
        Map<String, Object> m = base("deepseek_v3");
        m.put("rope_scaling", Map.of("rope_type", "yarn", "factor", 4, "original_max_position_embeddings", 1024));
        DeepseekV3Config c = DeepseekV3Config.from(m);
        assertEquals(4, c.ropeScaling().factor());
        assertEquals(32, c.ropeScaling().betaFast());
        assertEquals(0, c.ropeScaling().mscaleAllDim());
        assertEquals(1 / Math.sqrt(24), c.softmaxScale(), 1e-12, "no mscale_all_dim: no softmax correction");

        m.put("rope_scaling", Map.of("type", "linear", "factor", 4));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> DeepseekV3Config.from(m)).getMessage().contains("linear"));
        m.remove("rope_scaling");
        m.put("scoring_func", "sqrtsoftplus");
        assertThrows(IllegalArgumentException.class, () -> DeepseekV3Config.from(m));
        m.put("scoring_func", "sigmoid");
        m.put("n_group", 3);
        assertThrows(IllegalArgumentException.class, () -> DeepseekV3Config.from(m));
        m.put("n_group", 1);
        m.put("hidden_act", "gelu");
        assertThrows(IllegalArgumentException.class, () -> DeepseekV3Config.from(m));
        m.put("hidden_act", "silu");
        m.remove("kv_lora_rank");
        assertTrue(assertThrows(IllegalArgumentException.class, () -> DeepseekV3Config.from(m)).getMessage().contains("kv_lora_rank"));
        assertEquals(List.of(), DeepseekV3Config.from(base("deepseek_v3")).eosTokenIds());
    }
}
