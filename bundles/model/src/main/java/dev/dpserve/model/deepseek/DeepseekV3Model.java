// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model.deepseek;

import dev.dpserve.api.model.CausalLm;
import dev.dpserve.api.model.KvCacheLayout;
import dev.dpserve.api.model.ModelInfo;
import dev.dpserve.api.model.ModelSource;
import dev.dpserve.api.tensor.DType;
import dev.dpserve.api.tensor.KernelBackend;
import dev.dpserve.api.tensor.Tensor;
import dev.dpserve.model.BatchLayout;
import dev.dpserve.model.FloatOps;
import dev.dpserve.model.Linear;
import dev.dpserve.model.LmHead;
import dev.dpserve.model.PagedKvStore;
import dev.dpserve.model.SwiGlu;
import dev.dpserve.model.WeightLoader;
import dev.dpserve.model.safetensors.SafetensorsCheckpoint;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Function;
import java.util.logging.Logger;
import java.util.stream.IntStream;

/**
 * The DeepSeek-V3 decoder (also DeepSeek-V2): token embedding, then per layer
 * {@code x += o(MLA(norm(x)))} and {@code x += MLP(norm(x))}, where the MLP is dense for the first
 * {@code first_k_dense_replace} layers and a mixture of experts after, then a final RMSNorm and the
 * LM head. Weights stay memory-mapped in their stored dtype (or are converted once to the requested
 * dtype); activations and the cache are F32.
 *
 * <p>MLA (multi-head latent attention) caches per token and layer only the RMS-normalised KV latent
 * ({@code kv_lora_rank}) and the roped key shared by all heads ({@code qk_rope_head_dim}), in the
 * engine's paged cache ({@link KvCacheLayout#MLA}): each entry writes its tokens to the slots of its
 * block table and reads its context through it. Heads see
 * keys {@code [W_UK·latent ‖ k_pe]} and values {@code W_UV·latent}, with W_UK and W_UV the per-head
 * row blocks of {@code kv_b_proj}. Decode uses the absorbed form: the query is mapped into latent
 * space ({@code q_nope·W_UK}), attention runs over the cache itself and W_UV is applied to the
 * attended latent. Prefill chunks use whichever form costs fewer multiply-adds (usually the
 * expanded one, which materialises keys and values for the context). Both give the same scores.
 *
 * <p>MoE routing follows DeepSeek's grouped top-k: sigmoid (or softmax) scores, a per-expert bias
 * ({@code e_score_correction_bias}, noaux_tc) that only steers selection, the best
 * {@code topk_group} groups, then the top {@code num_experts_per_tok} experts, weighted by their
 * unbiased scores. Experts run batched: each routed expert multiplies all its tokens at once.
 *
 * <p>A forward batch concatenates the tokens of all entries into one (T, hidden) matrix, so every
 * dense weight matmul runs once per layer for the whole batch whatever mix of prefill chunks and
 * decode tokens it holds; the LM head runs only for the last token of each entry that wants logits.
 * Not thread-safe: one engine loop drives a model.
 */
public final class DeepseekV3Model implements CausalLm {

    private static final Logger LOG = Logger.getLogger(DeepseekV3Model.class.getName());

    /** Which attention form an entry uses; AUTO is the served choice, the others are for tests. */
    enum AttentionForm { AUTO, ABSORBED, EXPANDED }

    private final DeepseekV3Config config;
    private final ModelInfo info;
    private final SafetensorsCheckpoint checkpoint; // owns the memory mappings
    private final Arena convertedWeights;           // converted weights and the W_UKᵀ copies

    // ---- weights
    private final Tensor embedTokens; // (vocab, hidden)
    private final Layer[] layers;     // (numLayers,)
    private final LmHead lmHead;      // model.norm, then lm_head (vocab, hidden) or embed_tokens when tied

    // ---- RoPE and attention scale
    private final double[] invFreq;   // (rope/2,) after YaRN
    private final double ropeMscale;  // cos/sin magnitude (1 unless mscale != mscale_all_dim)
    private final float softmaxScale;

    // ---- paged MLA cache: per token and layer the normed latent ‖ the roped k_pe (cacheDim)
    private final PagedKvStore kv;

    private AttentionForm attentionForm = AttentionForm.AUTO;
    private Scratch scratch;
    private boolean closed;

    /** Multi-head latent attention of one layer. */
    record Attention(Linear qA,        // (qLora, hidden) q_a_proj; null when queries use q_proj
                     float[] qANorm,   // (qLora,) q_a_layernorm
                     Linear qB,        // (heads·qHead, qLora) q_b_proj, or (heads·qHead, hidden) q_proj
                     Linear kvA,       // (kvLora + rope, hidden) kv_a_proj_with_mqa
                     float[] kvANorm,  // (kvLora,) kv_a_layernorm
                     Linear kvB,       // (heads·(nope + v), kvLora) kv_b_proj
                     Linear[] ukT,     // [head] (kvLora, nope) W_UKᵀ, a transposed copy of kv_b_proj rows
                     Linear[] uv,      // [head] (v, kvLora) W_UV, a view of kv_b_proj rows
                     Linear o) {       // (hidden, heads·v) o_proj
    }

