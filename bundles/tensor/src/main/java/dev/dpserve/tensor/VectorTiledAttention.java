// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tensor;

import dev.dpserve.api.tensor.PagedAttention;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Paged attention for many new tokens (prefill chunks) on the Vector API, one tile of up to
 * {@code LANES} consecutive query tokens of one head at a time, with the tile's queries in the
 * vector lanes:
 * <ol>
 *   <li>the tile's queries are transposed once ({@code qT[d][j]}, scaled), so each cached key row
 *       meets all of them by broadcasting its elements: no horizontal sums;</li>
 *   <li>scores {@code sT[p][j]} for every position any query of the tile sees, the causal (and
 *       sliding-window) mask applied per lane, and the softmax of all the tile's rows at once, lane by
 *       lane (max, exp, sum over p);</li>
 *   <li>{@code out[j] = Σ_p sT[p][j]·v[p] / sum[j]}, four queries and four vectors of v at a time,
 *       each v row loaded once per four queries.</li>
 * </ol>
 * The (tile, head) pairs are spread over the pool. Results equal the per-token loop up to F32
 * summation order.
 */
final class VectorTiledAttention {

    private static final VectorSpecies<Float> FS = FloatVector.SPECIES_PREFERRED;
    private static final int LANES = FS.length();
    /** Fewer new tokens than this take the per-token path. */
    static final int MIN_TOKENS = 8;

    private VectorTiledAttention() {
    }

    /** Work buffers of one thread, grown to the largest call seen. */
    private static final class Scratch {
        float[] qT = new float[0];
        float[] sT = new float[0];
        float[] inv = new float[LANES];

        void ensure(int kDim, int positions) {
            if (qT.length < kDim * LANES) qT = new float[kDim * LANES];
            if (sT.length < positions * LANES) sT = new float[positions * LANES];
        }
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    static void attention(java.util.concurrent.ExecutorService pool, int threads, PagedAttention a) {
        int tiles = (a.numTokens() + LANES - 1) / LANES;
        int heads = a.numHeads();
        int tasks = tiles * heads;
        if (pool == null || threads == 1 || tasks == 1) {
            for (int task = 0; task < tasks; task++) tile(a, task / heads, task % heads);
            return;
        }
        // later tiles see more positions: hand them out first so the pool ends evenly
        Tasks.run(pool, threads, tasks, c -> {
            int task = tasks - 1 - c;
            tile(a, task / heads, task % heads);
        });
    }

    private static void tile(PagedAttention a, int tileIndex, int h) {
        int t0 = tileIndex * LANES;
        int tq = Math.min(LANES, a.numTokens() - t0);
        int pos0 = a.startPosition() + t0;          // position of the tile's first query
        int posEnd = pos0 + tq - 1;                  // of its last
        int lo = a.window() > 0 ? Math.max(0, pos0 - a.window() + 1) : 0;
        int span = posEnd - lo + 1;
        int kDim = a.kDim();
        Scratch s = SCRATCH.get();
        s.ensure(kDim, span);
        float[] qT = s.qT;
        float[] sT = s.sT;

        // 1. qT[d][j] = scale · q[t0 + j][h][d]; lanes past the tile stay 0
        float[] q = a.q();
        float scale = a.scale();
        java.util.Arrays.fill(qT, 0, kDim * LANES, 0f);
        for (int j = 0; j < tq; j++) {
            int q0 = a.qOff() + (t0 + j) * a.qTokenStride() + h * a.qHeadStride();
            for (int d = 0; d < kDim; d++) qT[d * LANES + j] = q[q0 + d] * scale;
        }

        // 2. scores, masked: lane j sees [from_j, pos0 + j]; then exp and the per-lane sums
        int kvHead = h / (a.numHeads() / a.numKvHeads());
        scores(a, qT, sT, kvHead, lo, pos0, posEnd, tq);
        float[] inv = s.inv;
        softmaxLanes(sT, span, inv);

        // 3. out[j] = Σ_p e[p][j] · v[p] · inv[j]
        int vDim = a.vDim();
        int vHead = a.vOffset() + kvHead * a.vHeadStride();
        float[] out = a.out();
        int j = 0;
        for (; j + 4 <= tq; j += 4) values4(a, sT, inv, lo, posEnd, j, t0, h, vHead, vDim, out);
        for (; j < tq; j++) values1(a, sT, inv, lo, posEnd, j, t0, h, vHead, vDim, out);
    }

