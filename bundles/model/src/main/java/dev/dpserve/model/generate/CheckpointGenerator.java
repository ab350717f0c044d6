// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model.generate;

import static dev.dpserve.model.generate.ByteLevelBpe.object;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.dpserve.api.tensor.DType;
import dev.dpserve.model.safetensors.SafetensorsCheckpoint;
import dev.dpserve.model.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * Writes a random Llama, Qwen2 or DeepSeek-V3 checkpoint in Hugging Face layout: config.json,
 * generation_config.json, model.safetensors (or shards plus model.safetensors.index.json),
 * tokenizer.json (a byte-level BPE learned from a built-in corpus) and tokenizer_config.json.
 * The output is a pure function of the {@link Options}: the same seed gives identical bytes.
 *
 * <p>Weights are roughly normal from a splitmix64 stream keyed by tensor name: std 1/sqrt(fan-in)
 * for projections, 0.02 for the LM head, see {@link #embeddingStd} for embeddings; norms are 1.
 * The text a random model generates is noise, but not one token repeated.
 *
 * <p>DeepSeek-V3 checkpoints ({@code --arch deepseek_v3}) use the exact Hugging Face tensor names
 * (MLA with q/kv LoRA projections, dense first layers, routed plus shared experts, a nonzero
 * {@code e_score_correction_bias} stored as F32, YaRN rope_scaling) and optionally multi-token
 * prediction layer tensors after the decoder layers, which servers skip.
 *
 * <pre>{@code
 * CheckpointGenerator --arch llama|qwen2|deepseek_v3 --out DIR [--seed 0] [--hidden 256] [--layers 4]
 *     [--heads 8] [--kv-heads 4] [--intermediate 688] [--vocab 2048] [--max-position 4096]
 *     [--dtype f32|bf16|f16] [--tie-embeddings] [--shard-size-mb N]
 *   deepseek_v3 only (defaults: --heads 4, --vocab 768):
 *     [--q-lora-rank 64 (0 = plain q_proj)] [--kv-lora-rank 32] [--qk-nope-dim 32] [--qk-rope-dim 16]
 *     [--v-head-dim 32] [--moe-intermediate 128] [--experts 8] [--groups 2] [--topk-group 1]
 *     [--experts-per-token 2] [--shared-experts 1] [--first-dense 1] [--rope-factor 4 (0 = no YaRN)]
 *     [--nextn-layers 0]
 * }</pre>
 */
public final class CheckpointGenerator {

    public static final String BOS = "<|begin_of_text|>";
    public static final String EOS = "<|end_of_text|>";
    public static final int BOS_ID = 0;
    public static final int EOS_ID = 1;

    private static final float STD = 0.02f;
    private static final String DEEPSEEK_V3 = "deepseek_v3";

    /**
     * What to generate.
     *
     * @param arch        "llama", "qwen2" or "deepseek_v3"
     * @param kvHeads     ignored by deepseek_v3 (MLA has one shared latent)
     * @param shardSizeMb split the weights into shards of at most this many MiB (0 = one file)
     * @param deepseek    the DeepSeek-V3 shape (ignored by the other architectures)
     */
    public record Options(String arch, Path out, long seed, int hidden, int layers, int heads, int kvHeads,
                          int intermediate, int vocab, int maxPosition, DType dtype, boolean tieEmbeddings,
                          int shardSizeMb, Deepseek deepseek) {

        public Options {
            if (!List.of("llama", "qwen2", DEEPSEEK_V3).contains(arch)) {
                throw new IllegalArgumentException("--arch must be llama, qwen2 or deepseek_v3, got " + arch);
            }
            if (hidden <= 0 || layers <= 0 || heads <= 0 || kvHeads <= 0 || intermediate <= 0 || maxPosition <= 0 || shardSizeMb < 0) {
                throw new IllegalArgumentException("sizes must be positive");
            }
            if (!arch.equals(DEEPSEEK_V3)) {
                if (hidden % heads != 0) throw new IllegalArgumentException("--hidden " + hidden + " is not a multiple of --heads " + heads);
                if (heads % kvHeads != 0) throw new IllegalArgumentException("--heads " + heads + " is not a multiple of --kv-heads " + kvHeads);
                if ((hidden / heads) % 2 != 0) throw new IllegalArgumentException("head dim " + hidden / heads + " must be even");
            } else {
                deepseek.check(layers);
            }
            if (vocab < 258) throw new IllegalArgumentException("--vocab must be at least 258 (2 special + 256 byte tokens)");
            if (dtype != DType.F32 && dtype != DType.BF16 && dtype != DType.F16) throw new IllegalArgumentException("--dtype must be f32, bf16 or f16");
        }

        /**
         * The defaults for {@code arch} written to {@code out}. deepseek_v3: hidden 256, 4 layers
         * (the first dense), 4 heads and the {@link Deepseek} defaults, about 4.6M parameters; its
         * vocabulary of 768 stays below the ~936 tokens the BPE learns from the built-in corpus, so
         * every id the model can emit decodes to text.
         */
        public static Options defaults(String arch, Path out) {
            if (arch.equals(DEEPSEEK_V3)) return new Options(arch, out, 0, 256, 4, 4, 4, 688, 768, 4096, DType.F32, false, 0, Deepseek.DEFAULTS);
            return new Options(arch, out, 0, 256, 4, 8, 4, 688, 2048, 4096, DType.F32, false, 0, Deepseek.DEFAULTS);
        }

        /** Parses command-line flags; IllegalArgumentException with a message for bad ones. */
        public static Options parse(String... args) {
            String arch = "llama";
            for (int i = 0; i + 1 < args.length; i++) {
                if (args[i].equals("--arch")) arch = args[i + 1];
            }
            Path out = null;
            Options d = defaults(arch, Path.of("."));
            long seed = d.seed;
            int hidden = d.hidden;
            int layers = d.layers;
            int heads = d.heads;
            int kvHeads = d.kvHeads;
            int intermediate = d.intermediate;
            int vocab = d.vocab;
            int maxPosition = d.maxPosition;
            DType dtype = d.dtype;
            boolean tie = false;
            int shard = 0;
            Map<String, Integer> deepseekFlags = new TreeMap<>();
            for (int i = 0; i < args.length; i++) {
                String flag = args[i];
                if (flag.equals("--tie-embeddings")) {
                    tie = true;
                    continue;
                }
                if (i + 1 >= args.length) throw new IllegalArgumentException("missing value for " + flag);
                String v = args[++i];
                switch (flag) {
                    case "--arch" -> arch = v;
                    case "--out" -> out = Path.of(v);
                    case "--seed" -> seed = number(flag, v);
                    case "--hidden" -> hidden = (int) number(flag, v);
                    case "--layers" -> layers = (int) number(flag, v);
                    case "--heads" -> heads = (int) number(flag, v);
                    case "--kv-heads" -> kvHeads = (int) number(flag, v);
                    case "--intermediate" -> intermediate = (int) number(flag, v);
                    case "--vocab" -> vocab = (int) number(flag, v);
                    case "--max-position" -> maxPosition = (int) number(flag, v);
                    case "--shard-size-mb" -> shard = (int) number(flag, v);
                    case "--dtype" -> dtype = switch (v.toLowerCase(Locale.ROOT)) {
                        case "f32" -> DType.F32;
                        case "bf16" -> DType.BF16;
                        case "f16" -> DType.F16;
                        default -> throw new IllegalArgumentException("--dtype must be f32, bf16 or f16, got " + v);
                    };
                    default -> {
                        if (!Deepseek.FLAGS.contains(flag)) throw new IllegalArgumentException("unknown flag " + flag);
                        deepseekFlags.put(flag, (int) number(flag, v));
                    }
                }
            }
            if (out == null) throw new IllegalArgumentException("--out DIR is required");
            return new Options(arch, out, seed, hidden, layers, heads, kvHeads, intermediate, vocab, maxPosition, dtype, tie, shard, Deepseek.from(deepseekFlags));
        }

        private static long number(String flag, String v) {
            try {
                return Long.parseLong(v);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(flag + " needs an integer, got " + v);
            }
        }

        int headDim() {
            return hidden / heads;
        }
    }

    /**
     * The DeepSeek-V3 specific shape.
     *
     * @param qLoraRank  0 writes a plain q_proj (as DeepSeek-V2-Lite)
     * @param firstDense layers [0, firstDense) use the dense MLP of size {@code --intermediate}
     * @param ropeFactor YaRN factor over an original context of maxPosition / factor; 0 = no rope_scaling
     * @param nextnLayers multi-token-prediction layers written after the decoder layers
     */
    public record Deepseek(int qLoraRank, int kvLoraRank, int qkNopeDim, int qkRopeDim, int vHeadDim, int moeIntermediate,
                           int experts, int groups, int topkGroup, int expertsPerToken, int sharedExperts, int firstDense,
                           int ropeFactor, int nextnLayers) {

        static final Deepseek DEFAULTS = new Deepseek(64, 32, 32, 16, 32, 128, 8, 2, 1, 2, 1, 1, 4, 0);

        /** The deepseek_v3 flags, each an int. */
        static final List<String> FLAGS = List.of("--q-lora-rank", "--kv-lora-rank", "--qk-nope-dim", "--qk-rope-dim",
                "--v-head-dim", "--moe-intermediate", "--experts", "--groups", "--topk-group", "--experts-per-token",
                "--shared-experts", "--first-dense", "--rope-factor", "--nextn-layers");

        /** The defaults overridden by {@code flags} (keys from {@link #FLAGS}). */
        static Deepseek from(Map<String, Integer> flags) {
            Deepseek d = DEFAULTS;
            return new Deepseek(flags.getOrDefault("--q-lora-rank", d.qLoraRank), flags.getOrDefault("--kv-lora-rank", d.kvLoraRank),
                    flags.getOrDefault("--qk-nope-dim", d.qkNopeDim), flags.getOrDefault("--qk-rope-dim", d.qkRopeDim),
                    flags.getOrDefault("--v-head-dim", d.vHeadDim), flags.getOrDefault("--moe-intermediate", d.moeIntermediate),
                    flags.getOrDefault("--experts", d.experts), flags.getOrDefault("--groups", d.groups),
                    flags.getOrDefault("--topk-group", d.topkGroup), flags.getOrDefault("--experts-per-token", d.expertsPerToken),
                    flags.getOrDefault("--shared-experts", d.sharedExperts), flags.getOrDefault("--first-dense", d.firstDense),
                    flags.getOrDefault("--rope-factor", d.ropeFactor), flags.getOrDefault("--nextn-layers", d.nextnLayers));
        }

        void check(int layers) {
            if (qLoraRank < 0 || kvLoraRank <= 0 || qkNopeDim <= 0 || qkRopeDim <= 0 || vHeadDim <= 0 || moeIntermediate <= 0
                    || experts <= 0 || groups <= 0 || expertsPerToken <= 0 || sharedExperts < 0 || firstDense < 0
                    || ropeFactor < 0 || nextnLayers < 0) {
                throw new IllegalArgumentException("deepseek_v3 sizes must be positive: " + this);
            }
            if (qkRopeDim % 2 != 0) throw new IllegalArgumentException("--qk-rope-dim must be even, got " + qkRopeDim);
            if (experts % groups != 0 || experts / groups < 2) {
                throw new IllegalArgumentException("--experts " + experts + " must split into --groups " + groups + " of at least 2");
            }
            if (topkGroup <= 0 || topkGroup > groups || expertsPerToken > topkGroup * (experts / groups)) {
                throw new IllegalArgumentException("--topk-group " + topkGroup + " groups must hold --experts-per-token " + expertsPerToken);
            }
            if (firstDense > layers) throw new IllegalArgumentException("--first-dense " + firstDense + " exceeds --layers " + layers);
        }
    }

    private static final String USAGE = """
            usage: CheckpointGenerator --arch llama|qwen2|deepseek_v3 --out DIR [--seed 0] [--hidden 256] [--layers 4]
                   [--heads 8] [--kv-heads 4] [--intermediate 688] [--vocab 2048] [--max-position 4096]
                   [--dtype f32|bf16|f16] [--tie-embeddings] [--shard-size-mb N]
              deepseek_v3 only (defaults: --heads 4, --vocab 768):
                   [--q-lora-rank 64 (0 = plain q_proj)] [--kv-lora-rank 32] [--qk-nope-dim 32] [--qk-rope-dim 16]
                   [--v-head-dim 32] [--moe-intermediate 128] [--experts 8] [--groups 2] [--topk-group 1]
                   [--experts-per-token 2] [--shared-experts 1] [--first-dense 1] [--rope-factor 4 (0 = no YaRN)]
                   [--nextn-layers 0]""";

    private CheckpointGenerator() {
    }

    public static void main(String[] args) throws IOException {
        Options o;
        try {
            o = Options.parse(args);
        } catch (IllegalArgumentException e) {
            System.err.println("error: " + e.getMessage());
            System.err.println(USAGE);
            System.exit(2);
            return;
        }
        generate(o);
        System.out.println("wrote " + o.out());
    }

    /** Writes the checkpoint into {@code o.out()} (created if needed; existing files are overwritten). */
    public static void generate(Options o) throws IOException {
        Files.createDirectories(o.out());
        ObjectMapper json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        ByteLevelBpe bpe = new ByteLevelBpe(ByteLevelBpe.CORPUS, o.vocab(), List.of(BOS, EOS));
        json.writeValue(o.out().resolve("config.json").toFile(), config(o));
        json.writeValue(o.out().resolve("generation_config.json").toFile(),
                object("bos_token_id", BOS_ID, "eos_token_id", EOS_ID, "do_sample", false));
        json.writeValue(o.out().resolve("tokenizer.json").toFile(), bpe.tokenizerJson());
        json.writeValue(o.out().resolve("tokenizer_config.json").toFile(), object(
                "add_bos_token", true,
                "add_eos_token", false,
                "bos_token", BOS,
                "eos_token", EOS,
                "clean_up_tokenization_spaces", false,
                "model_max_length", o.maxPosition(),
                "tokenizer_class", "PreTrainedTokenizerFast",
                "chat_template", "{{ bos_token }}{% for message in messages %}{{ message['role'] }}: "
                        + "{{ message['content'] }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}"));
        writeWeights(o, json);
    }

    private static Map<String, Object> config(Options o) {
        if (o.arch().equals(DEEPSEEK_V3)) return deepseekConfig(o);
        boolean qwen = o.arch().equals("qwen2");
        Map<String, Object> c = object(
                "architectures", List.of(qwen ? "Qwen2ForCausalLM" : "LlamaForCausalLM"),
                "model_type", o.arch(),
                "attention_bias", qwen,
                "bos_token_id", BOS_ID,
                "eos_token_id", EOS_ID,
                "head_dim", o.headDim(),
                "hidden_act", "silu",
                "hidden_size", o.hidden(),
                "initializer_range", STD,
                "intermediate_size", o.intermediate(),
                "max_position_embeddings", o.maxPosition(),
                "num_attention_heads", o.heads(),
                "num_hidden_layers", o.layers(),
                "num_key_value_heads", o.kvHeads(),
                "rms_norm_eps", qwen ? 1e-6 : 1e-5,
                "rope_theta", qwen ? 1000000.0 : 500000.0,
                "tie_word_embeddings", o.tieEmbeddings(),
                "torch_dtype", torchDtype(o.dtype()),
                "use_cache", true,
                "vocab_size", o.vocab());
        if (qwen) c.put("use_sliding_window", false);
        return c;
    }

    private static String torchDtype(DType dtype) {
        return switch (dtype) {
            case BF16 -> "bfloat16";
            case F16 -> "float16";
            default -> "float32";
        };
    }

    /** A config.json as DeepSeek-V3's own (transformers 4.46 keys). */
    private static Map<String, Object> deepseekConfig(Options o) {
        Deepseek d = o.deepseek();
        Map<String, Object> rope = d.ropeFactor() == 0 ? null : object(
                "beta_fast", 32,
                "beta_slow", 1,
                "factor", d.ropeFactor(),
                "mscale", 1.0,
                "mscale_all_dim", 1.0,
                "original_max_position_embeddings", Math.max(1, o.maxPosition() / d.ropeFactor()),
                "type", "yarn");
        return object(
                "architectures", List.of("DeepseekV3ForCausalLM"),
                "attention_bias", false,
                "attention_dropout", 0.0,
                "aux_loss_alpha", 0.001,
                "bos_token_id", BOS_ID,
                "eos_token_id", EOS_ID,
                "ep_size", 1,
                "first_k_dense_replace", d.firstDense(),
                "hidden_act", "silu",
                "hidden_size", o.hidden(),
                "initializer_range", STD,
                "intermediate_size", o.intermediate(),
                "kv_lora_rank", d.kvLoraRank(),
                "max_position_embeddings", o.maxPosition(),
                "model_type", DEEPSEEK_V3,
                "moe_intermediate_size", d.moeIntermediate(),
                "moe_layer_freq", 1,
                "n_group", d.groups(),
                "n_routed_experts", d.experts(),
                "n_shared_experts", d.sharedExperts(),
                "norm_topk_prob", true,
                "num_attention_heads", o.heads(),
                "num_experts_per_tok", d.expertsPerToken(),
                "num_hidden_layers", o.layers(),
                "num_key_value_heads", o.heads(),
                "num_nextn_predict_layers", d.nextnLayers(),
                "pretraining_tp", 1,
                "q_lora_rank", d.qLoraRank() == 0 ? null : d.qLoraRank(),
                "qk_nope_head_dim", d.qkNopeDim(),
                "qk_rope_head_dim", d.qkRopeDim(),
                "rms_norm_eps", 1e-6,
                "rope_scaling", rope,
                "rope_theta", 10000.0,
                "routed_scaling_factor", 2.5,
                "scoring_func", "sigmoid",
                "seq_aux", true,
                "tie_word_embeddings", o.tieEmbeddings(),
                "topk_group", d.topkGroup(),
                "topk_method", "noaux_tc",
                "torch_dtype", torchDtype(o.dtype()),
                "use_cache", true,
                "v_head_dim", d.vHeadDim(),
                "vocab_size", o.vocab());
    }

    /** The tensors in Hugging Face order with their HF names. */
    private static List<SafetensorsWriter.Entry> tensors(Options o) {
        if (o.arch().equals(DEEPSEEK_V3)) return deepseekTensors(o);
        List<SafetensorsWriter.Entry> t = new ArrayList<>();
        int h = o.hidden();
        int q = o.heads() * o.headDim();
        int kv = o.kvHeads() * o.headDim();
        t.add(random(o, "model.embed_tokens.weight", embeddingStd(o), o.vocab(), h));
        for (int l = 0; l < o.layers(); l++) {
            String p = "model.layers." + l + ".";
            t.add(ones(o, p + "input_layernorm.weight", h));
            t.add(random(o, p + "self_attn.q_proj.weight", projectionStd(h), q, h));
            t.add(random(o, p + "self_attn.k_proj.weight", projectionStd(h), kv, h));
            t.add(random(o, p + "self_attn.v_proj.weight", projectionStd(h), kv, h));
            if (o.arch().equals("qwen2")) {
                t.add(random(o, p + "self_attn.q_proj.bias", STD, q));
                t.add(random(o, p + "self_attn.k_proj.bias", STD, kv));
                t.add(random(o, p + "self_attn.v_proj.bias", STD, kv));
            }
            t.add(random(o, p + "self_attn.o_proj.weight", projectionStd(q), h, q));
            t.add(ones(o, p + "post_attention_layernorm.weight", h));
            t.add(random(o, p + "mlp.gate_proj.weight", projectionStd(h), o.intermediate(), h));
            t.add(random(o, p + "mlp.up_proj.weight", projectionStd(h), o.intermediate(), h));
            t.add(random(o, p + "mlp.down_proj.weight", projectionStd(o.intermediate()), h, o.intermediate()));
        }
        t.add(ones(o, "model.norm.weight", h));
        if (!o.tieEmbeddings()) t.add(random(o, "lm_head.weight", STD, o.vocab(), h));
        return t;
    }

    private static List<SafetensorsWriter.Entry> deepseekTensors(Options o) {
        Deepseek d = o.deepseek();
        List<SafetensorsWriter.Entry> t = new ArrayList<>();
        int h = o.hidden();
        int heads = o.heads();
        int qHead = d.qkNopeDim() + d.qkRopeDim();
        t.add(random(o, "model.embed_tokens.weight", embeddingStd(o), o.vocab(), h));
        for (int l = 0; l < o.layers() + d.nextnLayers(); l++) {
            String p = "model.layers." + l + ".";
            if (l >= o.layers()) {
                // a multi-token-prediction module: its own norms and projection around one more decoder layer
                t.add(ones(o, p + "enorm.weight", h));
                t.add(ones(o, p + "hnorm.weight", h));
                t.add(random(o, p + "eh_proj.weight", projectionStd(2 * h), h, 2 * h));
                t.add(ones(o, p + "shared_head.norm.weight", h));
            }
            t.add(ones(o, p + "input_layernorm.weight", h));
            String a = p + "self_attn.";
            if (d.qLoraRank() > 0) {
                t.add(random(o, a + "q_a_proj.weight", projectionStd(h), d.qLoraRank(), h));
                t.add(ones(o, a + "q_a_layernorm.weight", d.qLoraRank()));
                t.add(random(o, a + "q_b_proj.weight", projectionStd(d.qLoraRank()), heads * qHead, d.qLoraRank()));
            } else {
                t.add(random(o, a + "q_proj.weight", projectionStd(h), heads * qHead, h));
            }
            t.add(random(o, a + "kv_a_proj_with_mqa.weight", projectionStd(h), d.kvLoraRank() + d.qkRopeDim(), h));
            t.add(ones(o, a + "kv_a_layernorm.weight", d.kvLoraRank()));
            t.add(random(o, a + "kv_b_proj.weight", projectionStd(d.kvLoraRank()), heads * (d.qkNopeDim() + d.vHeadDim()), d.kvLoraRank()));
            t.add(random(o, a + "o_proj.weight", projectionStd(heads * d.vHeadDim()), h, heads * d.vHeadDim()));
            t.add(ones(o, p + "post_attention_layernorm.weight", h));
            if (l < d.firstDense()) {
                mlp(o, t, p + "mlp.", o.intermediate());
                continue;
            }
            for (int e = 0; e < d.experts(); e++) mlp(o, t, p + "mlp.experts." + e + ".", d.moeIntermediate());
            t.add(random(o, p + "mlp.gate.weight", projectionStd(h), d.experts(), h));
            // F32 in real checkpoints too; large enough to change which experts win
            t.add(random(o, DType.F32, p + "mlp.gate.e_score_correction_bias", 0.1f, d.experts()));
            if (d.sharedExperts() > 0) mlp(o, t, p + "mlp.shared_experts.", d.moeIntermediate() * d.sharedExperts());
        }
        t.add(ones(o, "model.norm.weight", h));
        if (!o.tieEmbeddings()) t.add(random(o, "lm_head.weight", STD, o.vocab(), h));
        return t;
    }

    private static void mlp(Options o, List<SafetensorsWriter.Entry> t, String p, int inter) {
        t.add(random(o, p + "gate_proj.weight", projectionStd(o.hidden()), inter, o.hidden()));
        t.add(random(o, p + "up_proj.weight", projectionStd(o.hidden()), inter, o.hidden()));
        t.add(random(o, p + "down_proj.weight", projectionStd(inter), o.hidden(), inter));
    }

    /**
     * Projections get unit gain (std 1/sqrt(fan-in), about 0.02 at real sizes) so that every block
     * changes the residual stream and the SiLU is not a near-linear map. The embedding std depends
     * on tying: an untied model needs large embeddings for the current token to steer the next one;
     * a tied LM head needs small ones, or its self-similarity makes greedy decoding repeat the input
     * token forever. (Measured: with 0.02 everywhere greedy text collapses to one token.)
     */
    private static float projectionStd(int fanIn) {
        return (float) (1 / Math.sqrt(fanIn));
    }

    private static float embeddingStd(Options o) {
        return o.tieEmbeddings() ? STD : 1f;
    }

    private static SafetensorsWriter.Entry random(Options o, String name, float std, long... shape) {
        return random(o, o.dtype(), name, std, shape);
    }

    private static SafetensorsWriter.Entry random(Options o, DType dtype, String name, float std, long... shape) {
        SplitMix64 rnd = SplitMix64.keyed(o.seed(), name);
        return new SafetensorsWriter.Entry(name, dtype, shape, (chunk, count) -> {
            for (int i = 0; i < count; i++) chunk[i] = rnd.nextGaussianish(std);
        });
    }

    private static SafetensorsWriter.Entry ones(Options o, String name, long... shape) {
        return new SafetensorsWriter.Entry(name, o.dtype(), shape, (chunk, count) -> java.util.Arrays.fill(chunk, 0, count, 1f));
    }

    private static void writeWeights(Options o, ObjectMapper json) throws IOException {
        List<SafetensorsWriter.Entry> all = tensors(o);
        long limit = o.shardSizeMb() * (1L << 20);
        List<List<SafetensorsWriter.Entry>> shards = new ArrayList<>();
        List<SafetensorsWriter.Entry> current = new ArrayList<>();
        long size = 0;
        long total = 0;
        for (SafetensorsWriter.Entry e : all) {
            if (limit > 0 && !current.isEmpty() && size + e.byteSize() > limit) {
                shards.add(current);
                current = new ArrayList<>();
                size = 0;
            }
            current.add(e);
            size += e.byteSize();
            total += e.byteSize();
        }
        shards.add(current);
        Map<String, String> metadata = Map.of("format", "pt");
        Files.deleteIfExists(o.out().resolve(SafetensorsCheckpoint.INDEX_FILE));
        if (shards.size() == 1) {
            SafetensorsWriter.write(o.out().resolve(SafetensorsCheckpoint.SINGLE_FILE), all, metadata);
            return;
        }
        Files.deleteIfExists(o.out().resolve(SafetensorsCheckpoint.SINGLE_FILE));
        Map<String, String> weightMap = new TreeMap<>();
        for (int i = 0; i < shards.size(); i++) {
            String file = String.format(Locale.ROOT, "model-%05d-of-%05d.safetensors", i + 1, shards.size());
            SafetensorsWriter.write(o.out().resolve(file), shards.get(i), metadata);
            for (SafetensorsWriter.Entry e : shards.get(i)) weightMap.put(e.name(), file);
        }
        json.writeValue(o.out().resolve(SafetensorsCheckpoint.INDEX_FILE).toFile(),
                object("metadata", object("total_size", total), "weight_map", weightMap));
    }
}
