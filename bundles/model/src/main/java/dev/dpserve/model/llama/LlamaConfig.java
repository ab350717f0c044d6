// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model.llama;

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
 * The config.json fields the Llama family (llama, qwen2, mistral) needs, with Hugging Face's
 * defaults applied.
 *
 * @param headDim         per-head size; defaults to hiddenSize / numHeads
 * @param ropeScaling     null for plain RoPE
 * @param qkvBias         q/k/v projections have biases (Qwen2 always, Llama with attention_bias)
 * @param outputBias      o_proj has a bias (Llama attention_bias)
 * @param mlpBias         gate/up/down projections have biases (Llama mlp_bias)
 * @param slidingWindow   attention window in tokens including the current one; 0 = unlimited
 * @param bosTokenId      -1 when absent
 * @param eosTokenIds     possibly empty
 */
public record LlamaConfig(String modelType, String architecture, int hiddenSize, int intermediateSize, int numLayers,
                          int numHeads, int numKvHeads, int headDim, double rmsNormEps, double ropeTheta,
                          RopeScaling ropeScaling, int maxPositionEmbeddings, int vocabSize, boolean tieWordEmbeddings,
                          boolean qkvBias, boolean outputBias, boolean mlpBias, int slidingWindow, int bosTokenId,
                          List<Integer> eosTokenIds) {

    /**
     * RoPE frequency scaling: "llama3" (wavelength-banded, Llama 3.1+) or "linear" (positions
     * divided by {@code factor}).
     */
    public record RopeScaling(String type, double factor, double lowFreqFactor, double highFreqFactor,
                              int originalMaxPositionEmbeddings) {
    }

    public LlamaConfig {
        eosTokenIds = List.copyOf(eosTokenIds);
        if (hiddenSize <= 0 || intermediateSize <= 0 || numLayers <= 0 || numHeads <= 0 || numKvHeads <= 0
                || headDim <= 0 || vocabSize <= 0) {
            throw new IllegalArgumentException("config sizes must be positive: " + this);
        }
        if (numHeads % numKvHeads != 0) {
            throw new IllegalArgumentException("num_attention_heads " + numHeads + " is not a multiple of num_key_value_heads " + numKvHeads);
        }
        if (headDim % 2 != 0) throw new IllegalArgumentException("head_dim must be even for RoPE, got " + headDim);
    }

    public int qDim() {
        return numHeads * headDim;
    }

    public int kvDim() {
        return numKvHeads * headDim;
    }

    /**
     * Parses config.json values. IllegalArgumentException names the field for missing or
     * unsupported settings (non-SiLU activations, unknown RoPE scaling, Qwen2 sliding windows).
     */
    public static LlamaConfig from(Map<String, Object> c) {
        String modelType = string(c, "model_type", "llama");
        String architecture = architectureOf(c, modelType);
        String act = string(c, "hidden_act", "silu");
        if (!act.equals("silu")) throw new IllegalArgumentException("hidden_act " + act + " is not supported (only silu)");
        int hidden = integer(c, "hidden_size");
        int heads = integer(c, "num_attention_heads");
        int kvHeads = c.get("num_key_value_heads") == null ? heads : integer(c, "num_key_value_heads");
        int headDim = c.get("head_dim") == null ? hidden / heads : integer(c, "head_dim");
        boolean qwen2 = modelType.equals("qwen2");
        boolean attentionBias = bool(c, "attention_bias", false);
        int window = 0;
        if (qwen2 && bool(c, "use_sliding_window", false)) {
            throw new IllegalArgumentException("qwen2 use_sliding_window=true is not supported");
        }
        if (modelType.equals("mistral") && c.get("sliding_window") != null) window = integer(c, "sliding_window");
        return new LlamaConfig(modelType, architecture, hidden, integer(c, "intermediate_size"),
                integer(c, "num_hidden_layers"), heads, kvHeads, headDim,
                number(c, "rms_norm_eps", 1e-6), number(c, "rope_theta", 10000.0), ropeScaling(c),
                c.get("max_position_embeddings") == null ? 2048 : integer(c, "max_position_embeddings"),
                integer(c, "vocab_size"), bool(c, "tie_word_embeddings", false),
                qwen2 || attentionBias, attentionBias && !qwen2, bool(c, "mlp_bias", false), window,
                c.get("bos_token_id") instanceof Number n ? n.intValue() : -1, eosIds(c.get("eos_token_id")));
    }

    private static RopeScaling ropeScaling(Map<String, Object> config) {
        Map<String, Object> s = ConfigValues.ropeScaling(config);
        if (s == null) return null;
        String type = ropeType(s);
        return switch (type) {
            case "default" -> null;
            case "linear" -> new RopeScaling("linear", number(s, "factor", Double.NaN), 0, 0, 0);
            case "llama3" -> new RopeScaling("llama3", number(s, "factor", Double.NaN), number(s, "low_freq_factor", Double.NaN),
                    number(s, "high_freq_factor", Double.NaN), integer(s, "original_max_position_embeddings"));
            default -> throw new IllegalArgumentException("rope_scaling type " + type + " is not supported (llama3, linear)");
        };
    }
}