    /** sT[p - lo][j] = qT[.][j]·k[p], or -inf where lane j does not see p; lanes past the tile hold 0 (qT is 0 there) and are never read. */
    private static void scores(PagedAttention a, float[] qT, float[] sT, int kvHead, int lo, int pos0, int posEnd, int tq) {
        int kDim = a.kDim();
        int kHead = a.kOffset() + kvHead * a.kHeadStride();
        float[][] blocks = a.blocks();
        int[] table = a.blockTable();
        int bs = a.blockSize();
        int window = a.window();
        int p = lo;
        for (; p + 3 <= posEnd; p += 4) {
            float[] b0 = blocks[table[p / bs]];
            float[] b1 = blocks[table[(p + 1) / bs]];
            float[] b2 = blocks[table[(p + 2) / bs]];
            float[] b3 = blocks[table[(p + 3) / bs]];
            int k0 = JavaKernelBackend.slot(a, p) + kHead;
            int k1 = JavaKernelBackend.slot(a, p + 1) + kHead;
            int k2 = JavaKernelBackend.slot(a, p + 2) + kHead;
            int k3 = JavaKernelBackend.slot(a, p + 3) + kHead;
            FloatVector s0 = FloatVector.zero(FS), s1 = s0, s2 = s0, s3 = s0;
            for (int d = 0; d < kDim; d++) {
                FloatVector qv = FloatVector.fromArray(FS, qT, d * LANES);
                s0 = qv.fma(FloatVector.broadcast(FS, b0[k0 + d]), s0);
                s1 = qv.fma(FloatVector.broadcast(FS, b1[k1 + d]), s1);
                s2 = qv.fma(FloatVector.broadcast(FS, b2[k2 + d]), s2);
                s3 = qv.fma(FloatVector.broadcast(FS, b3[k3 + d]), s3);
            }
            s0.intoArray(sT, (p - lo) * LANES);
            s1.intoArray(sT, (p + 1 - lo) * LANES);
            s2.intoArray(sT, (p + 2 - lo) * LANES);
            s3.intoArray(sT, (p + 3 - lo) * LANES);
        }
        for (; p <= posEnd; p++) {
            float[] b0 = blocks[table[p / bs]];
            int k0 = JavaKernelBackend.slot(a, p) + kHead;
            FloatVector s0 = FloatVector.zero(FS);
            for (int d = 0; d < kDim; d++) s0 = FloatVector.fromArray(FS, qT, d * LANES).fma(FloatVector.broadcast(FS, b0[k0 + d]), s0);
            s0.intoArray(sT, (p - lo) * LANES);
        }
        // the mask touches only what some lane must not see: the last LANES positions (causal) and,
        // with a window, the first ones; scalar, as it is a small corner of the tile
        for (p = Math.max(lo, pos0 + 1); p <= posEnd; p++) {
            for (int j = 0; j < Math.min(tq, p - pos0); j++) sT[(p - lo) * LANES + j] = Float.NEGATIVE_INFINITY;
        }
        if (window > 0) {
            for (int j = 0; j < tq; j++) {
                int from = Math.max(0, pos0 + j - window + 1);
                for (p = lo; p < from; p++) sT[(p - lo) * LANES + j] = Float.NEGATIVE_INFINITY;
            }
        }
    }

