// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model.llama;

import dev.dpserve.api.model.CausalLm;
import dev.dpserve.api.model.KvCacheLayout;
import dev.dpserve.api.model.ModelInfo;
import dev.dpserve.api.model.ModelSource;
import dev.dpserve.api.tensor.DType;
import dev.dpserve.api.tensor.KernelBackend;
import dev.dpserve.api.tensor.Tensor;
import dev.dpserve.model.safetensors.SafetensorsCheckpoint;
import dev.dpserve.model.safetensors.Tensors;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Function;
import java.util.stream.IntStream;

/**
 * The Llama decoder (also Qwen2 and Mistral): token embedding, then per layer
 * {@code x += o(attn(rope(q(norm(x))), rope(k(..)), v(..)))} and {@code x += down(silu(gate(norm(x))) * up(norm(x)))},
 * then a final RMSNorm and the LM head. Weights stay memory-mapped in their stored dtype (or are
 * converted once to the requested dtype); all activations and the KV cache are F32.
 *
 * <p>A forward batch concatenates the tokens of all entries into one (T, hidden) matrix, so every
 * weight matmul runs once per layer for the whole batch whatever mix of prefill chunks and decode
 * tokens it holds; only attention runs per sequence, and the LM head only for each entry's last
 * token. Not thread-safe: one engine loop drives a model.
 */
public final class LlamaModel implements CausalLm {

    private final LlamaConfig config;
    private final ModelInfo info;
    private final SafetensorsCheckpoint checkpoint; // owns the memory mappings
    private final Arena convertedWeights;           // weights converted to the requested dtype

    // ---- weights
    private final Tensor embedTokens; // (vocab, hidden)
    private final Layer[] layers;     // (numLayers,)
    private final float[] finalNorm;  // (hidden,)
    private final Linear lmHead;      // (vocab, hidden); embed_tokens when tied

    // ---- RoPE
    private final double[] invFreq;   // (headDim/2,) after rope_scaling

    // ---- paged KV cache
    private float[][] kvBlocks; // (numBlocks,) each (numLayers, blockSize, 2, kvDim) or null until first written
    private int blockSize;

    private Scratch scratch;
    private boolean closed;
    private long parameterCount;
    private long weightBytes;

    /** A projection {@code y = x·Wᵀ + b}, run by the kernel backend chosen for W's dtype. */
    record Linear(Tensor weight, float[] bias, KernelBackend kernels) { // weight (out, in), bias (out,) or null

        /** y (n, out) = x (n, in) · Wᵀ + b. */
        void apply(float[] x, int n, float[] y) {
            kernels.matmul(x, 0, n, weight, y, 0);
            if (bias != null) {
                int out = bias.length;
                for (int t = 0; t < n; t++) {
                    for (int j = 0; j < out; j++) y[t * out + j] += bias[j];
                }
            }
        }
    }

    record Layer(float[] attnNorm, // (hidden,) input_layernorm
                 Linear q,         // (qDim, hidden)
                 Linear k,         // (kvDim, hidden)
                 Linear v,         // (kvDim, hidden)
                 Linear o,         // (hidden, qDim)
                 float[] mlpNorm,  // (hidden,) post_attention_layernorm
                 Linear gate,      // (intermediate, hidden)
                 Linear up,        // (intermediate, hidden)
                 Linear down) {    // (hidden, intermediate)
    }

    /**
     * Maps the checkpoint in {@code source.dir()} and builds the model. {@code kernelsFor} picks the
     * kernel backend for a weight dtype. IllegalArgumentException for missing or misshapen tensors
     * and unsupported configurations.
     */
    public static LlamaModel load(ModelSource source, Function<DType, KernelBackend> kernelsFor) throws IOException {
        LlamaConfig config = LlamaConfig.from(source.config());
        DType requested = requestedDtype(source.dtype());
        SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint.open(source.dir());
        try {
            return new LlamaModel(config, checkpoint, requested, kernelsFor);
        } catch (RuntimeException e) {
            checkpoint.close();
            throw e;
        }
    }

