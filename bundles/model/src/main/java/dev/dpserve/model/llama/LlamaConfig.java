// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model.llama;

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
        Object archs = c.get("architectures");
        String architecture = archs instanceof List<?> l && !l.isEmpty() ? String.valueOf(l.getFirst()) : modelType;
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
                number(c, "rms_norm_eps", 1e-6), number(c, "rope_theta", 10000.0), ropeScaling(c.get("rope_scaling")),
                c.get("max_position_embeddings") == null ? 2048 : integer(c, "max_position_embeddings"),
                integer(c, "vocab_size"), bool(c, "tie_word_embeddings", false),
                qwen2 || attentionBias, attentionBias && !qwen2, bool(c, "mlp_bias", false), window,
                c.get("bos_token_id") instanceof Number n ? n.intValue() : -1, eosIds(c.get("eos_token_id")));
    }

    private static RopeScaling ropeScaling(Object value) {
        if (value == null) return null;
        if (!(value instanceof Map<?, ?> m)) throw new IllegalArgumentException("rope_scaling must be an object, got " + value);
        @SuppressWarnings("unchecked")
        Map<String, Object> s = (Map<String, Object>) m;
        String type = s.get("rope_type") != null ? String.valueOf(s.get("rope_type")) : string(s, "type", "default");
        return switch (type) {
            case "default" -> null;
            case "linear" -> new RopeScaling("linear", number(s, "factor", Double.NaN), 0, 0, 0);
            case "llama3" -> new RopeScaling("llama3", number(s, "factor", Double.NaN), number(s, "low_freq_factor", Double.NaN),
                    number(s, "high_freq_factor", Double.NaN), integer(s, "original_max_position_embeddings"));
            default -> throw new IllegalArgumentException("rope_scaling type " + type + " is not supported (llama3, linear)");
        };
    }

    private static List<Integer> eosIds(Object v) {
        if (v instanceof Number n) return List.of(n.intValue());
        if (v instanceof List<?> l) return l.stream().map(o -> ((Number) o).intValue()).toList();
        return List.of();
    }

    private static int integer(Map<String, Object> c, String key) {
        Object v = c.get(key);
        if (!(v instanceof Number n)) throw new IllegalArgumentException("config." + key + " must be a number, got " + v);
        return Math.toIntExact(n.longValue());
    }

    private static double number(Map<String, Object> c, String key, double dflt) {
        Object v = c.get(key);
        if (v == null) {
            if (Double.isNaN(dflt)) throw new IllegalArgumentException("config." + key + " is required");
            return dflt;
        }
        if (!(v instanceof Number n)) throw new IllegalArgumentException("config." + key + " must be a number, got " + v);
        return n.doubleValue();
    }

    private static boolean bool(Map<String, Object> c, String key, boolean dflt) {
        Object v = c.get(key);
        return v == null ? dflt : Boolean.TRUE.equals(v);
    }

    private static String string(Map<String, Object> c, String key, String dflt) {
        Object v = c.get(key);
        return v == null ? dflt : String.valueOf(v);
    }
}