    /**
     * Per lane: e = exp(s - max) in place, inv[j] = 1 / Σ e. Every lane of the tile sees at least its
     * own position, so its max is finite; lanes past the tile hold zeros and their results go unused.
     */
    private static void softmaxLanes(float[] sT, int span, float[] inv) {
        FloatVector max = FloatVector.broadcast(FS, Float.NEGATIVE_INFINITY);
        for (int i = 0; i < span; i++) max = max.max(FloatVector.fromArray(FS, sT, i * LANES));
        FloatVector sum = FloatVector.zero(FS);
        for (int i = 0; i < span; i++) {
            FloatVector e = FloatVector.fromArray(FS, sT, i * LANES).sub(max).lanewise(VectorOperators.EXP);
            e.intoArray(sT, i * LANES);
            sum = sum.add(e);
        }
        FloatVector.broadcast(FS, 1f).div(sum).intoArray(inv, 0);
    }

    /** Four queries j..j+3 of the tile, their value rows four vectors at a time (then one at a time, then scalar). */
    private static void values4(PagedAttention a, float[] sT, float[] inv, int lo, int posEnd, int j, int t0, int h,
                                int vHead, int vDim, float[] out) {
        float[][] blocks = a.blocks();
        int[] table = a.blockTable();
        int bs = a.blockSize();
        int o0 = a.outOff() + (t0 + j) * a.outTokenStride() + h * a.outHeadStride();
        int o1 = o0 + a.outTokenStride();
        int o2 = o1 + a.outTokenStride();
        int o3 = o2 + a.outTokenStride();
        float i0 = inv[j], i1 = inv[j + 1], i2 = inv[j + 2], i3 = inv[j + 3];
        int d = 0;
        for (; d + 4 * LANES <= vDim; d += 4 * LANES) {
            FloatVector a00 = FloatVector.zero(FS), a01 = a00, a02 = a00, a03 = a00;
            FloatVector a10 = a00, a11 = a00, a12 = a00, a13 = a00;
            FloatVector a20 = a00, a21 = a00, a22 = a00, a23 = a00;
            FloatVector a30 = a00, a31 = a00, a32 = a00, a33 = a00;
            for (int p = lo; p <= posEnd; p++) {
                float[] b = blocks[table[p / bs]];
                int v = JavaKernelBackend.slot(a, p) + vHead + d;
                FloatVector v0 = FloatVector.fromArray(FS, b, v);
                FloatVector v1 = FloatVector.fromArray(FS, b, v + LANES);
                FloatVector v2 = FloatVector.fromArray(FS, b, v + 2 * LANES);
                FloatVector v3 = FloatVector.fromArray(FS, b, v + 3 * LANES);
                int e = (p - lo) * LANES + j;
                FloatVector w0 = FloatVector.broadcast(FS, sT[e]);
                FloatVector w1 = FloatVector.broadcast(FS, sT[e + 1]);
                FloatVector w2 = FloatVector.broadcast(FS, sT[e + 2]);
                FloatVector w3 = FloatVector.broadcast(FS, sT[e + 3]);
                a00 = v0.fma(w0, a00); a01 = v1.fma(w0, a01); a02 = v2.fma(w0, a02); a03 = v3.fma(w0, a03);
                a10 = v0.fma(w1, a10); a11 = v1.fma(w1, a11); a12 = v2.fma(w1, a12); a13 = v3.fma(w1, a13);
                a20 = v0.fma(w2, a20); a21 = v1.fma(w2, a21); a22 = v2.fma(w2, a22); a23 = v3.fma(w2, a23);
                a30 = v0.fma(w3, a30); a31 = v1.fma(w3, a31); a32 = v2.fma(w3, a32); a33 = v3.fma(w3, a33);
            }
            a00.mul(i0).intoArray(out, o0 + d);
            a01.mul(i0).intoArray(out, o0 + d + LANES);
            a02.mul(i0).intoArray(out, o0 + d + 2 * LANES);
            a03.mul(i0).intoArray(out, o0 + d + 3 * LANES);
            a10.mul(i1).intoArray(out, o1 + d);
            a11.mul(i1).intoArray(out, o1 + d + LANES);
            a12.mul(i1).intoArray(out, o1 + d + 2 * LANES);
            a13.mul(i1).intoArray(out, o1 + d + 3 * LANES);
            a20.mul(i2).intoArray(out, o2 + d);
            a21.mul(i2).intoArray(out, o2 + d + LANES);
            a22.mul(i2).intoArray(out, o2 + d + 2 * LANES);
            a23.mul(i2).intoArray(out, o2 + d + 3 * LANES);
            a30.mul(i3).intoArray(out, o3 + d);
            a31.mul(i3).intoArray(out, o3 + d + LANES);
            a32.mul(i3).intoArray(out, o3 + d + 2 * LANES);
            a33.mul(i3).intoArray(out, o3 + d + 3 * LANES);
        }
        for (; d + LANES <= vDim; d += LANES) {
            FloatVector a0 = FloatVector.zero(FS), a1 = a0, a2 = a0, a3 = a0;
            for (int p = lo; p <= posEnd; p++) {
                FloatVector v0 = FloatVector.fromArray(FS, blocks[table[p / bs]], JavaKernelBackend.slot(a, p) + vHead + d);
                int e = (p - lo) * LANES + j;
                a0 = v0.fma(FloatVector.broadcast(FS, sT[e]), a0);
                a1 = v0.fma(FloatVector.broadcast(FS, sT[e + 1]), a1);
                a2 = v0.fma(FloatVector.broadcast(FS, sT[e + 2]), a2);
                a3 = v0.fma(FloatVector.broadcast(FS, sT[e + 3]), a3);
            }
            a0.mul(i0).intoArray(out, o0 + d);
            a1.mul(i1).intoArray(out, o1 + d);
            a2.mul(i2).intoArray(out, o2 + d);
            a3.mul(i3).intoArray(out, o3 + d);
        }
        if (d < vDim) {
            for (int k = 0; k < 4; k++) valuesTail(a, sT, inv[j + k], lo, posEnd, j + k, d, vHead, vDim, out,
                    a.outOff() + (t0 + j + k) * a.outTokenStride() + h * a.outHeadStride());
        }
    }