    private LlamaModel(LlamaConfig c, SafetensorsCheckpoint ckpt, DType requested,
                       Function<DType, KernelBackend> kernelsFor) {
        this.config = c;
        this.checkpoint = ckpt;
        this.convertedWeights = Arena.ofShared();
        try {
            int h = c.hiddenSize();
            this.embedTokens = matrix("model.embed_tokens.weight", c.vocabSize(), h, requested);
            this.layers = new Layer[c.numLayers()];
            for (int i = 0; i < layers.length; i++) {
                String p = "model.layers." + i + ".";
                layers[i] = new Layer(
                        vector(p + "input_layernorm.weight", h),
                        linear(p + "self_attn.q_proj", c.qDim(), h, c.qkvBias(), requested, kernelsFor),
                        linear(p + "self_attn.k_proj", c.kvDim(), h, c.qkvBias(), requested, kernelsFor),
                        linear(p + "self_attn.v_proj", c.kvDim(), h, c.qkvBias(), requested, kernelsFor),
                        linear(p + "self_attn.o_proj", h, c.qDim(), c.outputBias(), requested, kernelsFor),
                        vector(p + "post_attention_layernorm.weight", h),
                        linear(p + "mlp.gate_proj", c.intermediateSize(), h, c.mlpBias(), requested, kernelsFor),
                        linear(p + "mlp.up_proj", c.intermediateSize(), h, c.mlpBias(), requested, kernelsFor),
                        linear(p + "mlp.down_proj", h, c.intermediateSize(), c.mlpBias(), requested, kernelsFor));
            }
            this.finalNorm = vector("model.norm.weight", h);
            this.lmHead = c.tieWordEmbeddings()
                    ? new Linear(embedTokens, null, kernelsFor.apply(embedTokens.dtype()))
                    : linear("lm_head", c.vocabSize(), h, false, requested, kernelsFor);
            this.invFreq = inverseFrequencies(c);
            this.info = new ModelInfo(c.modelType(), c.architecture(), c.vocabSize(), c.maxPositionEmbeddings(), h,
                    c.numLayers(), parameterCount, weightBytes, embedTokens.dtype().name(), 2L * c.numLayers() * c.kvDim() * Float.BYTES);
        } catch (RuntimeException e) {
            convertedWeights.close();
            throw e;
        }
    }

    private static DType requestedDtype(String dtype) {
        return switch (dtype == null ? "auto" : dtype) {
            case "auto" -> null;
            case "float32", "float" -> DType.F32;
            case "bfloat16" -> DType.BF16;
            case "float16", "half" -> DType.F16;
            default -> throw new IllegalArgumentException("dtype " + dtype + " is not supported (auto, float32, bfloat16, float16)");
        };
    }

    private Tensor matrix(String name, int rows, int cols, DType requested) {
        Tensor t = checkpoint.get(name);
        if (t.rank() != 2 || t.dim(0) != rows || t.dim(1) != cols) {
            throw new IllegalArgumentException(name + " has shape " + Arrays.toString(t.shape()) + ", config needs [" + rows + ", " + cols + "]");
        }
        if (requested != null) t = Tensors.convert(t, requested, convertedWeights);
        parameterCount += t.numel();
        weightBytes += t.data().byteSize();
        return t;
    }

    private float[] vector(String name, int size) {
        Tensor t = checkpoint.get(name);
        if (t.rank() != 1 || t.dim(0) != size) {
            throw new IllegalArgumentException(name + " has shape " + Arrays.toString(t.shape()) + ", config needs [" + size + "]");
        }
        parameterCount += t.numel();
        weightBytes += t.data().byteSize();
        return Tensors.toFloats(t);
    }

