// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tensor;

import dev.dpserve.api.tensor.DType;
import dev.dpserve.api.tensor.KernelBackend;
import dev.dpserve.api.tensor.PagedAttention;
import dev.dpserve.api.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.concurrent.ExecutorService;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Deactivate;

/**
 * Matmul on the Vector API ({@code FloatVector} preferred species), reading F32, BF16 and F16
 * weights straight from their memory segment, multi-threaded over one pool sized to the available
 * processors.
 *
 * <p>Work is split over output rows (weight rows) and, for large batches, over tiles of
 * {@value #BATCH_TILE} activation rows. Inside a task each weight row is streamed from memory once
 * and multiplied with four activation rows at a time, so a decode step at batch 8 reads the weights
 * once, as at batch 1. The calling thread works too; pool threads help with the remaining tasks.
 *
 * <p>The other ops live in {@link VectorOps} (RMSNorm, softmax, SiLU·mul, RoPE),
 * {@link VectorInt8Gemm} and {@link VectorAttention} (both over the same pool); top-k and int8
 * quantization run the reference loops. The backend supports every op of the SPI.
 *
 * <p>Lifecycle: DS creates the pool in {@link #activate()} and shuts it down in
 * {@link #deactivate()}; tests use {@link #VectorKernelBackend(int)} and {@link #close()}. Without
 * a pool (closed) calls still work, on the calling thread only. Weight segments must be readable
 * from any thread (global, auto or shared arena, as memory-mapped checkpoints are).
 */
@Component(service = KernelBackend.class, property = KernelBackend.NAME + "=vector")
public final class VectorKernelBackend implements KernelBackend, AutoCloseable {

    /** The score of this backend: above the Java reference. */
    public static final int SCORE = 100;

    private static final VectorSpecies<Float> FS = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Integer> IS = VectorSpecies.of(int.class, FS.vectorShape());
    private static final VectorSpecies<Short> SS =
            VectorSpecies.of(short.class, VectorShape.forBitSize(FS.vectorBitSize() / 2));
    private static final int LANES = FS.length();
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    /**
     * Whether a matmul of n tokens runs {@link VectorGemm} (outer products) rather than the dot
     * products below: measured crossovers on Zen 5 (below them both are memory-bound and equal or
     * the dot products win); F16 has no pair kernels, so it switches past them.
     */
    static boolean outerProducts(DType type, int n) {
        return switch (type) {
            case F32 -> n >= 5;
            case BF16 -> n >= 4;
            default -> n > VectorGemm.PAIR_MAX_BATCH;
        };
    }
    /** Activation rows per batch tile. */
    static final int BATCH_TILE = 64;
    /** Calls with fewer multiply-adds run on the calling thread: a hand-off costs ~10-50 µs. */
    private static final long PARALLEL_MIN_WORK = 1L << 16;
    private static final int MIN_ROWS_PER_TASK = 16;
    private static final int TASKS_PER_THREAD = 4;

    /** The ops that gain nothing from vectors here (top-k, quantization) run the reference loops. */
    private static final JavaKernelBackend REFERENCE = new JavaKernelBackend();

    private volatile ExecutorService pool;
    private volatile int threads = 1;

    /** For DS: the pool is created on activation. */
    public VectorKernelBackend() {
    }

    /** A backend with its own pool of {@code threads} workers (the caller counts as one). */
    public VectorKernelBackend(int threads) {
        start(threads);
    }

    @Activate
    void activate() {
        start(Runtime.getRuntime().availableProcessors());
    }

    @Deactivate
    void deactivate() {
        close();
    }

    private void start(int n) {
        if (n < 1) throw new IllegalArgumentException("threads must be >= 1, got " + n);
        this.threads = n;
        this.pool = n == 1 ? null : Tasks.pool("dpserve-vector", n - 1);
    }

    /** The threads a kernel call uses (the caller and its pool's workers); 1 once closed. */
    int threads() {
        return threads;
    }

    /** The pool of helper workers (threads - 1 of them), or null when one thread does the work. */
    ExecutorService pool() {
        return pool;
    }

    /** Shuts the pool down; later calls run on the calling thread. Idempotent. */
    @Override
    public void close() {
        ExecutorService p = pool;
        pool = null;
        threads = 1;
        if (p != null) p.shutdownNow();
    }

    @Override
    public String name() {
        return "vector";
    }

