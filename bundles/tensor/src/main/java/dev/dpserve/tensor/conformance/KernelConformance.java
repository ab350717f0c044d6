// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tensor.conformance;

import dev.dpserve.api.tensor.DType;
import dev.dpserve.api.tensor.KernelBackend;
import dev.dpserve.api.tensor.KernelBackend.Op;
import dev.dpserve.api.tensor.PagedAttention;
import dev.dpserve.api.tensor.Tensor;
import dev.dpserve.tensor.JavaKernelBackend;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The conformance kit: checks any {@link KernelBackend} against the pure-Java reference
 * ({@link JavaKernelBackend}) for every op × dtype the backend claims in {@link KernelBackend#supports},
 * over awkward shapes (sizes 1, odd sizes and sizes that are no multiple of any vector width, n = 1
 * and larger batches, non-zero offsets and strides with guard cells that must stay untouched, GQA,
 * MHA and MLA attention, sliding windows, start positions inside a block and across blocks, shuffled
 * block tables, a non-zero layer offset). It never throws for a backend's fault: {@link #check}
 * returns a {@link Report} listing the failures, so it runs in unit tests as well as inside a running
 * framework (a shell command or an itest for a native fragment).
 *
 * <p>Tolerances follow from F32 rounding, {@code u = 2^-24}: a sum of K products computed in any
 * order is within {@code γ_K·Σ|x·w|} of the exact value ({@code γ_K = K·u / (1 − K·u)}), so two
 * implementations differ by at most {@code 2·γ_K·Σ|x·w|}; each op's bound is derived where it is
 * checked. Integer ops (int8 GEMM accumulation, top-k) must agree exactly up to float scaling.
 */
public final class KernelConformance {

    private static final double U = 0x1p-24;
    private static final float GUARD = -12345.678f; // written around outputs; must survive
    private static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** One failed check: the op, the dtype, the shape and what went wrong. */
    public record Failure(Op op, DType dtype, String shape, String detail) {
        @Override
        public String toString() {
            return op + " " + dtype + " " + shape + ": " + detail;
        }
    }

    /**
     * What a run found: how many cases ran, which failed, and the op × dtype pairs the backend does
     * not claim (not checked).
     */
    public record Report(String backend, int cases, List<Failure> failures, List<String> unsupported) {
        public Report {
            failures = List.copyOf(failures);
            unsupported = List.copyOf(unsupported);
        }

        public boolean passed() {
            return failures.isEmpty();
        }

        /** One line, then one line per failure (at most {@code maxFailures}). */
        public String summary(int maxFailures) {
            StringBuilder sb = new StringBuilder("backend ").append(backend).append(": ").append(cases).append(" cases, ")
                    .append(failures.size()).append(" failed");
            if (!unsupported.isEmpty()) sb.append("; not claimed: ").append(String.join(", ", unsupported));
            failures.stream().limit(maxFailures).forEach(f -> sb.append("\n  ").append(f));
            if (failures.size() > maxFailures) sb.append("\n  ... ").append(failures.size() - maxFailures).append(" more");
            return sb.toString();
        }
    }

    private final KernelBackend backend;
    private final KernelBackend reference = new JavaKernelBackend();
    private final List<Failure> failures = new ArrayList<>();
    private final List<String> unsupported = new ArrayList<>();
    private int cases;

    private KernelConformance(KernelBackend backend) {
        this.backend = backend;
    }

    /** Runs every check the backend's claims call for; never throws for the backend's faults. */
    public static Report check(KernelBackend backend) {
        KernelConformance k = new KernelConformance(backend);
        k.run();
        return new Report(backend.name(), k.cases, k.failures, k.unsupported);
    }

    private void run() {
        // shared: a backend may read weights from its own worker threads
        try (Arena arena = Arena.ofShared()) {
            for (DType t : List.of(DType.F32, DType.BF16, DType.F16)) {
                if (claims(Op.MATMUL, t)) matmul(arena, t);
            }
            if (claims(Op.MATMUL_INT8, DType.I8)) matmulInt8(arena);
            if (claims(Op.QUANTIZE_ROWS, DType.F32)) quantizeRows();
            if (claims(Op.RMS_NORM, DType.F32)) rmsNorm();
            if (claims(Op.ROPE, DType.F32)) rope();
            if (claims(Op.SOFTMAX, DType.F32)) softmax();
            if (claims(Op.SILU_MUL, DType.F32)) siluMul();
            if (claims(Op.ATTENTION, DType.F32)) attention();
            if (claims(Op.TOP_K, DType.F32)) topK();
        }
    }

    private boolean claims(Op op, DType t) {
        boolean yes;
        try {
            yes = backend.supports(op, t);
        } catch (RuntimeException e) {
            failures.add(new Failure(op, t, "-", "supports() threw " + e));
            return false;
        }
        if (!yes) unsupported.add(op + "/" + t);
        return yes;
    }

    /** Runs one case; an exception from the backend is a failure of that case. */
    private void run(Op op, DType t, String shape, Runnable body) {
        cases++;
        try {
            body.run();
        } catch (RuntimeException | Error e) {
            if (e instanceof VirtualMachineError vme && !(e instanceof StackOverflowError)) throw vme;
            failures.add(new Failure(op, t, shape, "threw " + e));
        }
    }

    // ---------------------------------------------------------------- GEMMs

    private void matmul(Arena arena, DType type) {
        SplittableRandom rnd = new SplittableRandom(1);
        for (int n : new int[] {1, 3, 8, 17, 65}) {
            for (int k : new int[] {1, 7, 16, 33, 130}) {
                for (int m : new int[] {1, 5, 64, 130}) {
                    int xOff = n % 2 == 0 ? 0 : 3;
                    int outOff = m % 2 == 0 ? 0 : 5;
                    String shape = "n=" + n + " K=" + k + " M=" + m + " xOff=" + xOff + " outOff=" + outOff;
                    float[] x = random(rnd, xOff + n * k, 1f);
                    Tensor w = floatWeight(arena, type, m, k, rnd);
                    run(Op.MATMUL, type, shape, () -> {
                        float[] ref = guarded(outOff + n * m + 3);
                        float[] got = guarded(outOff + n * m + 3);
                        reference.matmul(x, xOff, n, w, ref, outOff);
                        backend.matmul(x.clone(), xOff, n, w, got, outOff);
                        // any summation order: each side within γ_K·Σ|x·w| of the exact sum
                        float[] tol = new float[ref.length];
                        for (int i = 0; i < n; i++) {
                            for (int j = 0; j < m; j++) {
                                double abs = 0;
                                for (int p = 0; p < k; p++) abs += Math.abs((double) x[xOff + i * k + p] * weightAt(w, (long) j * k + p));
                                tol[outOff + i * m + j] = (float) (2 * gamma(k) * abs + Float.MIN_NORMAL);
                            }
                        }
                        compare(Op.MATMUL, type, shape, got, ref, tol);
                    });
                }
            }
        }
    }

    private void matmulInt8(Arena arena) {
        SplittableRandom rnd = new SplittableRandom(2);
        for (int n : new int[] {1, 3, 17, 65}) {
            for (int k : new int[] {1, 7, 33, 130, 300}) {
                for (int m : new int[] {1, 5, 64, 130}) {
                    boolean withBias = (n + k) % 2 == 1;
                    boolean withRowScale = (k + m) % 2 == 1;
                    int qOff = n % 2 == 0 ? 0 : 2;
                    int outOff = m % 2 == 0 ? 0 : 1;
                    String shape = "n=" + n + " K=" + k + " M=" + m + " qOff=" + qOff + " outOff=" + outOff
                            + (withBias ? " bias" : "") + (withRowScale ? " rowScale" : "");
                    byte[] q = new byte[qOff + n * k];
                    for (int i = 0; i < q.length; i++) q[i] = (byte) (rnd.nextInt(255) - 127);
                    MemorySegment seg = arena.allocate((long) m * k);
                    for (long i = 0; i < (long) m * k; i++) seg.set(ValueLayout.JAVA_BYTE, i, (byte) (rnd.nextInt(255) - 127));
                    Tensor w = new Tensor("w", DType.I8, new long[] {m, k}, seg);
                    int[] bias = withBias ? rnd.ints(m, -5000, 5000).toArray() : null;
                    float[] rowScale = withRowScale ? random(rnd, n, 0.01f) : null;
                    float[] colScale = random(rnd, m, 0.01f);
                    run(Op.MATMUL_INT8, DType.I8, shape, () -> {
                        float[] ref = guarded(outOff + n * m + 2);
                        float[] got = guarded(outOff + n * m + 2);
                        reference.matmulInt8(q, qOff, n, rowScale, w, bias, colScale, ref, outOff);
                        backend.matmulInt8(q.clone(), qOff, n, rowScale, w, bias, colScale, got, outOff);
                        // int32 sums are exact (|acc| < 2^24 here, so its float is exact too); the two
                        // scale products may be taken in another order: 2 roundings each side
                        float[] tol = new float[ref.length];
                        for (int i = 0; i < ref.length; i++) tol[i] = (float) (4 * U * Math.abs(ref[i]) + Float.MIN_NORMAL);
                        compare(Op.MATMUL_INT8, DType.I8, shape, got, ref, tol);
                    });
                }
            }
        }
    }

    private void quantizeRows() {
        SplittableRandom rnd = new SplittableRandom(3);
        for (int rows : new int[] {1, 3}) {
            for (int k : new int[] {1, 7, 33, 130}) {
                int xOff = 1;
                int qOff = 2;
                int sOff = 1;
                String shape = "rows=" + rows + " k=" + k + " xOff=1 qOff=2 scaleOff=1";
                float[] x = random(rnd, xOff + rows * k, 3f);
                if (rows > 1) Arrays.fill(x, xOff + k, xOff + 2 * k, 0f); // an all-zero row: scale 1
                run(Op.QUANTIZE_ROWS, DType.F32, shape, () -> {
                    byte[] qr = new byte[qOff + rows * k + 1];
                    byte[] qg = new byte[qOff + rows * k + 1];
                    float[] sr = guarded(sOff + rows + 1);
                    float[] sg = guarded(sOff + rows + 1);
                    reference.quantizeRows(x, xOff, rows, k, qr, qOff, sr, sOff);
                    backend.quantizeRows(x.clone(), xOff, rows, k, qg, qOff, sg, sOff);
                    // scale = max/127 is one rounding on both sides; q may differ by one step where a
                    // backend multiplies by 1/scale and x/scale sits on a rounding boundary
                    float[] tol = new float[sr.length];
                    for (int i = 0; i < tol.length; i++) tol[i] = (float) (2 * U * Math.abs(sr[i]));
                    compare(Op.QUANTIZE_ROWS, DType.F32, shape + " (scales)", sg, sr, tol);
                    int worst = 0;
                    for (int i = 0; i < qr.length; i++) worst = Math.max(worst, Math.abs(qr[i] - qg[i]));
                    if (worst > 1) fail(Op.QUANTIZE_ROWS, DType.F32, shape, "int8 values differ by up to " + worst);
                });
            }
        }
    }

    // ---------------------------------------------------------------- row ops

    private void rmsNorm() {
        SplittableRandom rnd = new SplittableRandom(4);
        for (int rows : new int[] {1, 3, 5}) {
            for (int dim : new int[] {1, 7, 16, 33, 130, 1000}) {
                for (boolean inPlace : new boolean[] {false, true}) {
                    int xOff = 2;
                    int xStride = dim + 3;
                    int outOff = inPlace ? xOff : 1;
                    int outStride = inPlace ? xStride : dim + 1;
                    String shape = "rows=" + rows + " dim=" + dim + " xOff=2 xStride=" + xStride + (inPlace ? " in place" : " outOff=1 outStride=" + outStride);
                    float[] x = random(rnd, xOff + rows * xStride + 1, 2f);
                    float[] weight = random(rnd, dim, 1.5f);
                    float eps = 1e-6f;
                    run(Op.RMS_NORM, DType.F32, shape, () -> {
                        float[] ref = inPlace ? x.clone() : guarded(outOff + rows * outStride + 1);
                        float[] got = inPlace ? x.clone() : guarded(outOff + rows * outStride + 1);
                        reference.rmsNorm(inPlace ? ref : x, xOff, xStride, rows, weight, eps, ref, outOff, outStride);
                        backend.rmsNorm(inPlace ? got : x.clone(), xOff, xStride, rows, weight, eps, got, outOff, outStride);
                        // mean(x²) in any order: relative γ_dim, half of it after the square root,
                        // plus sqrt, divide and the two products: a few u each side
                        float[] tol = new float[ref.length];
                        for (int i = 0; i < tol.length; i++) tol[i] = (float) ((gamma(dim) + 8 * U) * Math.abs(ref[i]) + Float.MIN_NORMAL);
                        compare(Op.RMS_NORM, DType.F32, shape, got, ref, tol);
                    });
                }
            }
        }
    }

    private void rope() {
        SplittableRandom rnd = new SplittableRandom(5);
        for (boolean interleaved : new boolean[] {false, true}) {
            for (int rows : new int[] {1, 3}) {
                for (int heads : new int[] {1, 3}) {
                    for (int rotaryDim : new int[] {2, 6, 16, 64}) {
                        int headStride = rotaryDim + (rotaryDim % 3) + 1; // partial rotary: the rest stays
                        int rowStride = heads * headStride + 2;
                        int off = 3;
                        String shape = (interleaved ? "interleaved" : "neox") + " rows=" + rows + " heads=" + heads
                                + " rotaryDim=" + rotaryDim + " headStride=" + headStride + " rowStride=" + rowStride + " off=3";
                        float[] x = random(rnd, off + rows * rowStride + 1, 2f);
                        float[] cos = new float[rows * rotaryDim / 2];
                        float[] sin = new float[cos.length];
                        for (int i = 0; i < cos.length; i++) {
                            double angle = rnd.nextDouble(-40, 40);
                            cos[i] = (float) Math.cos(angle);
                            sin[i] = (float) Math.sin(angle);
                        }
                        run(Op.ROPE, DType.F32, shape, () -> {
                            float[] ref = x.clone();
                            float[] got = x.clone();
                            reference.rope(ref, off, rows, rowStride, heads, headStride, rotaryDim, cos, sin, interleaved);
                            backend.rope(got, off, rows, rowStride, heads, headStride, rotaryDim, cos, sin, interleaved);
                            // a·c − b·s with or without a fused multiply-add: 3 roundings of |a·c| + |b·s|
                            // each side; untouched elements must be equal
                            float[] tol = new float[ref.length];
                            float bound = 0f;
                            for (float v : x) bound = Math.max(bound, Math.abs(v));
                            Arrays.fill(tol, (float) (6 * U * 2 * bound));
                            for (int i = 0; i < off; i++) tol[i] = 0f;
                            compare(Op.ROPE, DType.F32, shape, got, ref, tol);
                            for (int r = 0; r < rows; r++) {
                                for (int h = 0; h < heads; h++) {
                                    int base = off + r * rowStride + h * headStride;
                                    for (int i = base + rotaryDim; i < base + headStride; i++) {
                                        if (got[i] != x[i]) {
                                            fail(Op.ROPE, DType.F32, shape, "changed element " + i + " beyond the rotary dims");
                                            return;
                                        }
                                    }
                                }
                            }
                        });
                    }
                }
            }
        }
    }

    private void softmax() {
        SplittableRandom rnd = new SplittableRandom(6);
        for (int rows : new int[] {1, 3}) {
            for (int len : new int[] {1, 2, 7, 16, 33, 130, 1000}) {
                int off = 1;
                int stride = len + 2;
                String shape = "rows=" + rows + " len=" + len + " off=1 stride=" + stride;
                float[] x = random(rnd, off + rows * stride, 20f);
                run(Op.SOFTMAX, DType.F32, shape, () -> {
                    float[] ref = x.clone();
                    float[] got = x.clone();
                    reference.softmax(ref, off, rows, len, stride);
                    backend.softmax(got, off, rows, len, stride);
                    // exp to within a few ulps (vector exp), the sum relative γ_len, the reciprocal
                    // and the product: relative γ_len + 16u per side
                    float[] tol = new float[ref.length];
                    for (int i = 0; i < tol.length; i++) tol[i] = (float) ((2 * gamma(len) + 32 * U) * Math.abs(ref[i]) + Float.MIN_NORMAL);
                    compare(Op.SOFTMAX, DType.F32, shape, got, ref, tol);
                });
            }
        }
    }

    private void siluMul() {
        SplittableRandom rnd = new SplittableRandom(7);
        for (int n : new int[] {1, 7, 16, 33, 1000}) {
            int gOff = 2;
            int uOff = 5;
            String shape = "n=" + n + " gOff=2 uOff=5";
            float[] gate = random(rnd, gOff + n + 3, 20f);
            float[] up = random(rnd, uOff + n, 2f);
            run(Op.SILU_MUL, DType.F32, shape, () -> {
                float[] ref = gate.clone();
                float[] got = gate.clone();
                reference.siluMul(ref, gOff, up, uOff, n);
                backend.siluMul(got, gOff, up.clone(), uOff, n);
                // exp within a few ulps, then 1 + e, the divide and the product: 8u relative per side
                float[] tol = new float[ref.length];
                for (int i = 0; i < tol.length; i++) tol[i] = (float) (16 * U * Math.abs(ref[i]) + Float.MIN_NORMAL);
                compare(Op.SILU_MUL, DType.F32, shape, got, ref, tol);
            });
        }
    }

    // ---------------------------------------------------------------- attention

    /** One attention layout: dense GQA/MHA or MLA (V a prefix of K). */
    private record Layout(String name, int heads, int kvHeads, int kDim, int vDim, boolean mla) {
        int slotStride() {
            return mla ? kDim + 1 : kvHeads * (kDim + vDim) + 2; // a gap after each slot
        }
    }

    private void attention() {
        SplittableRandom rnd = new SplittableRandom(8);
        List<Layout> layouts = List.of(
                new Layout("GQA", 4, 2, 16, 16, false),
                new Layout("MHA", 3, 3, 33, 33, false),
                new Layout("MHA-6", 6, 6, 20, 20, false), // a tile of 4 heads and a tile of 2
                new Layout("GQA-1kv", 5, 1, 7, 7, false),
                new Layout("MLA", 4, 1, 20, 16, true),
                new Layout("MLA-wide", 8, 1, 72, 64, true));
        // {start, new tokens}: decode steps, short chunks, and chunks of 8+ tokens (the vector backend's
        // tiled path: partial tiles, tiles past a lane count, start inside a block)
        int[][] spans = {{0, 1}, {0, 5}, {6, 1}, {4, 3}, {9, 4}, {13, 1}, {3, 9}, {5, 20}, {2, 37}};
        for (Layout l : layouts) {
            for (int[] span : spans) {
                for (int window : new int[] {0, 3, 11}) {
                    attentionCase(rnd, l, 4, span[0], span[1], window);
                }
            }
            attentionCase(rnd, l, 16, 0, 40, 0);   // a prefill large enough to go parallel
            attentionCase(rnd, l, 16, 60, 1, 0);   // a long-context decode step
            attentionCase(rnd, l, 1, 2, 3, 2);     // block size 1
            // decode over long contexts (thousands of positions, many blocks): one token; 5 tokens;
            // 3 tokens whose window starts far inside the context
            attentionCase(rnd, l, 16, 3999, 1, 0);
            attentionCase(rnd, l, 16, 2500, 5, 0);
            attentionCase(rnd, l, 16, 3000, 3, 1700);
        }
        // many heads over a long context: the vector backends' parallel path
        attentionCase(rnd, new Layout("GQA-many", 16, 4, 64, 64, false), 16, 30, 24, 0);
    }

    private void attentionCase(SplittableRandom rnd, Layout l, int blockSize, int start, int n, int window) {
        int ctx = start + n;
        int layers = 2;
        int layer = 1; // a non-zero layer offset
        int slotStride = l.slotStride();
        int numBlocks = (ctx + blockSize - 1) / blockSize;
        int[] table = new int[numBlocks + 1]; // one spare entry
        int[] perm = shuffled(rnd, numBlocks + 2);
        for (int b = 0; b < table.length; b++) table[b] = perm[b];
        float[][] blocks = new float[numBlocks + 2][];
        for (int b = 0; b < blocks.length; b++) blocks[b] = random(rnd, layers * blockSize * slotStride, 1.5f);
        int layerOffset = layer * blockSize * slotStride;
        int kOffset = 0;
        int kHeadStride = l.mla ? 0 : l.kDim;
        int vOffset = l.mla ? 0 : l.kvHeads * l.kDim;
        int vHeadStride = l.mla ? 0 : l.vDim;
        int qHeadStride = l.kDim + 1;
        int qTokenStride = l.heads * qHeadStride + 3;
        int qOff = 2;
        float[] q = random(rnd, qOff + n * qTokenStride, 1.5f);
        int outHeadStride = l.vDim + 2;
        int outTokenStride = l.heads * outHeadStride + 1;
        int outOff = 3;
        float scale = (float) (1 / Math.sqrt(l.kDim));
        String shape = l.name + " heads=" + l.heads + "/" + l.kvHeads + " kDim=" + l.kDim + " vDim=" + l.vDim
                + " blockSize=" + blockSize + " start=" + start + " n=" + n + " window=" + window;
        run(Op.ATTENTION, DType.F32, shape, () -> {
            float[] ref = guarded(outOff + n * outTokenStride + 2);
            float[] got = guarded(outOff + n * outTokenStride + 2);
            reference.attention(new PagedAttention(q, qOff, qTokenStride, qHeadStride, n, l.heads, l.kvHeads, l.kDim, l.vDim,
                    blocks, table, blockSize, layerOffset, slotStride, kOffset, kHeadStride, vOffset, vHeadStride,
                    start, window, scale, ref, outOff, outTokenStride, outHeadStride));
            float[][] blocksCopy = new float[blocks.length][];
            for (int b = 0; b < blocks.length; b++) blocksCopy[b] = blocks[b].clone();
            backend.attention(new PagedAttention(q.clone(), qOff, qTokenStride, qHeadStride, n, l.heads, l.kvHeads, l.kDim, l.vDim,
                    blocksCopy, table.clone(), blockSize, layerOffset, slotStride, kOffset, kHeadStride, vOffset, vHeadStride,
                    start, window, scale, got, outOff, outTokenStride, outHeadStride));
            // scores: 2·γ_kDim·scale·Σ|q·k| apart at most (e_s); softmax weights then differ by at
            // most p·(2·e_s + γ_ctx + 16u) (see softmax), and Σ p·v adds γ_ctx·Σ p|v| per side:
            // |Δout| ≤ max|v|·(2·e_s + 3·γ_ctx + 16u), doubled for both sides' exp
            double maxAbsQK = 0;
            double maxAbsV = 0;
            int group = l.heads / l.kvHeads;
            for (int p = 0; p < ctx; p++) {
                float[] block = blocks[table[p / blockSize]];
                int s0 = layerOffset + (p % blockSize) * slotStride;
                for (int kv = 0; kv < l.kvHeads; kv++) {
                    for (int d = 0; d < l.vDim; d++) maxAbsV = Math.max(maxAbsV, Math.abs(block[s0 + vOffset + kv * vHeadStride + d]));
                    for (int t = 0; t < n; t++) {
                        for (int h = kv * group; h < (kv + 1) * group; h++) {
                            double s = 0;
                            for (int d = 0; d < l.kDim; d++) {
                                s += Math.abs((double) q[qOff + t * qTokenStride + h * qHeadStride + d] * block[s0 + kOffset + kv * kHeadStride + d]);
                            }
                            maxAbsQK = Math.max(maxAbsQK, s);
                        }
                    }
                }
            }
            double es = 2 * gamma(l.kDim) * scale * maxAbsQK + 2 * U * scale * maxAbsQK;
            float bound = (float) (2 * maxAbsV * (2 * es + 3 * gamma(ctx) + 16 * U) + Float.MIN_NORMAL);
            float[] tol = new float[ref.length];
            for (int t = 0; t < n; t++) {
                for (int h = 0; h < l.heads; h++) {
                    int o0 = outOff + t * outTokenStride + h * outHeadStride;
                    Arrays.fill(tol, o0, o0 + l.vDim, bound);
                }
            }
            compare(Op.ATTENTION, DType.F32, shape, got, ref, tol);
        });
    }

    // ---------------------------------------------------------------- top-k

    private void topK() {
        SplittableRandom rnd = new SplittableRandom(9);
        for (int len : new int[] {1, 7, 33, 256}) {
            for (int k : new int[] {1, 2, 8, len}) {
                if (k > len) continue;
                for (boolean ties : new boolean[] {false, true}) {
                    int off = 3;
                    String shape = "len=" + len + " k=" + k + " off=3" + (ties ? " with ties" : "");
                    float[] x = new float[off + len + 2];
                    for (int i = 0; i < x.length; i++) x[i] = ties ? rnd.nextInt(4) - 2 : (float) rnd.nextDouble(-5, 5);
                    run(Op.TOP_K, DType.F32, shape, () -> {
                        int[] ir = new int[k];
                        int[] ig = new int[k];
                        float[] vr = new float[k];
                        float[] vg = new float[k];
                        reference.topK(x, off, len, k, ir, vr);
                        backend.topK(x.clone(), off, len, k, ig, vg);
                        // selection only: exact
                        if (!Arrays.equals(ir, ig) || !Arrays.equals(vr, vg)) {
                            fail(Op.TOP_K, DType.F32, shape, "indices " + Arrays.toString(ig) + " values " + Arrays.toString(vg)
                                    + ", reference " + Arrays.toString(ir) + " " + Arrays.toString(vr));
                        }
                    });
                }
            }
        }
    }

    // ---------------------------------------------------------------- helpers

    private void fail(Op op, DType t, String shape, String detail) {
        failures.add(new Failure(op, t, shape, detail));
    }

    /** Element-wise |got − ref| ≤ tol (tol 0 where only exact equality will do, e.g. guard cells). */
    private void compare(Op op, DType t, String shape, float[] got, float[] ref, float[] tol) {
        int bad = 0;
        int first = -1;
        for (int i = 0; i < ref.length; i++) {
            boolean ok = Float.compare(got[i], ref[i]) == 0 || Math.abs(got[i] - ref[i]) <= tol[i];
            if (!ok) {
                if (first < 0) first = i;
                bad++;
            }
        }
        if (bad > 0) {
            fail(op, t, shape, bad + " of " + ref.length + " elements off; first at " + first + ": got " + got[first]
                    + ", reference " + ref[first] + ", tolerance " + tol[first]);
        }
    }

    private static double gamma(int k) {
        return k * U / (1 - k * U);
    }

    private static float[] guarded(int n) {
        float[] a = new float[n];
        Arrays.fill(a, GUARD);
        return a;
    }

    private static float[] random(SplittableRandom rnd, int n, float range) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) rnd.nextDouble(-range, range);
        return a;
    }

    private static int[] shuffled(SplittableRandom rnd, int n) {
        int[] a = new int[n];
        for (int i = 0; i < n; i++) a[i] = i;
        for (int i = n - 1; i > 0; i--) {
            int j = rnd.nextInt(i + 1);
            int tmp = a[i];
            a[i] = a[j];
            a[j] = tmp;
        }
        return a;
    }

    private static Tensor floatWeight(Arena arena, DType type, int m, int k, SplittableRandom rnd) {
        long count = (long) m * k;
        MemorySegment seg = arena.allocate(count * type.byteSize());
        for (long i = 0; i < count; i++) {
            float v = (float) rnd.nextDouble(-1, 1);
            switch (type) {
                case F32 -> seg.set(F32_LE, 4 * i, v);
                case BF16 -> seg.set(I16_LE, 2 * i, (short) (Float.floatToRawIntBits(v) >>> 16));
                case F16 -> seg.set(I16_LE, 2 * i, Float.floatToFloat16(v));
                default -> throw new IllegalArgumentException(type.toString());
            }
        }
        return new Tensor("w", type, new long[] {m, k}, seg);
    }

    private static float weightAt(Tensor w, long i) {
        MemorySegment s = w.data();
        return switch (w.dtype()) {
            case F32 -> s.get(F32_LE, 4 * i);
            case BF16 -> Float.intBitsToFloat((s.get(I16_LE, 2 * i) & 0xFFFF) << 16);
            case F16 -> Float.float16ToFloat(s.get(I16_LE, 2 * i));
            default -> throw new IllegalArgumentException(w.dtype().toString());
        };
    }
}
