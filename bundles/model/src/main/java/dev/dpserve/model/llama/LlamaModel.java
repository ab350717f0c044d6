// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model.llama;

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
import java.util.List;

/**
 * The Llama decoder (also Qwen2 and Mistral): token embedding, then per layer
 * {@code x += o(attn(rope(q(norm(x))), rope(k(..)), v(..)))} and {@code x += down(silu(gate(norm(x))) * up(norm(x)))},
 * then a final RMSNorm and the LM head. Weights stay memory-mapped in their stored dtype (or are
 * converted once to the requested dtype); all activations and the KV cache are F32.
 *
 * <p>A forward batch concatenates the tokens of all entries into one (T, hidden) matrix, so every
 * weight matmul runs once per layer for the whole batch whatever mix of prefill chunks and decode
 * tokens it holds; only attention runs per sequence, and the LM head only for the last token of
 * each entry that wants logits. Not thread-safe: one engine loop drives a model.
 */
public final class LlamaModel implements CausalLm {

    private final LlamaConfig config;
    private final ModelInfo info;
    private final SafetensorsCheckpoint checkpoint; // owns the memory mappings
    private final Arena convertedWeights;           // weights converted to the requested dtype

    // ---- weights
    private final Tensor embedTokens; // (vocab, hidden)
    private final Layer[] layers;     // (numLayers,)
    private final LmHead lmHead;      // model.norm, then lm_head (vocab, hidden) or embed_tokens when tied

    // ---- RoPE
    private final double[] invFreq;   // (headDim/2,) after rope_scaling

    // ---- paged KV cache: per token and layer the key, then the value (2 × kvDim)
    private final PagedKvStore kv;

    // ---- kernels: resolved once per forward step
    private final KernelRegistry kernels;
    private final List<Kernels.Need> needs;

    private Scratch scratch;
    private boolean closed;

    record Layer(float[] attnNorm, // (hidden,) input_layernorm
                 Linear q,         // (qDim, hidden)
                 Linear k,         // (kvDim, hidden)
                 Linear v,         // (kvDim, hidden)
                 Linear o,         // (hidden, qDim)
                 float[] mlpNorm,  // (hidden,) post_attention_layernorm
                 SwiGlu mlp) {     // intermediate (intermediate_size)
    }

    /**
     * Maps the checkpoint in {@code source.dir()} and builds the model. Each forward step runs on the
     * kernels {@code kernels} resolves at its start. IllegalArgumentException for missing or misshapen tensors
     * and unsupported configurations.
     */
    public static LlamaModel load(ModelSource source, KernelRegistry kernels) throws IOException {
        LlamaConfig config = LlamaConfig.from(source.config());
        DType requested = WeightLoader.requestedDtype(source.dtype());
        boolean quantize = WeightLoader.quantizeWeights(source.quantization());
        SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.open(source.dir());
        try {
            return new LlamaModel(config, checkpoint, requested, quantize, kernels);
        } catch (RuntimeException e) {
            checkpoint.close();
            throw e;
        }
    }

    private LlamaModel(LlamaConfig c, SafetensorsCheckpoint ckpt, DType requested, boolean quantize,
                       KernelRegistry kernels) {
        this.config = c;
        this.checkpoint = ckpt;
        this.kernels = kernels;
        this.convertedWeights = Arena.ofShared();
        try {
            WeightLoader w = new WeightLoader(ckpt, requested, quantize, convertedWeights);
            int h = c.hiddenSize();
            this.embedTokens = w.matrix("model.embed_tokens.weight", c.vocabSize(), h);
            this.layers = new Layer[c.numLayers()];
            for (int i = 0; i < layers.length; i++) {
                String p = "model.layers." + i + ".";
                layers[i] = new Layer(
                        w.vector(p + "input_layernorm.weight", h),
                        w.linear(p + "self_attn.q_proj", c.qDim(), h, c.qkvBias()),
                        w.linear(p + "self_attn.k_proj", c.kvDim(), h, c.qkvBias()),
                        w.linear(p + "self_attn.v_proj", c.kvDim(), h, c.qkvBias()),
                        w.linear(p + "self_attn.o_proj", h, c.qDim(), c.outputBias()),
                        w.vector(p + "post_attention_layernorm.weight", h),
                        w.swiGlu(p + "mlp.", c.intermediateSize(), h, c.mlpBias()));
            }
            float[] finalNorm = w.vector("model.norm.weight", h);
            this.lmHead = new LmHead(finalNorm, c.rmsNormEps(), c.tieWordEmbeddings()
                    ? w.linear(embedTokens) : w.linearFloat("lm_head", c.vocabSize(), h, false));
            this.needs = w.needs(Op.RMS_NORM, Op.ROPE, Op.SILU_MUL, Op.ATTENTION);
            this.invFreq = inverseFrequencies(c);
            this.kv = new PagedKvStore(kvCacheLayout());
            this.info = new ModelInfo(c.modelType(), c.architecture(), c.vocabSize(), c.maxPositionEmbeddings(), h,
                    c.numLayers(), w.parameterCount(), w.weightBytes(), quantize ? "I8" : embedTokens.dtype().name(), kvCacheLayout().bytesPerToken());
        } catch (RuntimeException e) {
            convertedWeights.close();
            throw e;
        }
    }