    @Override
    public int score() {
        return SCORE;
    }

    @Override
    public boolean supports(Op op, DType weightType) {
        return REFERENCE.supports(op, weightType);
    }

    @Override
    public void matmul(float[] x, int xOff, int n, Tensor w, float[] out, int outOff) {
        int k = MatmulArgs.check(x, xOff, n, w, out, outOff);
        int m = w.dim(0);
        if (n == 0 || m == 0) return;
        DType type = w.dtype();
        MemorySegment data = w.data();
        ExecutorService p = pool;
        int t = threads;
        if (outerProducts(type, n)) {
            // outer-product kernel for all but the last m mod MR rows, which take the dot-product path
            VectorGemm.matmul(p, t, type, x, xOff, n, k, data, m, out, outOff);
            int full = VectorGemm.fullRows(type, m, n);
            if (full < m) rows(type, x, xOff, k, data, m, out, outOff, full, m, 0, n);
            return;
        }
        if (p == null || t == 1 || (long) n * m * k < PARALLEL_MIN_WORK) {
            rows(type, x, xOff, k, data, m, out, outOff, 0, m, 0, n);
            return;
        }
        int batchTiles = ceilDiv(n, BATCH_TILE);
        int rowChunks = Math.clamp(ceilDiv(t * TASKS_PER_THREAD, batchTiles), 1, Math.max(1, m / MIN_ROWS_PER_TASK));
        // task order is batch-tile-major so concurrent tasks share the activation tile in cache
        Tasks.run(p, t, batchTiles * rowChunks, task -> {
            int tile = task / rowChunks;
            int chunk = task % rowChunks;
            int j0 = (int) ((long) m * chunk / rowChunks);
            int j1 = (int) ((long) m * (chunk + 1) / rowChunks);
            int i0 = tile * BATCH_TILE;
            int i1 = Math.min(n, i0 + BATCH_TILE);
            rows(type, x, xOff, k, data, m, out, outOff, j0, j1, i0, i1);
        });
    }

    @Override
    public void matmulInt8(byte[] q, int qOff, int n, float[] rowScale, Tensor w, int[] accBias, float[] colScale,
                           float[] out, int outOff) {
        VectorInt8Gemm.matmul(pool, threads, q, qOff, n, rowScale, w, accBias, colScale, out, outOff);
    }

    @Override
    public void quantizeRows(float[] x, int xOff, int rows, int k, byte[] q, int qOff, float[] scale, int scaleOff) {
        REFERENCE.quantizeRows(x, xOff, rows, k, q, qOff, scale, scaleOff);
    }

    @Override
    public void rmsNorm(float[] x, int xOff, int xStride, int rows, float[] weight, float eps,
                        float[] out, int outOff, int outStride) {
        VectorOps.rmsNorm(x, xOff, xStride, rows, weight, eps, out, outOff, outStride);
    }

    @Override
    public void rope(float[] x, int off, int rows, int rowStride, int heads, int headStride, int rotaryDim,
                     float[] cos, float[] sin, boolean interleaved) {
        VectorOps.rope(x, off, rows, rowStride, heads, headStride, rotaryDim, cos, sin, interleaved);
    }

    @Override
    public void softmax(float[] x, int off, int rows, int len, int stride) {
        VectorOps.softmax(x, off, rows, len, stride);
    }

    @Override
    public void siluMul(float[] gate, int gOff, float[] up, int uOff, int n) {
        VectorOps.siluMul(gate, gOff, up, uOff, n);
    }

    @Override
    public void attention(PagedAttention a) {
        VectorAttention.attention(pool, threads, a);
    }

    @Override
    public void topK(float[] x, int off, int len, int k, int[] idx, float[] val) {
        REFERENCE.topK(x, off, len, k, idx, val);
    }


