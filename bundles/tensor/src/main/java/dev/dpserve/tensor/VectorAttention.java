// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tensor;

import dev.dpserve.api.tensor.PagedAttention;
import java.util.Arrays;
import java.util.concurrent.ExecutorService;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Paged attention on the Vector API: per (token, query head) the q·k dot products and the
 * {@code Σ p·v} accumulation run over the preferred float species, the softmax is
 * {@link VectorOps#softmaxRow}. The (token, head) pairs are spread over the pool when the call is
 * large (prefill chunks, long contexts, many heads).
 */
final class VectorAttention {

    private static final VectorSpecies<Float> FS = FloatVector.SPECIES_PREFERRED;
    private static final int LANES = FS.length();
    /** Multiply-adds below which the call stays on the calling thread. */
    private static final long PARALLEL_MIN_WORK = 1L << 18;

    private VectorAttention() {
    }

    static void attention(ExecutorService pool, int threads, PagedAttention a) {
        if (a.numTokens() >= VectorTiledAttention.MIN_TOKENS) {
            VectorTiledAttention.attention(pool, threads, a);
            return;
        }
        int heads = a.numHeads();
        int tasks = a.numTokens() * heads;
        long work = (long) a.numTokens() * a.contextLength() * heads * (a.kDim() + a.vDim());
        if (pool == null || threads == 1 || work < PARALLEL_MIN_WORK) {
            float[] scores = new float[a.contextLength()];
            for (int task = 0; task < tasks; task++) attend(a, task / heads, task % heads, scores);
            return;
        }
        // tasks of a few heads each, so a worker reuses its scores buffer
        int perTask = Math.max(1, tasks / (threads * 8));
        int count = (tasks + perTask - 1) / perTask;
        Tasks.run(pool, threads, count, c -> {
            float[] scores = new float[a.contextLength()];
            for (int task = c * perTask; task < Math.min(tasks, (c + 1) * perTask); task++) {
                attend(a, task / heads, task % heads, scores);
            }
        });
    }

    private static void attend(PagedAttention a, int t, int h, float[] scores) {
        int pos = a.startPosition() + t;
        int from = a.window() > 0 ? Math.max(0, pos - a.window() + 1) : 0;
        int kvHead = h / (a.numHeads() / a.numKvHeads());
        float[] q = a.q();
        int q0 = a.qOff() + t * a.qTokenStride() + h * a.qHeadStride();
        int kDim = a.kDim();
        int vDim = a.vDim();
        int kHead = a.kOffset() + kvHead * a.kHeadStride();
        int vHead = a.vOffset() + kvHead * a.vHeadStride();
        float[][] blocks = a.blocks();
        int[] table = a.blockTable();
        int bs = a.blockSize();
        for (int p = from; p <= pos; p++) {
            float[] block = blocks[table[p / bs]];
            scores[p] = dot(q, q0, block, JavaKernelBackend.slot(a, p) + kHead, kDim) * a.scale();
        }
        VectorOps.softmaxRow(scores, from, pos + 1 - from);
        float[] out = a.out();
        int o0 = a.outOff() + t * a.outTokenStride() + h * a.outHeadStride();
        Arrays.fill(out, o0, o0 + vDim, 0f);
        int bound = FS.loopBound(vDim);
        for (int p = from; p <= pos; p++) {
            float w = scores[p];
            FloatVector wv = FloatVector.broadcast(FS, w);
            float[] block = blocks[table[p / bs]];
            int v0 = JavaKernelBackend.slot(a, p) + vHead;
            int d = 0;
            for (; d < bound; d += LANES) {
                FloatVector.fromArray(FS, block, v0 + d).fma(wv, FloatVector.fromArray(FS, out, o0 + d)).intoArray(out, o0 + d);
            }
            for (; d < vDim; d++) out[o0 + d] += w * block[v0 + d];
        }
    }

    private static float dot(float[] x, int xo, float[] y, int yo, int n) {
        FloatVector a0 = FloatVector.zero(FS);
        FloatVector a1 = a0;
        int d = 0;
        for (int bound = n - 2 * LANES; d <= bound; d += 2 * LANES) {
            a0 = FloatVector.fromArray(FS, x, xo + d).fma(FloatVector.fromArray(FS, y, yo + d), a0);
            a1 = FloatVector.fromArray(FS, x, xo + d + LANES).fma(FloatVector.fromArray(FS, y, yo + d + LANES), a1);
        }
        for (int bound = n - LANES; d <= bound; d += LANES) {
            a0 = FloatVector.fromArray(FS, x, xo + d).fma(FloatVector.fromArray(FS, y, yo + d), a0);
        }
        float s = a0.add(a1).reduceLanes(VectorOperators.ADD);
        for (; d < n; d++) s += x[xo + d] * y[yo + d];
        return s;
    }
}
