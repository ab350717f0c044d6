// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model.deepseek;

import dev.dpserve.api.tensor.Tensor;
import dev.dpserve.model.ConfigJson;
import dev.dpserve.model.safetensors.SafetensorsCheckpoint;
import dev.dpserve.model.safetensors.Tensors;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.IntStream;

/**
 * A deliberately naive DeepSeek-V3/V2 in double precision for tests: no cache (every call
 * recomputes the whole sequence), expanded attention with Hugging Face's RoPE formulation
 * (de-interleave the rope dims, then rotate_half), experts token by token, routing by sorting.
 * Shares only config parsing with the optimised model.
 */
final class NaiveDeepseek implements AutoCloseable {

    private final DeepseekV3Config c;
    private final SafetensorsCheckpoint ckpt;

    NaiveDeepseek(Path dir) throws IOException {
        this.c = DeepseekV3Config.from(ConfigJson.read(dir));
        this.ckpt = SafetensorsCheckpoint.open(dir);
    }

    @Override
    public void close() {
        ckpt.close();
    }

    /** Logits (vocab) of the last token of {@code tokens}, placed at positions 0..n-1. */
    double[] lastLogits(int[] tokens) {
        int n = tokens.length;
        double[][] x = new double[n][];
        for (int t = 0; t < n; t++) x[t] = row(ckpt.get("model.embed_tokens.weight"), tokens[t]);
        for (int l = 0; l < c.numLayers(); l++) {
            String p = "model.layers." + l + ".";
            double[][] normed = new double[n][];
            for (int t = 0; t < n; t++) normed[t] = rms(x[t], vec(p + "input_layernorm.weight"));
            double[][] att = attention(p + "self_attn.", normed);
            for (int t = 0; t < n; t++) x[t] = add(x[t], att[t]);
            for (int t = 0; t < n; t++) {
                double[] y = rms(x[t], vec(p + "post_attention_layernorm.weight"));
                x[t] = add(x[t], c.isMoeLayer(l) ? moe(p + "mlp.", y) : mlp(p + "mlp.", y));
            }
        }
        double[] last = rms(x[n - 1], vec("model.norm.weight"));
        return matvec(ckpt.get(c.tieWordEmbeddings() ? "model.embed_tokens.weight" : "lm_head.weight"), last);
    }

    private double[][] attention(String p, double[][] x) {
        int n = x.length;
        int heads = c.numHeads();
        int nope = c.qkNopeHeadDim();
        int rope = c.qkRopeHeadDim();
        int v = c.vHeadDim();
        int lora = c.kvLoraRank();
        double[][][] q = new double[n][heads][];
        double[][][] k = new double[n][heads][];
        double[][][] val = new double[n][heads][];
        for (int t = 0; t < n; t++) {
            double[] qAll = c.qLoraRank() > 0
                    ? matvec(ckpt.get(p + "q_b_proj.weight"), rms(matvec(ckpt.get(p + "q_a_proj.weight"), x[t]), vec(p + "q_a_layernorm.weight")))
                    : matvec(ckpt.get(p + "q_proj.weight"), x[t]);
            double[] kvA = matvec(ckpt.get(p + "kv_a_proj_with_mqa.weight"), x[t]);
            double[] latent = rms(slice(kvA, 0, lora), vec(p + "kv_a_layernorm.weight"));
            double[] kPe = ropeHf(slice(kvA, lora, rope), t);
            double[] kv = matvec(ckpt.get(p + "kv_b_proj.weight"), latent);
            for (int hd = 0; hd < heads; hd++) {
                double[] qh = slice(qAll, hd * (nope + rope), nope + rope);
                q[t][hd] = concat(slice(qh, 0, nope), ropeHf(slice(qh, nope, rope), t));
                k[t][hd] = concat(slice(kv, hd * (nope + v), nope), kPe);
                val[t][hd] = slice(kv, hd * (nope + v) + nope, v);
            }
        }
        double scale = 1 / Math.sqrt(nope + rope);
        if (c.ropeScaling() != null && c.ropeScaling().mscaleAllDim() != 0) {
            double m = mscale(c.ropeScaling().factor(), c.ropeScaling().mscaleAllDim());
            scale *= m * m;
        }
        double[][] out = new double[n][];
        for (int t = 0; t < n; t++) {
            double[] o = new double[heads * v];
            for (int hd = 0; hd < heads; hd++) {
                double[] s = new double[t + 1];
                double max = Double.NEGATIVE_INFINITY;
                for (int u = 0; u <= t; u++) {
                    s[u] = dot(q[t][hd], k[u][hd]) * scale;
                    max = Math.max(max, s[u]);
                }
                double sum = 0;
                for (int u = 0; u <= t; u++) sum += s[u] = Math.exp(s[u] - max);
                for (int u = 0; u <= t; u++) {
                    for (int d = 0; d < v; d++) o[hd * v + d] += s[u] / sum * val[u][hd][d];
                }
            }
            out[t] = matvec(ckpt.get(p + "o_proj.weight"), o);
        }
        return out;
    }