    /**
     * out[i][j] for weight rows [j0, j1) and activation rows [i0, i1). Blocks of 4 weight rows × 4
     * activation rows go through a register-blocked kernel (16 accumulators: 8 loads feed 16 FMAs,
     * so it is bound by FMA throughput, not loads); the edges use one weight row at a time.
     */
    private static void rows(DType type, float[] x, int xOff, int k, MemorySegment w, int m,
                             float[] out, int outOff, int j0, int j1, int i0, int i1) {
        long rowBytes = (long) k * type.byteSize();
        boolean f32 = type == DType.F32;
        boolean bf16 = type == DType.BF16;
        int j = j0;
        if (i1 - i0 >= 4) {
            for (; j + 4 <= j1; j += 4) {
                long wo = j * rowBytes;
                int i = i0;
                for (; i + 4 <= i1; i += 4) {
                    if (f32) block4x4F32(x, xOff + i * k, k, w, wo, out, outOff + i * m + j, m);
                    else block4x4Half(bf16, x, xOff + i * k, k, w, wo, out, outOff + i * m + j, m);
                }
                for (int jj = j; jj < j + 4; jj++) tail(type, x, xOff, k, w, jj * rowBytes, out, outOff, m, jj, i, i1);
            }
        }
        for (; j < j1; j++) tail(type, x, xOff, k, w, j * rowBytes, out, outOff, m, j, i0, i1);
    }

    /** out[i][j] for one weight row j and activation rows [i0, i1). */
    private static void tail(DType type, float[] x, int xOff, int k, MemorySegment w, long wo,
                             float[] out, int outOff, int m, int j, int i0, int i1) {
        int i = i0;
        if (type == DType.F32) {
            for (; i + 4 <= i1; i += 4) dot4F32(x, xOff + i * k, k, w, wo, out, outOff + i * m + j, m);
            for (; i < i1; i++) out[outOff + i * m + j] = dotF32(x, xOff + i * k, k, w, wo);
        } else {
            boolean bf16 = type == DType.BF16;
            for (; i + 4 <= i1; i += 4) dot4Half(bf16, x, xOff + i * k, k, w, wo, out, outOff + i * m + j, m);
            for (; i < i1; i++) out[outOff + i * m + j] = dotHalf(bf16, x, xOff + i * k, k, w, wo);
        }
    }

    /** out[i0+r][j0+c] for r, c in [0, 4): four weight rows from byte offset wo (row stride 4k) against four activation rows from xo. */
    private static void block4x4F32(float[] x, int xo, int k, MemorySegment w, long wo, float[] out, int oo, int m) {
        long rs = 4L * k;
        FloatVector c00 = FloatVector.zero(FS), c01 = c00, c02 = c00, c03 = c00;
        FloatVector c10 = c00, c11 = c00, c12 = c00, c13 = c00;
        FloatVector c20 = c00, c21 = c00, c22 = c00, c23 = c00;
        FloatVector c30 = c00, c31 = c00, c32 = c00, c33 = c00;
        int p = 0;
        for (int bound = k - LANES; p <= bound; p += LANES) {
            long wp = wo + 4L * p;
            FloatVector w0 = FloatVector.fromMemorySegment(FS, w, wp, LE);
            FloatVector w1 = FloatVector.fromMemorySegment(FS, w, wp + rs, LE);
            FloatVector w2 = FloatVector.fromMemorySegment(FS, w, wp + 2 * rs, LE);
            FloatVector w3 = FloatVector.fromMemorySegment(FS, w, wp + 3 * rs, LE);
            FloatVector x0 = FloatVector.fromArray(FS, x, xo + p);
            c00 = x0.fma(w0, c00); c01 = x0.fma(w1, c01); c02 = x0.fma(w2, c02); c03 = x0.fma(w3, c03);
            FloatVector x1 = FloatVector.fromArray(FS, x, xo + k + p);
            c10 = x1.fma(w0, c10); c11 = x1.fma(w1, c11); c12 = x1.fma(w2, c12); c13 = x1.fma(w3, c13);
            FloatVector x2 = FloatVector.fromArray(FS, x, xo + 2 * k + p);
            c20 = x2.fma(w0, c20); c21 = x2.fma(w1, c21); c22 = x2.fma(w2, c22); c23 = x2.fma(w3, c23);
            FloatVector x3 = FloatVector.fromArray(FS, x, xo + 3 * k + p);
            c30 = x3.fma(w0, c30); c31 = x3.fma(w1, c31); c32 = x3.fma(w2, c32); c33 = x3.fma(w3, c33);
        }
        store4(out, oo, c00, c01, c02, c03);
        store4(out, oo + m, c10, c11, c12, c13);
        store4(out, oo + 2 * m, c20, c21, c22, c23);
        store4(out, oo + 3 * m, c30, c31, c32, c33);
        for (; p < k; p++) {
            for (int c = 0; c < 4; c++) {
                float wk = w.get(MatmulArgs.F32_LE, wo + c * rs + 4L * p);
                for (int r = 0; r < 4; r++) out[oo + r * m + c] += x[xo + r * k + p] * wk;
            }
        }
    }