    record Moe(Linear router,    // (experts, hidden) mlp.gate, not converted: logits stay as precise as stored
               float[] bias,     // (experts,) e_score_correction_bias (noaux_tc), or null
               SwiGlu[] experts, // (experts,) intermediate moe_intermediate
               SwiGlu shared) {  // intermediate moe_intermediate·n_shared, or null
    }

    record Layer(float[] attnNorm, // (hidden,) input_layernorm
                 Attention attn,
                 float[] mlpNorm,  // (hidden,) post_attention_layernorm
                 SwiGlu dense,     // null on MoE layers
                 Moe moe) {        // null on dense layers
    }

    /**
     * Maps the checkpoint in {@code source.dir()} and builds the model. {@code kernelsFor} picks the
     * kernel backend for a weight dtype. IllegalArgumentException for missing or misshapen tensors,
     * FP8 checkpoints and unsupported configurations.
     */
    public static DeepseekV3Model load(ModelSource source, Function<DType, KernelBackend> kernelsFor) throws IOException {
        DeepseekV3Config config = DeepseekV3Config.from(source.config());
        rejectFp8(source.config().get("quantization_config"));
        DType requested = WeightLoader.requestedDtype(source.dtype());
        SafetensorsCheckpoint checkpoint;
        try {
            checkpoint = SafetensorsCheckpoint.open(source.dir());
        } catch (IOException e) {
            if (String.valueOf(e.getMessage()).contains("F8_")) throw new IllegalArgumentException(fp8Message(e.getMessage()), e);
            throw e;
        }
        try {
            return new DeepseekV3Model(config, checkpoint, requested, kernelsFor);
        } catch (RuntimeException e) {
            checkpoint.close();
            throw e;
        }
    }

    private static void rejectFp8(Object quantization) {
        if (quantization instanceof Map<?, ?> q && q.get("quant_method") != null) {
            throw new IllegalArgumentException(fp8Message("quantization_config.quant_method=" + q.get("quant_method")));
        }
    }

    private static String fp8Message(String cause) {
        return "quantized DeepSeek checkpoints are not supported (" + cause + "): convert FP8 weights with their "
                + "weight_scale_inv block scales to BF16 with DeepSeek-V3's inference/fp8_cast_bf16.py "
                + "(--input-fp8-hf-path IN --output-bf16-hf-path OUT) and remove quantization_config from config.json";
    }

    private DeepseekV3Model(DeepseekV3Config c, SafetensorsCheckpoint ckpt, DType requested,
                            Function<DType, KernelBackend> kernelsFor) {
        this.config = c;
        this.checkpoint = ckpt;
        this.convertedWeights = Arena.ofShared();
        try {
            for (String name : ckpt.tensors().keySet()) {
                if (name.endsWith("weight_scale_inv")) throw new IllegalArgumentException(fp8Message("tensor " + name));
            }
            WeightLoader w = new WeightLoader(ckpt, requested, kernelsFor, convertedWeights);
            int h = c.hiddenSize();
            this.embedTokens = w.matrix("model.embed_tokens.weight", c.vocabSize(), h);
            this.layers = new Layer[c.numLayers()];
            for (int i = 0; i < layers.length; i++) {
                String p = "model.layers." + i + ".";
                layers[i] = new Layer(w.vector(p + "input_layernorm.weight", h), attention(w, p + "self_attn."),
                        w.vector(p + "post_attention_layernorm.weight", h),
                        c.isMoeLayer(i) ? null : w.swiGlu(p + "mlp.", c.intermediateSize(), h, false),
                        c.isMoeLayer(i) ? moe(w, p + "mlp.") : null);
            }
            float[] finalNorm = w.vector("model.norm.weight", h);
            this.lmHead = new LmHead(finalNorm, c.rmsNormEps(), c.tieWordEmbeddings()
                    ? w.linear(embedTokens) : w.linear("lm_head", c.vocabSize(), h, false));
            logSkippedNextnLayers();
            this.invFreq = inverseFrequencies(c);
            DeepseekV3Config.RopeScaling s = c.ropeScaling();
            this.ropeMscale = s == null ? 1.0
                    : DeepseekV3Config.yarnMscale(s.factor(), s.mscale()) / DeepseekV3Config.yarnMscale(s.factor(), s.mscaleAllDim());
            this.softmaxScale = (float) c.softmaxScale();
            this.kv = new PagedKvStore(kvCacheLayout());
            this.info = new ModelInfo(c.modelType(), c.architecture(), c.vocabSize(), c.maxPositionEmbeddings(), h,
                    c.numLayers(), w.parameterCount(), w.weightBytes(), embedTokens.dtype().name(),
                    kvCacheLayout().bytesPerToken());
        } catch (RuntimeException e) {
            convertedWeights.close();
            throw e;
        }
    }

