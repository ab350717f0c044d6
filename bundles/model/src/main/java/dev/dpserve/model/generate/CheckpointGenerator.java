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
 * Writes a random Llama or Qwen2 checkpoint in Hugging Face layout: config.json,
 * generation_config.json, model.safetensors (or shards plus model.safetensors.index.json),
 * tokenizer.json (a byte-level BPE learned from a built-in corpus) and tokenizer_config.json.
 * The output is a pure function of the {@link Options}: the same seed gives identical bytes.
 *
 * <p>Weights are roughly normal from a splitmix64 stream keyed by tensor name: std 1/sqrt(fan-in)
 * for projections, 0.02 for the LM head, see {@link #embeddingStd} for embeddings; norms are 1.
 * The text a random model generates is noise, but not one token repeated.
 *
 * <pre>{@code
 * CheckpointGenerator --arch llama|qwen2 --out DIR [--seed 0] [--hidden 256] [--layers 4]
 *     [--heads 8] [--kv-heads 4] [--intermediate 688] [--vocab 2048] [--max-position 4096]
 *     [--dtype f32|bf16|f16] [--tie-embeddings] [--shard-size-mb N]
 * }</pre>
 */
public final class CheckpointGenerator {

    public static final String BOS = "<|begin_of_text|>";
    public static final String EOS = "<|end_of_text|>";
    public static final int BOS_ID = 0;
    public static final int EOS_ID = 1;

    private static final float STD = 0.02f;

    /**
     * What to generate.
     *
     * @param arch        "llama" or "qwen2"
     * @param shardSizeMb split the weights into shards of at most this many MiB (0 = one file)
     */
    public record Options(String arch, Path out, long seed, int hidden, int layers, int heads, int kvHeads,
                          int intermediate, int vocab, int maxPosition, DType dtype, boolean tieEmbeddings,
                          int shardSizeMb) {

        public Options {
            if (!arch.equals("llama") && !arch.equals("qwen2")) throw new IllegalArgumentException("--arch must be llama or qwen2, got " + arch);
            if (hidden <= 0 || layers <= 0 || heads <= 0 || kvHeads <= 0 || intermediate <= 0 || maxPosition <= 0 || shardSizeMb < 0) {
                throw new IllegalArgumentException("sizes must be positive");
            }
            if (hidden % heads != 0) throw new IllegalArgumentException("--hidden " + hidden + " is not a multiple of --heads " + heads);
            if (heads % kvHeads != 0) throw new IllegalArgumentException("--heads " + heads + " is not a multiple of --kv-heads " + kvHeads);
            if ((hidden / heads) % 2 != 0) throw new IllegalArgumentException("head dim " + hidden / heads + " must be even");
            if (vocab < 258) throw new IllegalArgumentException("--vocab must be at least 258 (2 special + 256 byte tokens)");
            if (dtype != DType.F32 && dtype != DType.BF16 && dtype != DType.F16) throw new IllegalArgumentException("--dtype must be f32, bf16 or f16");
        }

        /** The defaults for {@code arch} written to {@code out}. */
        public static Options defaults(String arch, Path out) {
            return new Options(arch, out, 0, 256, 4, 8, 4, 688, 2048, 4096, DType.F32, false, 0);
        }

        /** Parses command-line flags; IllegalArgumentException with a message for bad ones. */
        public static Options parse(String... args) {
            String arch = "llama";
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
                    default -> throw new IllegalArgumentException("unknown flag " + flag);
                }
            }
            if (out == null) throw new IllegalArgumentException("--out DIR is required");
            return new Options(arch, out, seed, hidden, layers, heads, kvHeads, intermediate, vocab, maxPosition, dtype, tie, shard);
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

    private static final String USAGE = """
            usage: CheckpointGenerator --arch llama|qwen2 --out DIR [--seed 0] [--hidden 256] [--layers 4]
                   [--heads 8] [--kv-heads 4] [--intermediate 688] [--vocab 2048] [--max-position 4096]
                   [--dtype f32|bf16|f16] [--tie-embeddings] [--shard-size-mb N]""";

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
                "torch_dtype", switch (o.dtype()) {
                    case BF16 -> "bfloat16";
                    case F16 -> "float16";
                    default -> "float32";
                },
                "use_cache", true,
                "vocab_size", o.vocab());
        if (qwen) c.put("use_sliding_window", false);
        return c;
    }

    /** The tensors in Hugging Face order with their HF names. */
    private static List<SafetensorsWriter.Entry> tensors(Options o) {
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
        SplitMix64 rnd = SplitMix64.keyed(o.seed(), name);
        return new SafetensorsWriter.Entry(name, o.dtype(), shape, (chunk, count) -> {
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