    /** Weights of four rows widened to F32 per chunk of {@value #HALF_CHUNK} columns, per thread. */
    private static final int HALF_CHUNK = 512;
    private static final ThreadLocal<float[]> WIDENED = ThreadLocal.withInitial(() -> new float[4 * HALF_CHUNK]);

    /**
     * As {@link #block4x4F32} for BF16/F16 weights (row stride 2k bytes): each chunk of the four
     * weight rows is widened once into a per-thread F32 buffer, then multiplied with the four
     * activation rows (the widening stays a separate small loop, which C2 compiles to vector code;
     * inlined into the 16-accumulator loop it would not be).
     */
    private static void block4x4Half(boolean bf16, float[] x, int xo, int k, MemorySegment w, long wo, float[] out, int oo, int m) {
        long rs = 2L * k;
        float[] wf = WIDENED.get();
        FloatVector c00 = FloatVector.zero(FS), c01 = c00, c02 = c00, c03 = c00;
        FloatVector c10 = c00, c11 = c00, c12 = c00, c13 = c00;
        FloatVector c20 = c00, c21 = c00, c22 = c00, c23 = c00;
        FloatVector c30 = c00, c31 = c00, c32 = c00, c33 = c00;
        int vk = k - k % LANES;
        for (int p0 = 0; p0 < vk; p0 += HALF_CHUNK) {
            int len = Math.min(HALF_CHUNK, vk - p0);
            widen4(bf16, w, wo + 2L * p0, rs, len, wf);
            for (int q = 0; q < len; q += LANES) {
                FloatVector w0 = FloatVector.fromArray(FS, wf, q);
                FloatVector w1 = FloatVector.fromArray(FS, wf, HALF_CHUNK + q);
                FloatVector w2 = FloatVector.fromArray(FS, wf, 2 * HALF_CHUNK + q);
                FloatVector w3 = FloatVector.fromArray(FS, wf, 3 * HALF_CHUNK + q);
                int p = p0 + q;
                FloatVector x0 = FloatVector.fromArray(FS, x, xo + p);
                c00 = x0.fma(w0, c00); c01 = x0.fma(w1, c01); c02 = x0.fma(w2, c02); c03 = x0.fma(w3, c03);
                FloatVector x1 = FloatVector.fromArray(FS, x, xo + k + p);
                c10 = x1.fma(w0, c10); c11 = x1.fma(w1, c11); c12 = x1.fma(w2, c12); c13 = x1.fma(w3, c13);
                FloatVector x2 = FloatVector.fromArray(FS, x, xo + 2 * k + p);
                c20 = x2.fma(w0, c20); c21 = x2.fma(w1, c21); c22 = x2.fma(w2, c22); c23 = x2.fma(w3, c23);
                FloatVector x3 = FloatVector.fromArray(FS, x, xo + 3 * k + p);
                c30 = x3.fma(w0, c30); c31 = x3.fma(w1, c31); c32 = x3.fma(w2, c32); c33 = x3.fma(w3, c33);
            }
        }
        store4(out, oo, c00, c01, c02, c03);
        store4(out, oo + m, c10, c11, c12, c13);
        store4(out, oo + 2 * m, c20, c21, c22, c23);
        store4(out, oo + 3 * m, c30, c31, c32, c33);
        DType type = bf16 ? DType.BF16 : DType.F16;
        for (int p = vk; p < k; p++) {
            for (int c = 0; c < 4; c++) {
                float wk = MatmulArgs.weight(type, w, (wo + c * rs) / 2 + p);
                for (int r = 0; r < 4; r++) out[oo + r * m + c] += x[xo + r * k + p] * wk;
            }
        }
    }

    /** Widens {@code len} (a multiple of LANES) half weights of four rows (byte stride rs) into wf's four chunk slots. */
    private static void widen4(boolean bf16, MemorySegment w, long wp, long rs, int len, float[] wf) {
        if (!bf16) {
            widen4F16(w, wp, rs, len, wf);
            return;
        }
        for (int c = 0; c < 4; c++) {
            long base = wp + c * rs;
            int dst = c * HALF_CHUNK;
            for (int q = 0; q < len; q += LANES) half(true, w, base + 2L * q).intoArray(wf, dst + q);
        }
    }