    private Attention attention(WeightLoader w, String p) {
        DeepseekV3Config c = config;
        int h = c.hiddenSize();
        int heads = c.numHeads();
        int nope = c.qkNopeHeadDim();
        int v = c.vHeadDim();
        int kvLora = c.kvLoraRank();
        boolean bias = c.attentionBias();
        Linear qA = null;
        float[] qANorm = null;
        Linear qB;
        if (c.qLoraRank() > 0) {
            qA = w.linear(p + "q_a_proj", c.qLoraRank(), h, bias);
            qANorm = w.vector(p + "q_a_layernorm.weight", c.qLoraRank());
            qB = w.linear(p + "q_b_proj", heads * c.qHeadDim(), c.qLoraRank(), false);
        } else {
            qB = w.linear(p + "q_proj", heads * c.qHeadDim(), h, false);
        }
        Linear kvB = w.linear(p + "kv_b_proj", heads * (nope + v), kvLora, false);
        Tensor kvBW = kvB.weight();
        long bytes = kvBW.dtype().byteSize();
        Linear[] ukT = new Linear[heads];
        Linear[] uv = new Linear[heads];
        for (int head = 0; head < heads; head++) {
            long rowUk = (long) head * (nope + v);
            MemorySegment t = transpose(kvBW.data().asSlice(rowUk * kvLora * bytes, (long) nope * kvLora * bytes), nope, kvLora, bytes);
            ukT[head] = new Linear(new Tensor(kvBW.name() + "[W_UK^T head " + head + "]", kvBW.dtype(), new long[] {kvLora, nope}, t),
                    null, kvB.kernels());
            MemorySegment rows = kvBW.data().asSlice((rowUk + nope) * kvLora * bytes, (long) v * kvLora * bytes);
            uv[head] = new Linear(new Tensor(kvBW.name() + "[W_UV head " + head + "]", kvBW.dtype(), new long[] {v, kvLora}, rows),
                    null, kvB.kernels());
        }
        return new Attention(qA, qANorm, qB,
                w.linear(p + "kv_a_proj_with_mqa", c.cacheDim(), h, bias),
                w.vector(p + "kv_a_layernorm.weight", kvLora), kvB, ukT, uv,
                w.linear(p + "o_proj", h, heads * v, bias));
    }

