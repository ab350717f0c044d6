// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model.deepseek;

import static dev.dpserve.model.ConfigValues.architectureOf;
import static dev.dpserve.model.ConfigValues.bool;
import static dev.dpserve.model.ConfigValues.eosIds;
import static dev.dpserve.model.ConfigValues.integer;
import static dev.dpserve.model.ConfigValues.number;
import static dev.dpserve.model.ConfigValues.ropeType;
import static dev.dpserve.model.ConfigValues.string;

import dev.dpserve.model.ConfigValues;
import java.util.List;
import java.util.Map;

/**
 * The config.json fields DeepSeek-V3 (and DeepSeek-V2, which differs only in its defaults) needs,
 * with Hugging Face's defaults for the model_type applied.
 *
 * @param qLoraRank          0 when config.json has no (or a null) q_lora_rank: queries use a plain q_proj
 * @param topkMethod         "noaux_tc" (group-limited, biased selection), "group_limited_greedy" or "greedy"
 * @param scoringFunc        "sigmoid" or "softmax"
 * @param routedScalingFactor multiplies the weighted sum of the routed experts once
 * @param moeLayerFreq       a layer at or above firstKDenseReplace is MoE when its index is a multiple of this
 * @param ropeScaling        null for plain RoPE
 * @param numNextnPredictLayers multi-token-prediction layers stored after the decoder layers (not run)
 * @param bosTokenId         -1 when absent
 * @param eosTokenIds        possibly empty
 */