    /** HF DeepSeek: permute (x0, x1, x2, x3, ...) to (x0, x2, ..., x1, x3, ...), then rotate_half RoPE. */
    private double[] ropeHf(double[] x, int position) {
        int d = x.length;
        int half = d / 2;
        double[] perm = new double[d];
        for (int i = 0; i < half; i++) {
            perm[i] = x[2 * i];
            perm[half + i] = x[2 * i + 1];
        }
        double[] invFreq = yarnInvFreq();
        double attn = 1.0;
        if (c.ropeScaling() != null) {
            attn = mscale(c.ropeScaling().factor(), c.ropeScaling().mscale()) / mscale(c.ropeScaling().factor(), c.ropeScaling().mscaleAllDim());
        }
        double[] out = new double[d];
        for (int j = 0; j < d; j++) {
            double angle = position * invFreq[j % half];
            double rotated = j < half ? -perm[j + half] : perm[j - half];
            out[j] = perm[j] * Math.cos(angle) * attn + rotated * Math.sin(angle) * attn;
        }
        return out;
    }

    private double[] yarnInvFreq() {
        int d = c.qkRopeHeadDim();
        double base = c.ropeTheta();
        double[] f = new double[d / 2];
        for (int i = 0; i < f.length; i++) f[i] = 1.0 / Math.pow(base, 2.0 * i / d);
        DeepseekV3Config.RopeScaling s = c.ropeScaling();
        if (s == null) return f;
        double lo = Math.max(Math.floor(d * Math.log(s.originalMaxPositionEmbeddings() / (s.betaFast() * 2 * Math.PI)) / (2 * Math.log(base))), 0);
        double hi = Math.min(Math.ceil(d * Math.log(s.originalMaxPositionEmbeddings() / (s.betaSlow() * 2 * Math.PI)) / (2 * Math.log(base))), d - 1);
        if (lo == hi) hi += 0.001;
        for (int i = 0; i < f.length; i++) {
            double mask = 1 - Math.min(1, Math.max(0, (i - lo) / (hi - lo)));
            f[i] = f[i] / s.factor() * (1 - mask) + f[i] * mask;
        }
        return f;
    }

    private static double mscale(double factor, double m) {
        return factor <= 1 ? 1 : 0.1 * m * Math.log(factor) + 1;
    }

    private double[] mlp(String p, double[] x) {
        double[] g = matvec(ckpt.get(p + "gate_proj.weight"), x);
        double[] u = matvec(ckpt.get(p + "up_proj.weight"), x);
        for (int i = 0; i < g.length; i++) g[i] = g[i] / (1 + Math.exp(-g[i])) * u[i];
        return matvec(ckpt.get(p + "down_proj.weight"), g);
    }