    /** A (cols, rows) copy of the row-major (rows, cols) matrix {@code m} of 2- or 4-byte elements, bit for bit. */
    private MemorySegment transpose(MemorySegment m, int rows, int cols, long bytes) {
        MemorySegment t = convertedWeights.allocate((long) rows * cols * bytes, 64);
        if (bytes == 4) {
            int[] src = m.toArray(ValueLayout.JAVA_INT_UNALIGNED);
            int[] dst = new int[src.length];
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < cols; c++) dst[c * rows + r] = src[r * cols + c];
            }
            MemorySegment.copy(dst, 0, t, ValueLayout.JAVA_INT_UNALIGNED, 0, dst.length);
        } else {
            short[] src = m.toArray(ValueLayout.JAVA_SHORT_UNALIGNED);
            short[] dst = new short[src.length];
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < cols; c++) dst[c * rows + r] = src[r * cols + c];
            }
            MemorySegment.copy(dst, 0, t, ValueLayout.JAVA_SHORT_UNALIGNED, 0, dst.length);
        }
        return t;
    }

    private Moe moe(WeightLoader w, String p) {
        DeepseekV3Config c = config;
        int h = c.hiddenSize();
        Tensor router = w.storedMatrix(p + "gate.weight", c.nRoutedExperts(), h);
        // as in DeepSeek's and vLLM's code, only noaux_tc routing has (and needs) the selection bias
        float[] bias = c.topkMethod().equals("noaux_tc") ? w.vector(p + "gate.e_score_correction_bias", c.nRoutedExperts()) : null;
        SwiGlu[] experts = new SwiGlu[c.nRoutedExperts()];
        for (int e = 0; e < experts.length; e++) {
            experts[e] = w.swiGlu(p + "experts." + e + ".", c.moeIntermediateSize(), h, false);
        }
        SwiGlu shared = c.nSharedExperts() > 0
                ? w.swiGlu(p + "shared_experts.", c.moeIntermediateSize() * c.nSharedExperts(), h, false) : null;
        return new Moe(w.linear(router), bias, experts, shared);
    }

    /** Multi-token-prediction layers follow the decoder layers in the checkpoint; serving does not run them. */
    private void logSkippedNextnLayers() {
        Set<Integer> skipped = new TreeSet<>();
        int tensors = 0;
        for (String name : checkpoint.tensors().keySet()) {
            if (!name.startsWith("model.layers.")) continue;
            int end = name.indexOf('.', "model.layers.".length());
            if (end < 0) continue;
            try {
                int layer = Integer.parseInt(name.substring("model.layers.".length(), end));
                if (layer >= config.numLayers()) {
                    skipped.add(layer);
                    tensors++;
                }
            } catch (NumberFormatException ignored) {
                // not a layer index
            }
        }
        if (!skipped.isEmpty()) {
            LOG.info("skipping " + tensors + " tensors of multi-token-prediction layers " + skipped
                    + " (num_nextn_predict_layers=" + config.numNextnPredictLayers() + "): speculative decoding is not supported");
        }
    }

    /**
     * YaRN frequencies for the rope dims ({@code deepseek_yarn}): dims rotating faster than
     * {@code beta_fast} turns over the original context keep their frequency, slower than
     * {@code beta_slow} are divided by {@code factor}, with a linear ramp between.
     */
    static double[] inverseFrequencies(DeepseekV3Config c) {
        int dim = c.qkRopeHeadDim();
        double base = c.ropeTheta();
        double[] f = new double[dim / 2];
        DeepseekV3Config.RopeScaling s = c.ropeScaling();
        double low = 0;
        double high = 0;
        if (s != null) {
            low = Math.max(Math.floor(correctionDim(s.betaFast(), dim, base, s.originalMaxPositionEmbeddings())), 0);
            high = Math.min(Math.ceil(correctionDim(s.betaSlow(), dim, base, s.originalMaxPositionEmbeddings())), dim - 1);
            if (low == high) high += 0.001;
        }
        for (int i = 0; i < f.length; i++) {
            double extrapolated = 1.0 / Math.pow(base, (2.0 * i) / dim);
            if (s == null) {
                f[i] = extrapolated;
                continue;
            }
            double ramp = Math.clamp((i - low) / (high - low), 0.0, 1.0);
            double keep = 1 - ramp;
            f[i] = extrapolated / s.factor() * (1 - keep) + extrapolated * keep;
        }
        return f;
    }

    /** The rope dim whose wavelength makes {@code rotations} turns over {@code originalMax} positions. */
    private static double correctionDim(double rotations, int dim, double base, int originalMax) {
        return dim * Math.log(originalMax / (rotations * 2 * Math.PI)) / (2 * Math.log(base));
    }

    public DeepseekV3Config config() {
        return config;
    }

    @Override
    public ModelInfo info() {
        return info;
    }

    /** Forces one attention form for every entry (tests compare the absorbed and expanded forms). */
    void attentionForm(AttentionForm form) {
        this.attentionForm = form;
    }

    @Override
    public KvCacheLayout kvCacheLayout() {
        return new KvCacheLayout(config.numLayers(), config.cacheDim(), KvCacheLayout.MLA);
    }

    @Override
    public void allocateKvCache(int numBlocks, int blockSize) {
        ensureOpen();
        kv.allocate(numBlocks, blockSize);
    }

    // ---------------------------------------------------------------- forward

    @Override
    public float[][] forward(List<BatchEntry> entries) {
        ensureOpen();
        BatchLayout batch = kv.prepare(entries, config.vocabSize());
        if (batch.size() == 0) return new float[0][];
        int total = batch.totalTokens();
        Scratch s = scratch(total);
        Step step = new Step(batch);
        int hidden = config.hiddenSize();
        double eps = config.rmsNormEps();
        batch.embed(embedTokens, s.x);
        FloatOps.ropeAngles(batch, invFreq, ropeMscale, s.cos, s.sin);

        for (int l = 0; l < layers.length; l++) {
            Layer layer = layers[l];
            FloatOps.rmsNorm(s.x, layer.attnNorm(), eps, s.xb, total);
            attention(l, layer.attn(), step, s);
            FloatOps.addInPlace(s.x, s.proj, total * hidden);

            FloatOps.rmsNorm(s.x, layer.mlpNorm(), eps, s.xb, total);
            if (layer.moe() != null) {
                moe(layer.moe(), total, s);
            } else {
                layer.dense().apply(s.xb, total, s.gate, s.up, s.proj);
            }
            FloatOps.addInPlace(s.x, s.proj, total * hidden);
        }
        return lmHead.logits(batch, s.x);
    }

    /** The entries of one forward call and which attention form each uses. */
    private final class Step {
        final BatchLayout batch;
        final boolean[] absorb; // (E,) absorbed (latent-space) attention
        final int absorbedTokens;

        Step(BatchLayout batch) {
            this.batch = batch;
            absorb = new boolean[batch.size()];
            int absorbed = 0;
            for (int i = 0; i < absorb.length; i++) {
                int n = batch.count(i);
                absorb[i] = switch (attentionForm) {
                    case ABSORBED -> true;
                    case EXPANDED -> false;
                    case AUTO -> n == 1 || absorbedIsCheaper(n, batch.start(i) + n);
                };
                if (absorb[i]) absorbed += n;
            }
            absorbedTokens = absorbed;
        }
    }

    /** Multiply-adds per head of both forms for n queries over ctx positions (projections included). */
    private boolean absorbedIsCheaper(int n, int ctx) {
        long lora = config.kvLoraRank();
        long nopeV = config.qkNopeHeadDim() + config.vHeadDim();
        long expanded = ctx * lora * nopeV + (long) n * ctx * (config.qHeadDim() + config.vHeadDim());
        long absorbed = n * lora * nopeV + (long) n * ctx * (2 * lora + config.qkRopeHeadDim());
        return absorbed < expanded;
    }

    /**
     * Interleaved (GPT-J) RoPE on {@code x[off, off + rope)} of token t: pairs (2i, 2i+1) turn by
     * angle i. Hugging Face's checkpoint code de-interleaves q and k before a rotate_half RoPE,
     * which permutes both alike and leaves every q·k unchanged.
     */
    private void rotate(float[] x, int off, Scratch s, int t) {
        int half = invFreq.length;
        for (int i = 0; i < half; i++) {
            float c = s.cos[t * half + i];
            float sn = s.sin[t * half + i];
            float a = x[off + 2 * i];
            float b = x[off + 2 * i + 1];
            x[off + 2 * i] = a * c - b * sn;
            x[off + 2 * i + 1] = b * c + a * sn;
        }
    }

    /**
     * MLA for the normed input s.xb: projects queries and the latent, writes each token's
     * {@code [norm(latent) ‖ rope(k_pe)]} to its slot, attends causally per entry in the entry's
     * form and leaves {@code o_proj} of the result in s.proj.
     */
    private void attention(int layer, Attention a, Step step, Scratch s) {
        DeepseekV3Config c = config;
        BatchLayout batch = step.batch;
        int total = batch.totalTokens();
        int heads = c.numHeads();
        int qHead = c.qHeadDim();
        int nope = c.qkNopeHeadDim();
        int lora = c.kvLoraRank();
        int cd = c.cacheDim();
        double eps = c.rmsNormEps();
        if (a.qA() != null) {
            a.qA().apply(s.xb, total, s.qLatent);
            FloatOps.rmsNorm(s.qLatent, a.qANorm(), eps, s.qLatent, total);
            a.qB().apply(s.qLatent, total, s.q);
        } else {
            a.qB().apply(s.xb, total, s.q);
        }
        a.kvA().apply(s.xb, total, s.kvA);
        FloatOps.rmsNorm(s.kvA, 0, cd, total, a.kvANorm(), eps, s.kvA, 0, cd);
        for (int t = 0; t < total; t++) {
            rotate(s.kvA, t * cd + lora, s, t);
            for (int h = 0; h < heads; h++) rotate(s.q, (t * heads + h) * qHead + nope, s, t);
        }
        for (int i = 0; i < batch.size(); i++) {
            int[] table = batch.entry(i).blockTable();
            for (int j = 0; j < batch.count(i); j++) kv.write(layer, table, batch.start(i) + j, s.kvA, (batch.first(i) + j) * cd);
        }
        if (step.absorbedTokens > 0) absorbedAttention(layer, a, step, s);
        if (step.absorbedTokens < total) expandedAttention(layer, a, step, s);
        a.o().apply(s.att, total, s.proj);
    }

    /** Attention in latent space for the absorbed entries; writes their rows of s.att. */
    private void absorbedAttention(int layer, Attention a, Step step, Scratch s) {
        DeepseekV3Config c = config;
        BatchLayout batch = step.batch;
        int e = batch.size();
        int heads = c.numHeads();
        int qHead = c.qHeadDim();
        int nope = c.qkNopeHeadDim();
        int lora = c.kvLoraRank();
        int v = c.vHeadDim();
        int n = step.absorbedTokens;
        int[] tokenOf = new int[n];     // absorbed row -> batch token
        int[] rowOfEntry = new int[e];
        for (int i = 0, r = 0; i < e; i++) {
            rowOfEntry[i] = r;
            if (!step.absorb[i]) continue;
            for (int j = 0; j < batch.count(i); j++) tokenOf[r++] = batch.first(i) + j;
        }
        // q_nope·W_UK per head, for all absorbed tokens in one matmul: (n, nope) -> (n, lora)
        for (int h = 0; h < heads; h++) {
            for (int r = 0; r < n; r++) System.arraycopy(s.q, (tokenOf[r] * heads + h) * qHead, s.gatherIn, r * nope, nope);
            a.ukT()[h].apply(s.gatherIn, n, s.gatherOut);
            for (int r = 0; r < n; r++) System.arraycopy(s.gatherOut, r * lora, s.qAbsorbed, (r * heads + h) * lora, lora);
        }
        long work = 0;
        for (int i = 0; i < e; i++) {
            if (step.absorb[i]) work += (long) batch.count(i) * (batch.start(i) + batch.count(i));
        }
        IntStream tasks = IntStream.range(0, e * heads);
        // a hand-off to the common pool only pays off for long contexts
        if (work * heads * (2L * lora) > (1 << 20)) tasks = tasks.parallel();
        tasks.forEach(task -> {
            int i = task / heads;
            if (step.absorb[i]) attendLatent(layer, task % heads, batch, i, rowOfEntry[i], s);
        });
        // W_UV per head: (n, lora) -> (n, v)
        for (int h = 0; h < heads; h++) {
            for (int r = 0; r < n; r++) System.arraycopy(s.latentOut, (r * heads + h) * lora, s.gatherIn, r * lora, lora);
            a.uv()[h].apply(s.gatherIn, n, s.gatherOut);
            for (int r = 0; r < n; r++) System.arraycopy(s.gatherOut, r * v, s.att, (tokenOf[r] * heads + h) * v, v);
        }
    }

    /**
     * One head of entry i in latent space, its queries at absorbed rows from r0: keys
     * {@code [latent ‖ k_pe]} (cacheDim), values the latent, both read through the block table.
     */
    private void attendLatent(int layer, int h, BatchLayout batch, int i, int r0, Scratch s) {
        DeepseekV3Config c = config;
        int heads = c.numHeads();
        int qHead = c.qHeadDim();
        int nope = c.qkNopeHeadDim();
        int rope = c.qkRopeHeadDim();
        int lora = c.kvLoraRank();
        int[] table = batch.entry(i).blockTable();
        int start = batch.start(i);
        int n = batch.count(i);
        int t0 = batch.first(i);
        float[] scores = new float[start + n];
        for (int j = 0; j < n; j++) {
            int pos = start + j;
            int qAbs = ((r0 + j) * heads + h) * lora;
            int qPe = ((t0 + j) * heads + h) * qHead + nope;
            for (int p = 0; p <= pos; p++) {
                float[] block = kv.block(table, p);
                int k = kv.offset(layer, p);
                float dot = 0f;
                for (int d = 0; d < lora; d++) dot += s.qAbsorbed[qAbs + d] * block[k + d];
                for (int d = 0; d < rope; d++) dot += s.q[qPe + d] * block[k + lora + d];
                scores[p] = dot * softmaxScale;
            }
            FloatOps.softmax(scores, 0, pos + 1);
            Arrays.fill(s.latentOut, qAbs, qAbs + lora, 0f);
            for (int p = 0; p <= pos; p++) {
                float w = scores[p];
                float[] block = kv.block(table, p);
                int k = kv.offset(layer, p);
                for (int d = 0; d < lora; d++) s.latentOut[qAbs + d] += w * block[k + d];
            }
        }
    }

    /**
     * Standard multi-head attention for the expanded entries: kv_b_proj of every context latent of
     * all these entries in one matmul, then per (entry, head) attention with keys
     * {@code [k_nope ‖ k_pe]}; writes their rows of s.att.
     */
    private void expandedAttention(int layer, Attention a, Step step, Scratch s) {
        DeepseekV3Config c = config;
        BatchLayout batch = step.batch;
        int heads = c.numHeads();
        int lora = c.kvLoraRank();
        int kvWidth = heads * (c.qkNopeHeadDim() + c.vHeadDim());
        int e = batch.size();
        int[] ctxStart = new int[e];
        int rows = 0;
        long work = 0;
        for (int i = 0; i < e; i++) {
            if (step.absorb[i]) continue;
            ctxStart[i] = rows;
            int ctx = batch.start(i) + batch.count(i);
            rows += ctx;
            work += (long) batch.count(i) * ctx;
        }
        float[] latents = new float[rows * lora];   // (context rows, lora)
        for (int i = 0; i < e; i++) {
            if (step.absorb[i]) continue;
            int[] table = batch.entry(i).blockTable();
            int ctx = batch.start(i) + batch.count(i);
            for (int p = 0; p < ctx; p++) System.arraycopy(kv.block(table, p), kv.offset(layer, p), latents, (ctxStart[i] + p) * lora, lora);
        }
        float[] kvFull = new float[rows * kvWidth]; // (context rows, heads, nope + v)
        a.kvB().apply(latents, rows, kvFull);
        IntStream tasks = IntStream.range(0, e * heads);
        if (work * heads * (c.qHeadDim() + c.vHeadDim()) > (1 << 20)) tasks = tasks.parallel();
        tasks.forEach(task -> {
            int i = task / heads;
            if (!step.absorb[i]) attendExpanded(layer, task % heads, batch, i, kvFull, ctxStart[i], s);
        });
    }

    /** One head of entry i over its context rows of kvFull from ctx0, the rope key read through the block table. */
    private void attendExpanded(int layer, int h, BatchLayout batch, int i, float[] kvFull, int ctx0, Scratch s) {
        DeepseekV3Config c = config;
        int heads = c.numHeads();
        int qHead = c.qHeadDim();
        int nope = c.qkNopeHeadDim();
        int rope = c.qkRopeHeadDim();
        int v = c.vHeadDim();
        int lora = c.kvLoraRank();
        int kvWidth = heads * (nope + v);
        int[] table = batch.entry(i).blockTable();
        int start = batch.start(i);
        int n = batch.count(i);
        int t0 = batch.first(i);
        float[] scores = new float[start + n];
        for (int j = 0; j < n; j++) {
            int pos = start + j;
            int q = ((t0 + j) * heads + h) * qHead;
            for (int p = 0; p <= pos; p++) {
                int k = (ctx0 + p) * kvWidth + h * (nope + v);
                float[] block = kv.block(table, p);
                int pe = kv.offset(layer, p) + lora;
                float dot = 0f;
                for (int d = 0; d < nope; d++) dot += s.q[q + d] * kvFull[k + d];
                for (int d = 0; d < rope; d++) dot += s.q[q + nope + d] * block[pe + d];
                scores[p] = dot * softmaxScale;
            }
            FloatOps.softmax(scores, 0, pos + 1);
            int out = ((t0 + j) * heads + h) * v;
            Arrays.fill(s.att, out, out + v, 0f);
            for (int p = 0; p <= pos; p++) {
                float w = scores[p];
                int val = (ctx0 + p) * kvWidth + h * (nope + v) + nope;
                for (int d = 0; d < v; d++) s.att[out + d] += w * kvFull[val + d];
            }
        }
    }

    /**
     * Routes every token of s.xb, runs each routed expert once on all its tokens and leaves
     * {@code routed_scaling_factor · Σ w·expert(x) + shared(x)} in s.proj.
     */
    private void moe(Moe m, int total, Scratch s) {
        DeepseekV3Config c = config;
        int hidden = c.hiddenSize();
        int k = c.numExpertsPerTok();
        int experts = c.nRoutedExperts();
        m.router().apply(s.xb, total, s.routerLogits);
        for (int t = 0; t < total; t++) route(m, t, s);

        // bucket the (token, slot) pairs by expert
        int[] start = new int[experts + 1];
        for (int i = 0; i < total * k; i++) start[s.topIds[i] + 1]++;
        for (int e = 0; e < experts; e++) start[e + 1] += start[e];
        int[] fill = Arrays.copyOf(start, experts);
        for (int i = 0; i < total * k; i++) s.byExpert[fill[s.topIds[i]]++] = i;

        Arrays.fill(s.routed, 0, total * hidden, 0f);
        for (int e = 0; e < experts; e++) {
            int count = start[e + 1] - start[e];
            if (count == 0) continue;
            for (int r = 0; r < count; r++) {
                int token = s.byExpert[start[e] + r] / k;
                System.arraycopy(s.xb, token * hidden, s.expertIn, r * hidden, hidden);
            }
            m.experts()[e].apply(s.expertIn, count, s.gate, s.up, s.expertOut);
            for (int r = 0; r < count; r++) {
                int slot = s.byExpert[start[e] + r];
                int o = (slot / k) * hidden;
                float w = s.topWeights[slot];
                for (int d = 0; d < hidden; d++) s.routed[o + d] += w * s.expertOut[r * hidden + d];
            }
        }
        float scale = (float) c.routedScalingFactor();
        if (m.shared() != null) {
            m.shared().apply(s.xb, total, s.gate, s.up, s.proj);
            for (int i = 0; i < total * hidden; i++) s.proj[i] += scale * s.routed[i];
        } else {
            for (int i = 0; i < total * hidden; i++) s.proj[i] = scale * s.routed[i];
        }
    }

    /** Grouped top-k for token t: fills its k slots of s.topIds and s.topWeights. */
    private void route(Moe m, int t, Scratch s) {
        DeepseekV3Config c = config;
        int experts = c.nRoutedExperts();
        int k = c.numExpertsPerTok();
        double[] scores = s.scores;
        double[] choice = s.choice;
        int off = t * experts;
        if (c.scoringFunc().equals("sigmoid")) {
            for (int e = 0; e < experts; e++) scores[e] = 1.0 / (1.0 + Math.exp(-s.routerLogits[off + e]));
        } else {
            double max = Double.NEGATIVE_INFINITY;
            for (int e = 0; e < experts; e++) max = Math.max(max, s.routerLogits[off + e]);
            double sum = 0;
            for (int e = 0; e < experts; e++) sum += scores[e] = Math.exp(s.routerLogits[off + e] - max);
            for (int e = 0; e < experts; e++) scores[e] /= sum;
        }
        for (int e = 0; e < experts; e++) choice[e] = m.bias() == null ? scores[e] : scores[e] + m.bias()[e];

        if (!c.topkMethod().equals("greedy") && c.topkGroup() < c.nGroup()) {
            int groups = c.nGroup();
            int size = experts / groups;
            double[] groupScore = s.groupScore;
            for (int g = 0; g < groups; g++) {
                double best = Double.NEGATIVE_INFINITY;
                double second = Double.NEGATIVE_INFINITY;
                for (int e = g * size; e < (g + 1) * size; e++) {
                    if (choice[e] > best) {
                        second = best;
                        best = choice[e];
                    } else if (choice[e] > second) {
                        second = choice[e];
                    }
                }
                // with the noaux_tc bias a group counts its two best experts, otherwise its best one
                groupScore[g] = m.bias() != null ? best + second : best;
            }
            for (int kept = 0; kept < c.topkGroup(); kept++) {
                int best = argmax(groupScore, groups);
                groupScore[best] = Double.NaN; // kept
            }
            for (int g = 0; g < groups; g++) {
                if (Double.isNaN(groupScore[g])) continue;
                for (int e = g * size; e < (g + 1) * size; e++) choice[e] = Double.NEGATIVE_INFINITY;
            }
        }
        double sum = 0;
        for (int j = 0; j < k; j++) {
            int best = argmax(choice, experts);
            choice[best] = Double.NaN;
            s.topIds[t * k + j] = best;
            s.weights[j] = scores[best];
            sum += scores[best];
        }
        boolean normalise = c.normTopkProb() && k > 1;
        for (int j = 0; j < k; j++) s.topWeights[t * k + j] = (float) (normalise ? s.weights[j] / sum : s.weights[j]);
    }

    /** Index of the largest non-NaN value (the lowest index among ties). */
    private static int argmax(double[] v, int n) {
        int best = -1;
        for (int i = 0; i < n; i++) {
            if (Double.isNaN(v[i])) continue;
            if (best < 0 || v[i] > v[best]) best = i;
        }
        return best;
    }

    /** Activation buffers, reused across steps and grown to the largest batch seen. */
    private static final class Scratch {
        final int tokens;
        final float[] x;            // (T, hidden) residual stream
        final float[] xb;           // (T, hidden) normed block input
        final float[] proj;         // (T, hidden) o_proj / MLP output
        final float[] qLatent;      // (T, qLora) q_a_proj, then q_a_layernorm
        final float[] q;            // (T, heads, nope + rope)
        final float[] kvA;          // (T, kvLora + rope) normed latent ‖ roped k_pe
        final float[] att;          // (T, heads, v) attention output
        final float[] qAbsorbed;    // (T, heads, kvLora) q_nope·W_UK
        final float[] latentOut;    // (T, heads, kvLora) attended latent
        final float[] gatherIn;     // (T, max(nope, kvLora)) one head's rows
        final float[] gatherOut;    // (T, max(kvLora, v))
        final float[] cos;          // (T, rope/2)
        final float[] sin;          // (T, rope/2)
        final float[] gate;         // (T, largest intermediate), then silu(gate) * up
        final float[] up;           // (T, largest intermediate)
        final float[] routerLogits; // (T, experts)
        final int[] topIds;         // (T, k)
        final float[] topWeights;   // (T, k)
        final int[] byExpert;       // (T·k,) (token, slot) indices grouped by expert
        final float[] expertIn;     // (T, hidden) the tokens of one expert
        final float[] expertOut;    // (T, hidden)
        final float[] routed;       // (T, hidden) weighted sum of the routed experts
        final double[] scores;      // (experts,) one token's router scores
        final double[] choice;      // (experts,) scores + bias, masked during selection
        final double[] groupScore;  // (groups,)
        final double[] weights;     // (k,)

        Scratch(DeepseekV3Config c, int tokens) {
            this.tokens = tokens;
            int h = c.hiddenSize();
            int heads = c.numHeads();
            int lora = c.kvLoraRank();
            int experts = Math.max(c.nRoutedExperts(), 1);
            int k = Math.max(c.numExpertsPerTok(), 1);
            int inter = Math.max(c.intermediateSize(), Math.max(c.moeIntermediateSize(), c.moeIntermediateSize() * c.nSharedExperts()));
            x = new float[tokens * h];
            xb = new float[tokens * h];
            proj = new float[tokens * h];
            qLatent = new float[tokens * c.qLoraRank()];
            q = new float[tokens * heads * c.qHeadDim()];
            kvA = new float[tokens * c.cacheDim()];
            att = new float[tokens * heads * c.vHeadDim()];
            qAbsorbed = new float[tokens * heads * lora];
            latentOut = new float[tokens * heads * lora];
            gatherIn = new float[tokens * Math.max(c.qkNopeHeadDim(), lora)];
            gatherOut = new float[tokens * Math.max(lora, c.vHeadDim())];
            cos = new float[tokens * c.qkRopeHeadDim() / 2];
            sin = new float[tokens * c.qkRopeHeadDim() / 2];
            gate = new float[tokens * inter];
            up = new float[tokens * inter];
            routerLogits = new float[tokens * experts];
            topIds = new int[tokens * k];
            topWeights = new float[tokens * k];
            byExpert = new int[tokens * k];
            expertIn = new float[tokens * h];
            expertOut = new float[tokens * h];
            routed = new float[tokens * h];
            scores = new double[experts];
            choice = new double[experts];
            groupScore = new double[Math.max(c.nGroup(), 1)];
            weights = new double[k];
        }
    }

    private Scratch scratch(int tokens) {
        if (scratch == null || scratch.tokens < tokens) scratch = new Scratch(config, BatchLayout.roundUp(tokens));
        return scratch;
    }

    // ---------------------------------------------------------------- lifecycle

    private void ensureOpen() {
        if (closed) throw new IllegalStateException("model is closed");
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        scratch = null;
        kv.release();
        convertedWeights.close();
        checkpoint.close();
    }
}