    private static final ThreadLocal<short[]> HALF_BITS = ThreadLocal.withInitial(() -> new short[HALF_CHUNK]);

    /**
     * F16 widening through {@link Float#float16ToFloat} in a plain loop over a short[] copy, which
     * C2 turns into vector conversions (the Vector API form with masks is not intrinsified in
     * this context and would box every vector).
     */
    private static void widen4F16(MemorySegment w, long wp, long rs, int len, float[] wf) {
        short[] bits = HALF_BITS.get();
        for (int c = 0; c < 4; c++) {
            MemorySegment.copy(w, MatmulArgs.I16_LE, wp + c * rs, bits, 0, len);
            int dst = c * HALF_CHUNK;
            for (int q = 0; q < len; q++) wf[dst + q] = Float.float16ToFloat(bits[q]);
        }
    }

    private static void store4(float[] out, int o, FloatVector a, FloatVector b, FloatVector c, FloatVector d) {
        out[o] = a.reduceLanes(VectorOperators.ADD);
        out[o + 1] = b.reduceLanes(VectorOperators.ADD);
        out[o + 2] = c.reduceLanes(VectorOperators.ADD);
        out[o + 3] = d.reduceLanes(VectorOperators.ADD);
    }

    private static float dotF32(float[] x, int xo, int k, MemorySegment w, long wo) {
        FloatVector a0 = FloatVector.zero(FS);
        FloatVector a1 = a0;
        FloatVector a2 = a0;
        FloatVector a3 = a0;
        int p = 0;
        // four independent accumulators hide the FMA latency
        for (int bound = k - 4 * LANES; p <= bound; p += 4 * LANES) {
            a0 = FloatVector.fromArray(FS, x, xo + p).fma(FloatVector.fromMemorySegment(FS, w, wo + 4L * p, LE), a0);
            a1 = FloatVector.fromArray(FS, x, xo + p + LANES)
                    .fma(FloatVector.fromMemorySegment(FS, w, wo + 4L * (p + LANES), LE), a1);
            a2 = FloatVector.fromArray(FS, x, xo + p + 2 * LANES)
                    .fma(FloatVector.fromMemorySegment(FS, w, wo + 4L * (p + 2 * LANES), LE), a2);
            a3 = FloatVector.fromArray(FS, x, xo + p + 3 * LANES)
                    .fma(FloatVector.fromMemorySegment(FS, w, wo + 4L * (p + 3 * LANES), LE), a3);
        }
        for (int bound = k - LANES; p <= bound; p += LANES) {
            a0 = FloatVector.fromArray(FS, x, xo + p).fma(FloatVector.fromMemorySegment(FS, w, wo + 4L * p, LE), a0);
        }
        float s = a0.add(a1).add(a2.add(a3)).reduceLanes(VectorOperators.ADD);
        for (; p < k; p++) s += x[xo + p] * w.get(MatmulArgs.F32_LE, wo + 4L * p);
        return s;
    }

    private static void dot4F32(float[] x, int xo, int k, MemorySegment w, long wo, float[] out, int oo, int m) {
        FloatVector a0 = FloatVector.zero(FS);
        FloatVector a1 = a0;
        FloatVector a2 = a0;
        FloatVector a3 = a0;
        int x0 = xo;
        int x1 = xo + k;
        int x2 = x1 + k;
        int x3 = x2 + k;
        int p = 0;
        for (int bound = k - LANES; p <= bound; p += LANES) {
            FloatVector wv = FloatVector.fromMemorySegment(FS, w, wo + 4L * p, LE);
            a0 = FloatVector.fromArray(FS, x, x0 + p).fma(wv, a0);
            a1 = FloatVector.fromArray(FS, x, x1 + p).fma(wv, a1);
            a2 = FloatVector.fromArray(FS, x, x2 + p).fma(wv, a2);
            a3 = FloatVector.fromArray(FS, x, x3 + p).fma(wv, a3);
        }
        float s0 = a0.reduceLanes(VectorOperators.ADD);
        float s1 = a1.reduceLanes(VectorOperators.ADD);
        float s2 = a2.reduceLanes(VectorOperators.ADD);
        float s3 = a3.reduceLanes(VectorOperators.ADD);
        for (; p < k; p++) {
            float wk = w.get(MatmulArgs.F32_LE, wo + 4L * p);
            s0 += x[x0 + p] * wk;
            s1 += x[x1 + p] * wk;
            s2 += x[x2 + p] * wk;
            s3 += x[x3 + p] * wk;
        }
        out[oo] = s0;
        out[oo + m] = s1;
        out[oo + 2 * m] = s2;
        out[oo + 3 * m] = s3;
    }