    private Linear linear(String prefix, int out, int in, boolean bias, DType requested, Function<DType, KernelBackend> kernelsFor) {
        Tensor w = matrix(prefix + ".weight", out, in, requested);
        return new Linear(w, bias ? vector(prefix + ".bias", out) : null, kernelsFor.apply(w.dtype()));
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
        if (numBlocks < 1 || blockSize < 1) throw new IllegalArgumentException("KV cache of " + numBlocks + " blocks x " + blockSize + " tokens");
        long floats = (long) config.numLayers() * blockSize * 2 * config.kvDim();
        if (floats > Integer.MAX_VALUE - 8) throw new IllegalArgumentException("block size " + blockSize + " makes a block too large");
        this.kvBlocks = new float[numBlocks][];
        this.blockSize = blockSize;
    }

    // ---------------------------------------------------------------- forward

    @Override
    public float[][] forward(List<BatchEntry> batch) {
        ensureOpen();
        if (kvBlocks == null) throw new IllegalStateException("allocateKvCache first");
        int e = batch.size();
        int total = 0;
        int withLogits = 0;
        Set<Long> written = new HashSet<>();
        for (int i = 0; i < e; i++) {
            BatchEntry entry = batch.get(i);
            int n = entry.tokens().length;
            if (n == 0) throw new IllegalArgumentException("batch entry " + i + ": no tokens");
            int start = entry.startPosition();
            if (start < 0) throw new IllegalArgumentException("batch entry " + i + ": negative start position " + start);
            int end = start + n;
            if ((long) entry.blockTable().length * blockSize < end) {
                throw new IllegalArgumentException("batch entry " + i + ": a block table of " + entry.blockTable().length
                        + " blocks cannot hold positions up to " + end);
            }
            for (int b = 0; b < (end + blockSize - 1) / blockSize; b++) {
                int id = entry.blockTable()[b];
                if (id < 0 || id >= kvBlocks.length) throw new IllegalArgumentException("batch entry " + i + ": block " + id + " outside the cache");
                if (b * blockSize < start && kvBlocks[id] == null) {
                    throw new IllegalArgumentException("batch entry " + i + ": block " + id + " holds no cached positions");
                }
            }
            for (int p = start; p < end; p++) {
                if (!written.add(slot(entry.blockTable(), p))) {
                    throw new IllegalArgumentException("batch entry " + i + ": the KV slot of position " + p + " is written twice in one batch");
                }
            }
            for (int tok : entry.tokens()) {
                if (tok < 0 || tok >= config.vocabSize()) throw new IllegalArgumentException("batch entry " + i + ": token " + tok + " outside the vocabulary");
            }
            total += n;
            if (entry.wantLogits()) withLogits++;
        }
        if (e == 0) return new float[0][];
        for (long slot : written) {
            int id = (int) (slot / blockSize);
            if (kvBlocks[id] == null) kvBlocks[id] = new float[config.numLayers() * blockSize * 2 * config.kvDim()];
        }

        Scratch s = scratch(total, Math.max(withLogits, 1));
        int hidden = config.hiddenSize();
        int t = 0;
        for (int i = 0; i < e; i++) {
            int[] tokens = batch.get(i).tokens();
            for (int j = 0; j < tokens.length; j++, t++) {
                Tensors.readRow(embedTokens, tokens[j], s.x, t * hidden);
                ropeAngles(s, t, batch.get(i).startPosition() + j);
            }
        }

        for (int l = 0; l < layers.length; l++) {
            Layer layer = layers[l];
            rmsNorm(s.x, layer.attnNorm(), s.xb, total);
            layer.q().apply(s.xb, total, s.q);
            layer.k().apply(s.xb, total, s.k);
            layer.v().apply(s.xb, total, s.v);
            rotate(s.q, s, total, config.numHeads());
            rotate(s.k, s, total, config.numKvHeads());
            attention(l, batch, s);
            layer.o().apply(s.att, total, s.proj);
            addInPlace(s.x, s.proj, total * hidden);

            rmsNorm(s.x, layer.mlpNorm(), s.xb, total);
            layer.gate().apply(s.xb, total, s.gate);
            layer.up().apply(s.xb, total, s.up);
            int inter = config.intermediateSize();
            for (int i = 0; i < total * inter; i++) {
                float g = s.gate[i];
                s.gate[i] = g / (1f + (float) Math.exp(-g)) * s.up[i];
            }
            layer.down().apply(s.gate, total, s.proj);
            addInPlace(s.x, s.proj, total * hidden);
        }

        float[][] out = new float[e][];
        if (withLogits == 0) return out;
        t = 0;
        for (int i = 0, r = 0; i < e; i++) {
            t += batch.get(i).tokens().length;
            if (batch.get(i).wantLogits()) System.arraycopy(s.x, (t - 1) * hidden, s.lastHidden, r++ * hidden, hidden);
        }
        rmsNorm(s.lastHidden, finalNorm, s.lastNormed, withLogits);
        int vocab = config.vocabSize();
        lmHead.apply(s.lastNormed, withLogits, s.logits);
        for (int i = 0, r = 0; i < e; i++) {
            if (batch.get(i).wantLogits()) out[i] = Arrays.copyOfRange(s.logits, r * vocab, ++r * vocab);
        }
        return out;
    }