    private static void values1(PagedAttention a, float[] sT, float[] inv, int lo, int posEnd, int j, int t0, int h,
                                int vHead, int vDim, float[] out) {
        int o = a.outOff() + (t0 + j) * a.outTokenStride() + h * a.outHeadStride();
        float[][] blocks = a.blocks();
        int[] table = a.blockTable();
        int bs = a.blockSize();
        int d = 0;
        for (; d + LANES <= vDim; d += LANES) {
            FloatVector acc = FloatVector.zero(FS);
            for (int p = lo; p <= posEnd; p++) {
                acc = FloatVector.fromArray(FS, blocks[table[p / bs]], JavaKernelBackend.slot(a, p) + vHead + d)
                        .fma(FloatVector.broadcast(FS, sT[(p - lo) * LANES + j]), acc);
            }
            acc.mul(inv[j]).intoArray(out, o + d);
        }
        if (d < vDim) valuesTail(a, sT, inv[j], lo, posEnd, j, d, vHead, vDim, out, o);
    }

    /** Value elements [d, vDim) of query j, scalar. */
    private static void valuesTail(PagedAttention a, float[] sT, float inv, int lo, int posEnd, int j, int d, int vHead,
                                   int vDim, float[] out, int o) {
        float[][] blocks = a.blocks();
        int[] table = a.blockTable();
        int bs = a.blockSize();
        for (int c = d; c < vDim; c++) {
            float acc = 0;
            for (int p = lo; p <= posEnd; p++) acc += sT[(p - lo) * LANES + j] * blocks[table[p / bs]][JavaKernelBackend.slot(a, p) + vHead + c];
            out[o + c] = acc * inv;
        }
    }
}
