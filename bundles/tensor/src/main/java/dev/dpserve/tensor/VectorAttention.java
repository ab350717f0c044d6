// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tensor;

import dev.dpserve.api.tensor.PagedAttention;
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
        int p = from;
        float scale = a.scale();
        for (; p + 3 <= pos; p += 4) {
            dot4(q, q0, blocks[table[p / bs]], JavaKernelBackend.slot(a, p) + kHead,
                    blocks[table[(p + 1) / bs]], JavaKernelBackend.slot(a, p + 1) + kHead,
                    blocks[table[(p + 2) / bs]], JavaKernelBackend.slot(a, p + 2) + kHead,
                    blocks[table[(p + 3) / bs]], JavaKernelBackend.slot(a, p + 3) + kHead, kDim, scores, p, scale);
        }
        for (; p <= pos; p++) {
            float[] block = blocks[table[p / bs]];
            scores[p] = dot(q, q0, block, JavaKernelBackend.slot(a, p) + kHead, kDim) * scale;
        }
        VectorOps.softmaxRow(scores, from, pos + 1 - from);
        float[] out = a.out();
        int o0 = a.outOff() + t * a.outTokenStride() + h * a.outHeadStride();
        // Σ p·v with the output in registers, four vectors of it per pass over the positions
        int d = 0;
        for (; d + 4 * LANES <= vDim; d += 4 * LANES) {
            FloatVector c0 = FloatVector.zero(FS), c1 = c0, c2 = c0, c3 = c0;
            for (p = from; p <= pos; p++) {
                float[] block = blocks[table[p / bs]];
                int v0 = JavaKernelBackend.slot(a, p) + vHead + d;
                FloatVector wv = FloatVector.broadcast(FS, scores[p]);
                c0 = FloatVector.fromArray(FS, block, v0).fma(wv, c0);
                c1 = FloatVector.fromArray(FS, block, v0 + LANES).fma(wv, c1);
                c2 = FloatVector.fromArray(FS, block, v0 + 2 * LANES).fma(wv, c2);
                c3 = FloatVector.fromArray(FS, block, v0 + 3 * LANES).fma(wv, c3);
            }
            c0.intoArray(out, o0 + d);
            c1.intoArray(out, o0 + d + LANES);
            c2.intoArray(out, o0 + d + 2 * LANES);
            c3.intoArray(out, o0 + d + 3 * LANES);
        }
        for (; d + LANES <= vDim; d += LANES) {
            FloatVector c0 = FloatVector.zero(FS);
            for (p = from; p <= pos; p++) {
                c0 = FloatVector.fromArray(FS, blocks[table[p / bs]], JavaKernelBackend.slot(a, p) + vHead + d)
                        .fma(FloatVector.broadcast(FS, scores[p]), c0);
            }
            c0.intoArray(out, o0 + d);
        }
        for (; d < vDim; d++) {
            float c = 0;
            for (p = from; p <= pos; p++) c += scores[p] * blocks[table[p / bs]][JavaKernelBackend.slot(a, p) + vHead + d];
            out[o0 + d] = c;
        }
    }

    /** scores[p..p+3] = scale · q·k of four cached positions, one pass over q. */
    private static void dot4(float[] x, int xo, float[] y0, int o0, float[] y1, int o1, float[] y2, int o2, float[] y3, int o3,
                             int n, float[] scores, int p, float scale) {
        FloatVector a0 = FloatVector.zero(FS), a1 = a0, a2 = a0, a3 = a0;
        int d = 0;
        for (int bound = FS.loopBound(n); d < bound; d += LANES) {
            FloatVector xv = FloatVector.fromArray(FS, x, xo + d);
            a0 = xv.fma(FloatVector.fromArray(FS, y0, o0 + d), a0);
            a1 = xv.fma(FloatVector.fromArray(FS, y1, o1 + d), a1);
            a2 = xv.fma(FloatVector.fromArray(FS, y2, o2 + d), a2);
            a3 = xv.fma(FloatVector.fromArray(FS, y3, o3 + d), a3);
        }
        float s0 = a0.reduceLanes(VectorOperators.ADD);
        float s1 = a1.reduceLanes(VectorOperators.ADD);
        float s2 = a2.reduceLanes(VectorOperators.ADD);
        float s3 = a3.reduceLanes(VectorOperators.ADD);
        for (; d < n; d++) {
            float xd = x[xo + d];
            s0 += xd * y0[o0 + d];
            s1 += xd * y1[o1 + d];
            s2 += xd * y2[o2 + d];
            s3 += xd * y3[o3 + d];
        }
        scores[p] = s0 * scale;
        scores[p + 1] = s1 * scale;
        scores[p + 2] = s2 * scale;
        scores[p + 3] = s3 * scale;
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