    /** HF's RoPE frequencies: {@code theta^(-2i/headDim)}, rescaled per rope_scaling. */
    static double[] inverseFrequencies(LlamaConfig c) {
        int half = c.headDim() / 2;
        double[] f = new double[half];
        LlamaConfig.RopeScaling s = c.ropeScaling();
        for (int i = 0; i < half; i++) {
            f[i] = 1.0 / Math.pow(c.ropeTheta(), (2.0 * i) / c.headDim());
            if (s == null) continue;
            if (s.type().equals("linear")) {
                f[i] /= s.factor();
            } else {
                // llama3: long wavelengths are slowed by `factor`, short ones kept, the band between interpolated
                double wavelen = 2 * Math.PI / f[i];
                double original = s.originalMaxPositionEmbeddings();
                if (wavelen > original / s.lowFreqFactor()) {
                    f[i] /= s.factor();
                } else if (wavelen >= original / s.highFreqFactor()) {
                    double smooth = (original / wavelen - s.lowFreqFactor()) / (s.highFreqFactor() - s.lowFreqFactor());
                    f[i] = (1 - smooth) * f[i] / s.factor() + smooth * f[i];
                }
            }
        }
        return f;
    }

    public LlamaConfig config() {
        return config;
    }

    @Override
    public ModelInfo info() {
        return info;
    }

    @Override
    public KvCacheLayout kvCacheLayout() {
        return new KvCacheLayout(config.numLayers(), 2 * config.kvDim(), KvCacheLayout.DENSE);
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
        Kernels k = kernels.await(needs);
        int total = batch.totalTokens();
        Scratch s = scratch(total);
        int hidden = config.hiddenSize();
        int headDim = config.headDim();
        float eps = (float) config.rmsNormEps();
        batch.embed(embedTokens, s.x);
        FloatOps.ropeAngles(batch, invFreq, 1.0, s.cos, s.sin);

        for (int l = 0; l < layers.length; l++) {
            Layer layer = layers[l];
            k.rmsNorm(s.x, layer.attnNorm(), eps, s.xb, total);
            Linear.applyAll(k, s.xb, total, layer.q(), s.q, layer.k(), s.k, layer.v(), s.v);
            // HF's rotate_half layout: dimension i pairs with i + headDim/2
            k.rope(s.q, 0, total, config.qDim(), config.numHeads(), headDim, headDim, s.cos, s.sin, false);
            k.rope(s.k, 0, total, config.kvDim(), config.numKvHeads(), headDim, headDim, s.cos, s.sin, false);
            attention(k, l, batch, s);
            layer.o().apply(k, s.att, total, s.proj);
            FloatOps.addInPlace(s.x, s.proj, total * hidden);

            k.rmsNorm(s.x, layer.mlpNorm(), eps, s.xb, total);
            layer.mlp().apply(k, s.xb, total, s.gate, s.up, s.proj);
            FloatOps.addInPlace(s.x, s.proj, total * hidden);
        }
        return lmHead.logits(k, batch, s.x);
    }

    /**
     * Writes this layer's keys and values of every entry into their slots, then runs the kernels'
     * causal paged attention per entry: the query at position p sees positions [0, p] (or the
     * sliding window ending there), read through the entry's block table.
     */
    private void attention(Kernels k, int layer, BatchLayout batch, Scratch s) {
        int kvDim = config.kvDim();
        int qDim = config.qDim();
        int headDim = config.headDim();
        for (int i = 0; i < batch.size(); i++) {
            int[] table = batch.entry(i).blockTable();
            int n = batch.count(i);
            for (int j = 0, t = batch.first(i); j < n; j++, t++) {
                int p = batch.start(i) + j;
                float[] block = kv.block(table, p);
                int off = kv.offset(layer, p);
                System.arraycopy(s.k, t * kvDim, block, off, kvDim);
                System.arraycopy(s.v, t * kvDim, block, off + kvDim, kvDim);
            }
        }
        float scale = (float) (1.0 / Math.sqrt(headDim));
        for (int i = 0; i < batch.size(); i++) {
            int row = batch.first(i) * qDim;
            k.attention(new PagedAttention(s.q, row, qDim, headDim, batch.count(i), config.numHeads(), config.numKvHeads(),
                    headDim, headDim, kv.blocks(), batch.entry(i).blockTable(), kv.blockSize(), kv.layerOffset(layer), kv.width(),
                    0, headDim, kvDim, headDim, batch.start(i), config.slidingWindow(), scale,
                    s.att, row, qDim, headDim));
        }
    }

    /** Activation buffers, reused across steps and grown to the largest batch seen. */
    private static final class Scratch {
        final int tokens;
        final float[] x;          // (T, hidden) residual stream
        final float[] xb;         // (T, hidden) normed block input
        final float[] q;          // (T, qDim)
        final float[] k;          // (T, kvDim)
        final float[] v;          // (T, kvDim)
        final float[] att;        // (T, qDim) attention output
        final float[] proj;       // (T, hidden) o_proj / down_proj output
        final float[] gate;       // (T, intermediate), then silu(gate) * up
        final float[] up;         // (T, intermediate)
        final float[] cos;        // (T, headDim/2)
        final float[] sin;        // (T, headDim/2)

        Scratch(LlamaConfig c, int tokens) {
            this.tokens = tokens;
            int h = c.hiddenSize();
            x = new float[tokens * h];
            xb = new float[tokens * h];
            q = new float[tokens * c.qDim()];
            k = new float[tokens * c.kvDim()];
            v = new float[tokens * c.kvDim()];
            att = new float[tokens * c.qDim()];
            proj = new float[tokens * h];
            gate = new float[tokens * c.intermediateSize()];
            up = new float[tokens * c.intermediateSize()];
            cos = new float[tokens * c.headDim() / 2];
            sin = new float[tokens * c.headDim() / 2];
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