public record DeepseekV3Config(String modelType, String architecture, int hiddenSize, int numLayers, int numHeads,
                               int qLoraRank, int kvLoraRank, int qkNopeHeadDim, int qkRopeHeadDim, int vHeadDim,
                               int intermediateSize, int moeIntermediateSize, int nRoutedExperts, int nSharedExperts,
                               int numExpertsPerTok, int nGroup, int topkGroup, String topkMethod, String scoringFunc,
                               boolean normTopkProb, double routedScalingFactor, int firstKDenseReplace,
                               int moeLayerFreq, double ropeTheta, RopeScaling ropeScaling, double rmsNormEps,
                               boolean attentionBias, boolean tieWordEmbeddings, int maxPositionEmbeddings,
                               int vocabSize, int numNextnPredictLayers, int bosTokenId, List<Integer> eosTokenIds) {

    /**
     * YaRN scaling of the rotary frequencies (DeepSeek's {@code deepseek_yarn}).
     *
     * @param mscale       with mscaleAllDim, sets the cos/sin magnitude {@code m(mscale)/m(mscaleAllDim)}
     * @param mscaleAllDim the softmax scale is multiplied by {@code m(mscaleAllDim)²} when nonzero
     */
    public record RopeScaling(double factor, int originalMaxPositionEmbeddings, double betaFast, double betaSlow,
                              double mscale, double mscaleAllDim) {
    }

    public DeepseekV3Config {
        eosTokenIds = List.copyOf(eosTokenIds);
        if (hiddenSize <= 0 || numLayers <= 0 || numHeads <= 0 || kvLoraRank <= 0 || qkNopeHeadDim <= 0 || qkRopeHeadDim <= 0
                || vHeadDim <= 0 || intermediateSize <= 0 || vocabSize <= 0 || qLoraRank < 0 || moeLayerFreq <= 0) {
            throw new IllegalArgumentException("config sizes must be positive: " + this);
        }
        if (qkRopeHeadDim % 2 != 0) throw new IllegalArgumentException("qk_rope_head_dim must be even, got " + qkRopeHeadDim);
        if (nRoutedExperts > 0) {
            if (moeIntermediateSize <= 0 || numExpertsPerTok <= 0 || numExpertsPerTok > nRoutedExperts) {
                throw new IllegalArgumentException("MoE needs moe_intermediate_size > 0 and 0 < num_experts_per_tok <= n_routed_experts: " + this);
            }
            if (nGroup <= 0 || nRoutedExperts % nGroup != 0 || topkGroup <= 0 || topkGroup > nGroup) {
                throw new IllegalArgumentException("n_routed_experts " + nRoutedExperts + " must split into n_group " + nGroup
                        + " groups and 0 < topk_group " + topkGroup + " <= n_group");
            }
            if (numExpertsPerTok > topkGroup * (nRoutedExperts / nGroup) && !topkMethod.equals("greedy")) {
                throw new IllegalArgumentException("num_experts_per_tok " + numExpertsPerTok + " exceeds the experts of topk_group groups");
            }
            if (topkMethod.equals("noaux_tc") && nRoutedExperts / nGroup < 2) {
                throw new IllegalArgumentException("noaux_tc needs at least 2 experts per group");
            }
        }
        if (!List.of("noaux_tc", "group_limited_greedy", "greedy").contains(topkMethod)) {
            throw new IllegalArgumentException("topk_method " + topkMethod + " is not supported (noaux_tc, group_limited_greedy, greedy)");
        }
        if (!scoringFunc.equals("sigmoid") && !scoringFunc.equals("softmax")) {
            throw new IllegalArgumentException("scoring_func " + scoringFunc + " is not supported (sigmoid, softmax)");
        }
    }

    public int qHeadDim() {
        return qkNopeHeadDim + qkRopeHeadDim;
    }

    /** Values per token per layer in the MLA cache: the normalised latent, then the roped key. */
    public int cacheDim() {
        return kvLoraRank + qkRopeHeadDim;
    }

    /** Layer {@code layer} uses routed experts (otherwise the dense MLP). */
    public boolean isMoeLayer(int layer) {
        return nRoutedExperts > 0 && layer >= firstKDenseReplace && layer % moeLayerFreq == 0;
    }

    /** {@code (qk_nope + qk_rope)^-0.5}, times {@code m(mscale_all_dim)²} under YaRN as in Hugging Face. */
    public double softmaxScale() {
        double scale = 1.0 / Math.sqrt(qHeadDim());
        if (ropeScaling != null && ropeScaling.mscaleAllDim() != 0) {
            double m = yarnMscale(ropeScaling.factor(), ropeScaling.mscaleAllDim());
            scale *= m * m;
        }
        return scale;
    }

    /** YaRN's attention magnitude {@code 0.1·m·ln(factor) + 1} (1 when factor ≤ 1). */
    static double yarnMscale(double factor, double m) {
        return factor <= 1 ? 1.0 : 0.1 * m * Math.log(factor) + 1.0;
    }

    /**
     * Parses config.json values (a map without top-level nulls, as {@code ConfigJson} reads it).
     * IllegalArgumentException names the field for missing or unsupported settings.
     */
    public static DeepseekV3Config from(Map<String, Object> c) {
        String modelType = string(c, "model_type", "deepseek_v3");
        boolean v3 = !modelType.equals("deepseek_v2");
        String architecture = architectureOf(c, modelType);
        String act = string(c, "hidden_act", "silu");
        if (!act.equals("silu")) throw new IllegalArgumentException("hidden_act " + act + " is not supported (only silu)");
        int layers = integer(c, "num_hidden_layers", -1);
        int routed = integer(c, "n_routed_experts", 0);
        String topkMethod = string(c, "topk_method", v3 ? "noaux_tc" : "greedy");
        if (topkMethod.equals("gready")) topkMethod = "greedy"; // the spelling of DeepSeek-V2's modeling code
        return new DeepseekV3Config(modelType, architecture, integer(c, "hidden_size", -1), layers,
                integer(c, "num_attention_heads", -1), integer(c, "q_lora_rank", 0), integer(c, "kv_lora_rank", -1),
                integer(c, "qk_nope_head_dim", -1), integer(c, "qk_rope_head_dim", -1), integer(c, "v_head_dim", -1),
                integer(c, "intermediate_size", -1), integer(c, "moe_intermediate_size", 0), routed,
                integer(c, "n_shared_experts", 0), integer(c, "num_experts_per_tok", 0), integer(c, "n_group", 1),
                integer(c, "topk_group", 1), topkMethod, string(c, "scoring_func", v3 ? "sigmoid" : "softmax"),
                bool(c, "norm_topk_prob", v3), number(c, "routed_scaling_factor", 1.0),
                integer(c, "first_k_dense_replace", 0), integer(c, "moe_layer_freq", 1), number(c, "rope_theta", 10000.0),
                ropeScaling(c), number(c, "rms_norm_eps", 1e-6), bool(c, "attention_bias", false),
                bool(c, "tie_word_embeddings", false), integer(c, "max_position_embeddings", 2048),
                integer(c, "vocab_size", -1), integer(c, "num_nextn_predict_layers", 0),
                c.get("bos_token_id") instanceof Number n ? n.intValue() : -1, eosIds(c.get("eos_token_id")));
    }

    private static RopeScaling ropeScaling(Map<String, Object> config) {
        Map<String, Object> s = ConfigValues.ropeScaling(config);
        if (s == null) return null;
        String type = ropeType(s);
        return switch (type) {
            case "default" -> null;
            case "yarn" -> new RopeScaling(number(s, "factor", Double.NaN), integer(s, "original_max_position_embeddings", -1),
                    number(s, "beta_fast", 32), number(s, "beta_slow", 1), number(s, "mscale", 1), number(s, "mscale_all_dim", 0));
            default -> throw new IllegalArgumentException("rope_scaling type " + type + " is not supported (yarn)");
        };
    }
}