    /** Global KV slot of position {@code p}: block id × block size + offset in the block. */
    private long slot(int[] blockTable, int p) {
        return (long) blockTable[p / blockSize] * blockSize + p % blockSize;
    }

    private void rmsNorm(float[] x, float[] weight, float[] out, int rows) {
        int dim = weight.length;
        for (int r = 0; r < rows; r++) {
            int o = r * dim;
            double ss = 0;
            for (int i = 0; i < dim; i++) ss += (double) x[o + i] * x[o + i];
            float scale = (float) (1.0 / Math.sqrt(ss / dim + config.rmsNormEps()));
            for (int i = 0; i < dim; i++) out[o + i] = weight[i] * (x[o + i] * scale);
        }
    }

    private static void addInPlace(float[] acc, float[] delta, int n) {
        for (int i = 0; i < n; i++) acc[i] += delta[i];
    }

    private void ropeAngles(Scratch s, int t, int position) {
        int half = invFreq.length;
        for (int i = 0; i < half; i++) {
            double angle = position * invFreq[i];
            s.cos[t * half + i] = (float) Math.cos(angle);
            s.sin[t * half + i] = (float) Math.sin(angle);
        }
    }

    /** RoPE in HF's rotate_half layout: dimension i pairs with i + headDim/2. */
    private void rotate(float[] x, Scratch s, int rows, int heads) {
        int headDim = config.headDim();
        int half = headDim / 2;
        for (int t = 0; t < rows; t++) {
            for (int h = 0; h < heads; h++) {
                int base = (t * heads + h) * headDim;
                for (int i = 0; i < half; i++) {
                    float c = s.cos[t * half + i];
                    float sn = s.sin[t * half + i];
                    float a = x[base + i];
                    float b = x[base + i + half];
                    x[base + i] = a * c - b * sn;
                    x[base + i + half] = b * c + a * sn;
                }
            }
        }
    }

    /**
     * Writes this layer's keys and values of every entry into their slots, then computes causal
     * attention per (entry, head): the query at position p sees positions [0, p] (or the sliding
     * window ending there), read through the entry's block table.
     */
    private void attention(int layer, List<BatchEntry> batch, Scratch s) {
        int kvDim = config.kvDim();
        int e = batch.size();
        int[] firstToken = new int[e];
        long work = 0;
        for (int i = 0, t = 0; i < e; i++) {
            BatchEntry entry = batch.get(i);
            int n = entry.tokens().length;
            firstToken[i] = t;
            for (int j = 0; j < n; j++, t++) {
                int p = entry.startPosition() + j;
                float[] block = kvBlocks[entry.blockTable()[p / blockSize]];
                int off = kvOffset(layer, p % blockSize);
                System.arraycopy(s.k, t * kvDim, block, off, kvDim);
                System.arraycopy(s.v, t * kvDim, block, off + kvDim, kvDim);
            }
            work += (long) n * (entry.startPosition() + n);
        }
        int heads = config.numHeads();
        IntStream tasks = IntStream.range(0, e * heads);
        // a hand-off to the common pool only pays off for long prefills
        if (work * heads * config.headDim() > (1 << 20)) tasks = tasks.parallel();
        tasks.forEach(task -> {
            int i = task / heads;
            attendHead(layer, task % heads, batch.get(i), firstToken[i], s);
        });
    }