    private static float dotHalf(boolean bf16, float[] x, int xo, int k, MemorySegment w, long wo) {
        FloatVector a0 = FloatVector.zero(FS);
        FloatVector a1 = a0;
        int p = 0;
        for (int bound = k - 2 * LANES; p <= bound; p += 2 * LANES) {
            a0 = FloatVector.fromArray(FS, x, xo + p).fma(half(bf16, w, wo + 2L * p), a0);
            a1 = FloatVector.fromArray(FS, x, xo + p + LANES).fma(half(bf16, w, wo + 2L * (p + LANES)), a1);
        }
        for (int bound = k - LANES; p <= bound; p += LANES) {
            a0 = FloatVector.fromArray(FS, x, xo + p).fma(half(bf16, w, wo + 2L * p), a0);
        }
        float s = a0.add(a1).reduceLanes(VectorOperators.ADD);
        DType type = bf16 ? DType.BF16 : DType.F16;
        for (; p < k; p++) s += x[xo + p] * MatmulArgs.weight(type, w, wo / 2 + p);
        return s;
    }

    private static void dot4Half(boolean bf16, float[] x, int xo, int k, MemorySegment w, long wo,
                                 float[] out, int oo, int m) {
        FloatVector a0 = FloatVector.zero(FS);
        FloatVector a1 = a0;
        FloatVector a2 = a0;
        FloatVector a3 = a0;
        int x0 = xo;
        int x1 = xo + k;
        int x2 = x1 + k;
        int x3 = x2 + k;
        int p = 0;
        for (int bound = k - LANES; p <= bound; p += LANES) {
            FloatVector wv = half(bf16, w, wo + 2L * p);
            a0 = FloatVector.fromArray(FS, x, x0 + p).fma(wv, a0);
            a1 = FloatVector.fromArray(FS, x, x1 + p).fma(wv, a1);
            a2 = FloatVector.fromArray(FS, x, x2 + p).fma(wv, a2);
            a3 = FloatVector.fromArray(FS, x, x3 + p).fma(wv, a3);
        }
        float s0 = a0.reduceLanes(VectorOperators.ADD);
        float s1 = a1.reduceLanes(VectorOperators.ADD);
        float s2 = a2.reduceLanes(VectorOperators.ADD);
        float s3 = a3.reduceLanes(VectorOperators.ADD);
        DType type = bf16 ? DType.BF16 : DType.F16;
        for (; p < k; p++) {
            float wk = MatmulArgs.weight(type, w, wo / 2 + p);
            s0 += x[x0 + p] * wk;
            s1 += x[x1 + p] * wk;
            s2 += x[x2 + p] * wk;
            s3 += x[x3 + p] * wk;
        }
        out[oo] = s0;
        out[oo + m] = s1;
        out[oo + 2 * m] = s2;
        out[oo + 3 * m] = s3;
    }

    /** LANES half-precision weights at byte offset {@code off}, widened to F32. */
    private static FloatVector half(boolean bf16, MemorySegment w, long off) {
        IntVector h = (IntVector) ShortVector.fromMemorySegment(SS, w, off, LE).convertShape(VectorOperators.S2I, IS, 0);
        if (bf16) {
            // bf16 is the top half of an f32; the sign-extended high bits are shifted out
            return h.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
        }
        // f16: move exponent+mantissa into f32 position and rebias by 2^112 (exact, also for
        // subnormals); Inf/NaN (exponent 31) get the f32 all-ones exponent instead.
        IntVector em = h.and(0x7FFF).lanewise(VectorOperators.LSHL, 13);
        IntVector finite = em.reinterpretAsFloats().mul(0x1p112f).reinterpretAsInts();
        VectorMask<Integer> infNan = h.and(0x7C00).compare(VectorOperators.EQ, 0x7C00);
        IntVector bits = finite.blend(em.or(0x7F800000), infNan);
        return bits.or(h.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
    }

    private static int ceilDiv(int a, int b) {
        return (a + b - 1) / b;
    }
}