    private double[] moe(String p, double[] x) {
        int experts = c.nRoutedExperts();
        double[] logits = matvec(ckpt.get(p + "gate.weight"), x);
        double[] scores = new double[experts];
        if (c.scoringFunc().equals("sigmoid")) {
            for (int e = 0; e < experts; e++) scores[e] = 1 / (1 + Math.exp(-logits[e]));
        } else {
            double sum = 0;
            for (int e = 0; e < experts; e++) sum += Math.exp(logits[e]);
            for (int e = 0; e < experts; e++) scores[e] = Math.exp(logits[e]) / sum;
        }
        boolean biased = c.topkMethod().equals("noaux_tc");
        double[] bias = biased ? vec(p + "gate.e_score_correction_bias") : new double[experts];
        double[] choice = new double[experts];
        for (int e = 0; e < experts; e++) choice[e] = scores[e] + bias[e];
        List<Integer> allowed = new ArrayList<>();
        if (c.topkMethod().equals("greedy")) {
            for (int e = 0; e < experts; e++) allowed.add(e);
        } else {
            int size = experts / c.nGroup();
            double[] groupScore = new double[c.nGroup()];
            for (int g = 0; g < c.nGroup(); g++) {
                double[] members = slice(choice, g * size, size);
                java.util.Arrays.sort(members);
                groupScore[g] = biased ? members[size - 1] + members[size - 2] : members[size - 1];
            }
            IntStream.range(0, c.nGroup()).boxed()
                    .sorted(Comparator.comparingDouble((Integer g) -> -groupScore[g]).thenComparing(g -> g))
                    .limit(c.topkGroup())
                    .forEach(g -> IntStream.range(g * size, (g + 1) * size).forEach(allowed::add));
        }
        List<Integer> top = allowed.stream()
                .sorted(Comparator.comparingDouble((Integer e) -> -choice[e]).thenComparing(e -> e))
                .limit(c.numExpertsPerTok()).toList();
        double norm = 0;
        for (int e : top) norm += scores[e];
        double[] out = new double[x.length];
        for (int e : top) {
            double w = scores[e] * (c.normTopkProb() && top.size() > 1 ? 1 / norm : 1) * c.routedScalingFactor();
            double[] y = mlp(p + "experts." + e + ".", x);
            for (int i = 0; i < out.length; i++) out[i] += w * y[i];
        }
        return c.nSharedExperts() > 0 ? add(out, mlp(p + "shared_experts.", x)) : out;
    }

    private double[] rms(double[] x, double[] w) {
        double ss = 0;
        for (double v : x) ss += v * v;
        double scale = 1 / Math.sqrt(ss / x.length + c.rmsNormEps());
        double[] out = new double[x.length];
        for (int i = 0; i < x.length; i++) out[i] = w[i] * x[i] * scale;
        return out;
    }

    private double[] vec(String name) {
        float[] f = Tensors.toFloats(ckpt.get(name));
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) d[i] = f[i];
        return d;
    }

    private static double[] row(Tensor w, int r) {
        int cols = w.dim(1);
        double[] out = new double[cols];
        for (int j = 0; j < cols; j++) out[j] = Tensors.get(w, (long) r * cols + j);
        return out;
    }

    private static double[] matvec(Tensor w, double[] x) {
        int rows = w.dim(0);
        int cols = w.dim(1);
        if (cols != x.length) throw new IllegalArgumentException(w + " times " + x.length);
        double[] out = new double[rows];
        for (int r = 0; r < rows; r++) {
            double s = 0;
            for (int j = 0; j < cols; j++) s += Tensors.get(w, (long) r * cols + j) * x[j];
            out[r] = s;
        }
        return out;
    }

    private static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) s += a[i] * b[i];
        return s;
    }

    private static double[] add(double[] a, double[] b) {
        double[] out = new double[a.length];
        for (int i = 0; i < a.length; i++) out[i] = a[i] + b[i];
        return out;
    }

    private static double[] slice(double[] a, int from, int len) {
        return java.util.Arrays.copyOfRange(a, from, from + len);
    }

    private static double[] concat(double[] a, double[] b) {
        double[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