    /** Offset of (layer, slot in block) inside a block array: the key there, the value kvDim later. */
    private int kvOffset(int layer, int slotInBlock) {
        return (layer * blockSize + slotInBlock) * 2 * config.kvDim();
    }

    private void attendHead(int layer, int h, BatchEntry entry, int t0, Scratch s) {
        int headDim = config.headDim();
        int qDim = config.qDim();
        int kvDim = config.kvDim();
        int kvHeadOff = (h / (config.numHeads() / config.numKvHeads())) * headDim;
        int[] table = entry.blockTable();
        int start = entry.startPosition();
        int n = entry.tokens().length;
        float scale = (float) (1.0 / Math.sqrt(headDim));
        float[] scores = new float[start + n];
        for (int i = 0; i < n; i++) {
            int pos = start + i;
            int from = config.slidingWindow() > 0 ? Math.max(0, pos - config.slidingWindow() + 1) : 0;
            int qOff = (t0 + i) * qDim + h * headDim;
            float max = Float.NEGATIVE_INFINITY;
            for (int p = from; p <= pos; p++) {
                float[] block = kvBlocks[table[p / blockSize]];
                int kOff = kvOffset(layer, p % blockSize) + kvHeadOff;
                float dot = 0f;
                for (int d = 0; d < headDim; d++) dot += s.q[qOff + d] * block[kOff + d];
                scores[p] = dot * scale;
                max = Math.max(max, scores[p]);
            }
            float sum = 0f;
            for (int p = from; p <= pos; p++) {
                scores[p] = (float) Math.exp(scores[p] - max);
                sum += scores[p];
            }
            float inv = 1f / sum;
            int out = (t0 + i) * qDim + h * headDim;
            Arrays.fill(s.att, out, out + headDim, 0f);
            for (int p = from; p <= pos; p++) {
                float w = scores[p] * inv;
                float[] block = kvBlocks[table[p / blockSize]];
                int vOff = kvOffset(layer, p % blockSize) + kvDim + kvHeadOff;
                for (int d = 0; d < headDim; d++) s.att[out + d] += w * block[vOff + d];
            }
        }
    }

    /** Activation buffers, reused across steps and grown to the largest batch seen. */
    private static final class Scratch {
        final int tokens;
        final int entries;
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
        final float[] lastHidden; // (E, hidden) last token of each entry
        final float[] lastNormed; // (E, hidden)
        final float[] logits;     // (E, vocab)

        Scratch(LlamaConfig c, int tokens, int entries) {
            this.tokens = tokens;
            this.entries = entries;
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
            lastHidden = new float[entries * h];
            lastNormed = new float[entries * h];
            logits = new float[entries * c.vocabSize()];
        }
    }

    private Scratch scratch(int tokens, int entries) {
        Scratch s = scratch;
        if (s == null || s.tokens < tokens || s.entries < entries) {
            // round up so that a slowly growing batch does not reallocate every step
            int t = Math.max(tokens, s == null ? 0 : s.tokens);
            int e = Math.max(entries, s == null ? 0 : s.entries);
            s = new Scratch(config, t <= 1 ? 1 : Integer.highestOneBit(t - 1) << 1, Math.max(e, 1));
            scratch = s;
        }
        return s;
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
        kvBlocks = null;
        convertedWeights.close();
        checkpoint.close();
    }
}
