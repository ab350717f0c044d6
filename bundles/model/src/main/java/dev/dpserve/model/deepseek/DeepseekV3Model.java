// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model.deepseek;

import dev.dpserve.api.model.CausalLm;
import dev.dpserve.api.model.KvCacheLayout;
import dev.dpserve.api.model.ModelInfo;
import dev.dpserve.api.model.ModelSource;
import dev.dpserve.api.tensor.DType;
import dev.dpserve.api.tensor.KernelBackend.Op;
import dev.dpserve.api.tensor.PagedAttention;
import dev.dpserve.api.tensor.Tensor;
import dev.dpserve.model.BatchLayout;
import dev.dpserve.model.FloatOps;
import dev.dpserve.model.KernelRegistry;
import dev.dpserve.model.Kernels;
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
import java.util.logging.Logger;

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

    // ---- kernels: resolved once per forward step
    private final KernelRegistry kernels;
    private final List<Kernels.Need> needs;
    private Kernels ops; // the current step's

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
     * Maps the checkpoint in {@code source.dir()} and builds the model. Each forward step runs on the
     * kernels {@code kernels} resolves at its start. IllegalArgumentException for missing or misshapen tensors,
     * FP8 checkpoints and unsupported configurations.
     */
    public static DeepseekV3Model load(ModelSource source, KernelRegistry kernels) throws IOException {
        DeepseekV3Config config = DeepseekV3Config.from(source.config());
        rejectFp8(source.config().get("quantization_config"));
        DType requested = WeightLoader.requestedDtype(source.dtype());
        boolean quantize = WeightLoader.quantizeWeights(source.quantization());
        SafetensorsCheckpoint checkpoint;
        try {
            checkpoint = SafetensorsCheckpoint.open(source.dir());
        } catch (IOException e) {
            if (String.valueOf(e.getMessage()).contains("F8_")) throw new IllegalArgumentException(fp8Message(e.getMessage()), e);
            throw e;
        }
        try {
            return new DeepseekV3Model(config, checkpoint, requested, quantize, kernels);
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

    private DeepseekV3Model(DeepseekV3Config c, SafetensorsCheckpoint ckpt, DType requested, boolean quantize,
                       KernelRegistry kernels) {
        this.config = c;
        this.checkpoint = ckpt;
        this.kernels = kernels;
        this.convertedWeights = Arena.ofShared();
        try {
            for (String name : ckpt.tensors().keySet()) {
                if (name.endsWith("weight_scale_inv")) throw new IllegalArgumentException(fp8Message("tensor " + name));
            }
            WeightLoader w = new WeightLoader(ckpt, requested, quantize, convertedWeights);
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
                    ? w.linear(embedTokens) : w.linearFloat("lm_head", c.vocabSize(), h, false));
            this.needs = w.needs(Op.RMS_NORM, Op.ROPE, Op.SILU_MUL, Op.ATTENTION, Op.TOP_K);
            logSkippedNextnLayers();
            this.invFreq = inverseFrequencies(c);
            DeepseekV3Config.RopeScaling s = c.ropeScaling();
            this.ropeMscale = s == null ? 1.0
                    : DeepseekV3Config.yarnMscale(s.factor(), s.mscale()) / DeepseekV3Config.yarnMscale(s.factor(), s.mscaleAllDim());
            this.softmaxScale = (float) c.softmaxScale();
            this.kv = new PagedKvStore(kvCacheLayout());
            this.info = new ModelInfo(c.modelType(), c.architecture(), c.vocabSize(), c.maxPositionEmbeddings(), h,
                    c.numLayers(), w.parameterCount(), w.weightBytes(), quantize ? "I8" : embedTokens.dtype().name(),
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
        Linear kvB = w.linearFloat(p + "kv_b_proj", heads * (nope + v), kvLora, false);
        Tensor kvBW = kvB.weight();
        long bytes = kvBW.dtype().byteSize();
        Linear[] ukT = new Linear[heads];
        Linear[] uv = new Linear[heads];
        for (int head = 0; head < heads; head++) {
            long rowUk = (long) head * (nope + v);
            MemorySegment t = transpose(kvBW.data().asSlice(rowUk * kvLora * bytes, (long) nope * kvLora * bytes), nope, kvLora, bytes);
            ukT[head] = new Linear(new Tensor(kvBW.name() + "[W_UK^T head " + head + "]", kvBW.dtype(), new long[] {kvLora, nope}, t),
                    null);
            MemorySegment rows = kvBW.data().asSlice((rowUk + nope) * kvLora * bytes, (long) v * kvLora * bytes);
            uv[head] = new Linear(new Tensor(kvBW.name() + "[W_UV head " + head + "]", kvBW.dtype(), new long[] {v, kvLora}, rows),
                    null);
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
        ops = kernels.await(needs);
        Scratch s = scratch(total);
        Step step = new Step(batch);
        int hidden = config.hiddenSize();
        float eps = (float) config.rmsNormEps();
        batch.embed(embedTokens, s.x);
        FloatOps.ropeAngles(batch, invFreq, ropeMscale, s.cos, s.sin);

        for (int l = 0; l < layers.length; l++) {
            Layer layer = layers[l];
            ops.rmsNorm(s.x, layer.attnNorm(), eps, s.xb, total);
            attention(l, layer.attn(), step, s);
            FloatOps.addInPlace(s.x, s.proj, total * hidden);

            ops.rmsNorm(s.x, layer.mlpNorm(), eps, s.xb, total);
            if (layer.moe() != null) {
                moe(layer.moe(), total, s);
            } else {
                layer.dense().apply(ops, s.xb, total, s.gate, s.up, s.proj);
            }
            FloatOps.addInPlace(s.x, s.proj, total * hidden);
        }
        return lmHead.logits(ops, batch, s.x);
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
        float eps = (float) c.rmsNormEps();
        if (a.qA() != null) {
            Linear.applyAll(ops, s.xb, total, a.qA(), s.qLatent, a.kvA(), s.kvA, null, null);
            ops.rmsNorm(s.qLatent, a.qANorm(), eps, s.qLatent, total);
            a.qB().apply(ops, s.qLatent, total, s.q);
        } else {
            Linear.applyAll(ops, s.xb, total, a.qB(), s.q, a.kvA(), s.kvA, null, null);
        }
        ops.rmsNorm(s.kvA, 0, cd, total, a.kvANorm(), eps, s.kvA, 0, cd);
        // interleaved (GPT-J) RoPE: pairs (2i, 2i+1) turn by angle i. Hugging Face's checkpoint code
        // de-interleaves q and k before a rotate_half RoPE, which permutes both alike and leaves
        // every q·k unchanged.
        int rope = c.qkRopeHeadDim();
        ops.rope(s.kvA, lora, total, cd, 1, 0, rope, s.cos, s.sin, true);
        ops.rope(s.q, nope, total, heads * qHead, heads, qHead, rope, s.cos, s.sin, true);
        for (int i = 0; i < batch.size(); i++) {
            int[] table = batch.entry(i).blockTable();
            for (int j = 0; j < batch.count(i); j++) kv.write(layer, table, batch.start(i) + j, s.kvA, (batch.first(i) + j) * cd);
        }
        if (step.absorbedTokens > 0) absorbedAttention(layer, a, step, s);
        if (step.absorbedTokens < total) expandedAttention(layer, a, step, s);
        a.o().apply(ops, s.att, total, s.proj);
    }

    /**
     * Attention in latent space for the absorbed entries; writes their rows of s.att. Per head the
     * query becomes {@code [q_nope·W_UK ‖ q_pe]}, which attends over the cache itself (keys
     * {@code [latent ‖ k_pe]}, values the latent: the MLA form of the kernels' paged attention).
     */
    private void absorbedAttention(int layer, Attention a, Step step, Scratch s) {
        DeepseekV3Config c = config;
        BatchLayout batch = step.batch;
        int e = batch.size();
        int heads = c.numHeads();
        int qHead = c.qHeadDim();
        int nope = c.qkNopeHeadDim();
        int rope = c.qkRopeHeadDim();
        int lora = c.kvLoraRank();
        int cd = c.cacheDim();
        int v = c.vHeadDim();
        int n = step.absorbedTokens;
        int[] tokenOf = new int[n];     // absorbed row -> batch token
        int[] rowOfEntry = new int[e];
        for (int i = 0, r = 0; i < e; i++) {
            rowOfEntry[i] = r;
            if (!step.absorb[i]) continue;
            for (int j = 0; j < batch.count(i); j++) tokenOf[r++] = batch.first(i) + j;
        }
        // q_nope·W_UK per head, for all absorbed tokens in one matmul: (n, nope) -> (n, lora); then q_pe
        for (int h = 0; h < heads; h++) {
            for (int r = 0; r < n; r++) System.arraycopy(s.q, (tokenOf[r] * heads + h) * qHead, s.gatherIn, r * nope, nope);
            a.ukT()[h].apply(ops, s.gatherIn, n, s.gatherOut);
            for (int r = 0; r < n; r++) {
                int q = (r * heads + h) * cd;
                System.arraycopy(s.gatherOut, r * lora, s.qAbsorbed, q, lora);
                System.arraycopy(s.q, (tokenOf[r] * heads + h) * qHead + nope, s.qAbsorbed, q + lora, rope);
            }
        }
        for (int i = 0; i < e; i++) {
            if (!step.absorb[i]) continue;
            int row = rowOfEntry[i] * heads;
            ops.attention(new PagedAttention(s.qAbsorbed, row * cd, heads * cd, cd, batch.count(i), heads, 1, cd, lora,
                    kv.blocks(), batch.entry(i).blockTable(), kv.blockSize(), kv.layerOffset(layer), kv.width(),
                    0, 0, 0, 0, batch.start(i), 0, softmaxScale,
                    s.latentOut, row * lora, heads * lora, lora));
        }
        // W_UV per head: (n, lora) -> (n, v)
        for (int h = 0; h < heads; h++) {
            for (int r = 0; r < n; r++) System.arraycopy(s.latentOut, (r * heads + h) * lora, s.gatherIn, r * lora, lora);
            a.uv()[h].apply(ops, s.gatherIn, n, s.gatherOut);
            for (int r = 0; r < n; r++) System.arraycopy(s.gatherOut, r * v, s.att, (tokenOf[r] * heads + h) * v, v);
        }
    }

    /**
     * Standard multi-head attention for the expanded entries: kv_b_proj of every context latent of
     * all these entries in one matmul, laid out per position as {@code [k_nope ‖ k_pe ‖ v]} per
     * head, then the kernels' paged attention over that array as one block per entry (keys
     * {@code [k_nope ‖ k_pe]}); writes their rows of s.att.
     */
    private void expandedAttention(int layer, Attention a, Step step, Scratch s) {
        DeepseekV3Config c = config;
        BatchLayout batch = step.batch;
        int heads = c.numHeads();
        int qHead = c.qHeadDim();
        int nope = c.qkNopeHeadDim();
        int rope = c.qkRopeHeadDim();
        int v = c.vHeadDim();
        int lora = c.kvLoraRank();
        int kvWidth = heads * (nope + v);
        int slot = heads * (qHead + v);           // one position of the expanded keys and values
        int e = batch.size();
        int[] ctxStart = new int[e];
        int rows = 0;
        for (int i = 0; i < e; i++) {
            if (step.absorb[i]) continue;
            ctxStart[i] = rows;
            rows += batch.start(i) + batch.count(i);
        }
        float[] latents = new float[rows * lora];   // (context rows, lora)
        for (int i = 0; i < e; i++) {
            if (step.absorb[i]) continue;
            int[] table = batch.entry(i).blockTable();
            int ctx = batch.start(i) + batch.count(i);
            for (int p = 0; p < ctx; p++) System.arraycopy(kv.block(table, p), kv.offset(layer, p), latents, (ctxStart[i] + p) * lora, lora);
        }
        float[] kvFull = new float[rows * kvWidth]; // (context rows, heads, nope + v)
        a.kvB().apply(ops, latents, rows, kvFull);
        float[] expanded = new float[rows * slot]; // (context rows, heads, nope + rope + v)
        for (int i = 0; i < e; i++) {
            if (step.absorb[i]) continue;
            int[] table = batch.entry(i).blockTable();
            int ctx = batch.start(i) + batch.count(i);
            for (int p = 0; p < ctx; p++) {
                int r = ctxStart[i] + p;
                float[] block = kv.block(table, p);
                int pe = kv.offset(layer, p) + lora;
                for (int h = 0; h < heads; h++) {
                    int src = r * kvWidth + h * (nope + v);
                    int dst = r * slot + h * (qHead + v);
                    System.arraycopy(kvFull, src, expanded, dst, nope);
                    System.arraycopy(block, pe, expanded, dst + nope, rope);
                    System.arraycopy(kvFull, src + nope, expanded, dst + qHead, v);
                }
            }
        }
        for (int i = 0; i < e; i++) {
            if (step.absorb[i]) continue;
            int ctx = batch.start(i) + batch.count(i);
            int t0 = batch.first(i);
            ops.attention(new PagedAttention(s.q, t0 * heads * qHead, heads * qHead, qHead, batch.count(i), heads, heads, qHead, v,
                    new float[][] {expanded}, new int[] {0}, ctx, ctxStart[i] * slot, slot,
                    0, qHead + v, qHead, qHead + v, batch.start(i), 0, softmaxScale,
                    s.att, t0 * heads * v, heads * v, v));
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
        m.router().apply(ops, s.xb, total, s.routerLogits);
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
            m.experts()[e].apply(ops, s.expertIn, count, s.gate, s.up, s.expertOut);
            for (int r = 0; r < count; r++) {
                int slot = s.byExpert[start[e] + r];
                int o = (slot / k) * hidden;
                float w = s.topWeights[slot];
                for (int d = 0; d < hidden; d++) s.routed[o + d] += w * s.expertOut[r * hidden + d];
            }
        }
        float scale = (float) c.routedScalingFactor();
        if (m.shared() != null) {
            m.shared().apply(ops, s.xb, total, s.gate, s.up, s.proj);
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

        float[] pick = s.pick;
        for (int e = 0; e < experts; e++) pick[e] = (float) choice[e];
        if (!c.topkMethod().equals("greedy") && c.topkGroup() < c.nGroup()) {
            int groups = c.nGroup();
            int size = experts / groups;
            float[] groupScore = s.groupScore;
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
                groupScore[g] = (float) (m.bias() != null ? best + second : best);
            }
            ops.topK(groupScore, 0, groups, c.topkGroup(), s.keptGroups, s.keptValues);
            Arrays.fill(s.groupKept, false);
            for (int kept = 0; kept < c.topkGroup(); kept++) s.groupKept[s.keptGroups[kept]] = true;
            for (int g = 0; g < groups; g++) {
                if (s.groupKept[g]) continue;
                for (int e = g * size; e < (g + 1) * size; e++) pick[e] = Float.NEGATIVE_INFINITY;
            }
        }
        ops.topK(pick, 0, experts, k, s.topIdsOne, s.topValuesOne);
        double sum = 0;
        for (int j = 0; j < k; j++) {
            int best = s.topIdsOne[j];
            s.topIds[t * k + j] = best;
            s.weights[j] = scores[best];
            sum += scores[best];
        }
        boolean normalise = c.normTopkProb() && k > 1;
        for (int j = 0; j < k; j++) s.topWeights[t * k + j] = (float) (normalise ? s.weights[j] / sum : s.weights[j]);
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
        final float[] qAbsorbed;    // (T, heads, kvLora + rope) [q_nope·W_UK ‖ q_pe]
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
        final float[] pick;         // (experts,) choice as floats, masked groups at -inf
        final float[] groupScore;   // (groups,)
        final int[] keptGroups;     // (groups,) top-k of the groups
        final float[] keptValues;   // (groups,)
        final boolean[] groupKept;  // (groups,)
        final int[] topIdsOne;      // (k,) one token's experts
        final float[] topValuesOne; // (k,)
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
            qAbsorbed = new float[tokens * heads * c.cacheDim()];
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
            pick = new float[experts];
            groupScore = new float[Math.max(c.nGroup(), 1)];
            keptGroups = new int[Math.max(c.nGroup(), 1)];
            keptValues = new float[Math.max(c.nGroup(), 1)];
            groupKept = new boolean[Math.max(c.nGroup(), 1)];
            topIdsOne = new int[k];
            topValuesOne = new float[k];
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
