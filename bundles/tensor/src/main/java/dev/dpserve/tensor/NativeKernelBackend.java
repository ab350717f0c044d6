// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tensor;

import dev.dpserve.api.tensor.DType;
import dev.dpserve.api.tensor.KernelBackend;
import dev.dpserve.api.tensor.PagedAttention;
import dev.dpserve.api.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Dictionary;
import java.util.Hashtable;
import java.util.concurrent.ExecutorService;
import org.osgi.framework.BundleContext;
import org.osgi.framework.ServiceRegistration;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Deactivate;

/**
 * Kernels in C (AVX2/FMA, AVX-512 for batched GEMMs and attention, AVX-VNNI or AVX-512 VNNI for
 * int8, with an x86-64 baseline fallback; the path is chosen at load time from the CPU's features)
 * called through JNI; the library comes from a platform fragment of this bundle
 * ({@code dev.dpserve.tensor.native.linux.x86_64}). Attention runs in C for decode-sized calls and
 * on this bundle's tiled Vector API kernel for prefill chunks (see {@link #attention}).
 *
 * <p>Registration: this component always activates, loads the library and only then registers
 * itself as a {@link KernelBackend} named "native" (score {@value #SCORE}, above "vector"). Without
 * the fragment (or on another platform) it logs one line and registers nothing.
 *
 * <p>Threading: GEMMs are split on the Java side into blocks of weight rows × up to
 * {@value #BATCH_TILE} tokens ({@value #PACKED_TILE} for float and int8 weights at
 * {@value #PACKED_MIN_TOKENS}+ tokens on AVX-512, where the kernel reads each weight byte from
 * memory once per block), one JNI call per block, over a pool of
 * {@code availableProcessors} threads (the caller works too). Attention splits its (token, head)
 * pairs over the same pool, one JNI call per thread, each pinning the cache blocks it reads. The
 * element-wise ops run on the calling thread. Activations are pinned with
 * {@code GetPrimitiveArrayCritical}; weights are read at their native address (memory-mapped
 * checkpoints are never copied). A weight backed by a heap array is copied to native memory for
 * the duration of the call (correct, not fast).
 */
@Component(service = {}, immediate = true)
public final class NativeKernelBackend implements KernelBackend, AutoCloseable {

    /** The score of this backend: above the Vector API backend. */
    public static final int SCORE = 200;

    private static final System.Logger LOG = System.getLogger(NativeKernelBackend.class.getName());

    /** Tokens per GEMM block: a block's activations (64 × a 512-float K slice) stay in L2. */
    static final int BATCH_TILE = 64;
    /**
     * Tokens per GEMM block for the packed AVX-512 float and int8 kernels (blocks of at least
     * {@value #PACKED_MIN_TOKENS}): each weight byte is read from memory once per block, and the
     * block's activations (transposed, 256 tokens × a 512-float K slice) stay in L2.
     */
    static final int PACKED_TILE = 256;
    static final int PACKED_MIN_TOKENS = 9;
    /** Few row chunks for the packed kernel: each repacks its block's activations. */
    private static final int PACKED_TASKS_PER_THREAD = 2;
    private static final long PARALLEL_MIN_WORK = 1L << 17;
    private static final int MIN_ROWS_PER_TASK = 16;
    private static final int TASKS_PER_THREAD = 4;
    /** Multiply-adds of an attention call below which it stays on the calling thread. */
    private static final long ATTENTION_PARALLEL_MIN_WORK = 1L << 18;

    private volatile ExecutorService pool;
    private volatile int threads = 1;
    private ServiceRegistration<KernelBackend> registration;

    /** For DS: the library is loaded and the pool created on activation. */
    public NativeKernelBackend() {
    }

    /**
     * A backend outside OSGi with its own pool of {@code threads} workers (the caller counts as
     * one); IllegalStateException if the native library cannot be loaded.
     */
    public NativeKernelBackend(int threads) {
        String err = NativeKernels.load();
        if (err != null) throw new IllegalStateException("native kernels not available: " + err);
        start(threads);
    }

    /** Whether the native library is loadable from this class loader (loading it if not yet). */
    public static boolean available() {
        return NativeKernels.load() == null;
    }

    @Activate
    void activate(BundleContext context) {
        String err = NativeKernels.load();
        if (err != null) {
            LOG.log(System.Logger.Level.INFO, "native kernels not installed ({0}); the \"native\" KernelBackend is not registered", err);
            return;
        }
        start(Runtime.getRuntime().availableProcessors());
        Dictionary<String, Object> props = new Hashtable<>();
        props.put(KernelBackend.NAME, name());
        registration = context.registerService(KernelBackend.class, this, props);
        LOG.log(System.Logger.Level.INFO, "native kernels loaded ({0}, {1} threads); KernelBackend \"native\" registered",
                NativeKernels.levelName(NativeKernels.level()), threads);
    }

    @Deactivate
    void deactivate() {
        ServiceRegistration<KernelBackend> r = registration;
        registration = null;
        if (r != null) {
            try {
                r.unregister();
            } catch (IllegalStateException alreadyGone) {
                // the bundle is stopping and the framework unregistered it already
            }
        }
        close();
    }

    private void start(int n) {
        if (n < 1) throw new IllegalArgumentException("threads must be >= 1, got " + n);
        this.threads = n;
        this.pool = n == 1 ? null : Tasks.pool("dpserve-native", n - 1);
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
        return "native";
    }

    @Override
    public int score() {
        return SCORE;
    }

    @Override
    public boolean supports(Op op, DType type) {
        return switch (op) {
            case MATMUL -> MatmulArgs.isFloatWeight(type);
            case MATMUL_INT8 -> type == DType.I8;
            case QUANTIZE_ROWS, RMS_NORM, ROPE, SOFTMAX, SILU_MUL, TOP_K, ATTENTION -> type == DType.F32;
        };
    }

    @Override
    public void matmul(float[] x, int xOff, int n, Tensor w, float[] out, int outOff) {
        int k = MatmulArgs.check(x, xOff, n, w, out, outOff);
        int m = w.dim(0);
        if (n == 0 || m == 0) return;
        int dtype = switch (w.dtype()) {
            case F32 -> NativeKernels.DT_F32;
            case BF16 -> NativeKernels.DT_BF16;
            default -> NativeKernels.DT_F16;
        };
        // AVX-512: blocks of PACKED_MIN_TOKENS or more tokens take the packed kernel, which reads each
        // weight byte from memory once per block: give it all tokens (up to PACKED_TILE) and few row chunks
        boolean packed = n >= PACKED_MIN_TOKENS && NativeKernels.level() >= NativeKernels.LEVEL_AVX512;
        try (Weights weights = Weights.of(w.data())) {
            long addr = weights.address;
            gemm(n, m, k, packed ? PACKED_TILE : BATCH_TILE, packed ? PACKED_TASKS_PER_THREAD : TASKS_PER_THREAD,
                    (j0, j1, i0, i1) -> NativeKernels.matmul(dtype, x, xOff, k, addr, m, j0, j1, i0, i1, out, outOff));
        }
    }

    @Override
    public void matmulInt8(byte[] q, int qOff, int n, float[] rowScale, Tensor w, int[] accBias, float[] colScale,
                           float[] out, int outOff) {
        if (w.rank() != 2 || w.dtype() != DType.I8) {
            throw new IllegalArgumentException("matmulInt8 weight " + w + " must be 2-D I8 (M, K)");
        }
        int m = w.dim(0);
        int k = w.dim(1);
        if (n < 0 || qOff < 0 || outOff < 0) {
            throw new IllegalArgumentException("negative n/offset: n=" + n + " qOff=" + qOff + " outOff=" + outOff);
        }
        need("q", q.length, (long) qOff + (long) n * k);
        need("out", out.length, (long) outOff + (long) n * m);
        need("colScale", colScale.length, m);
        if (rowScale != null) need("rowScale", rowScale.length, n);
        if (accBias != null) need("accBias", accBias.length, m);
        if (n == 0 || m == 0) return;
        // AVX-512: the packed int8 kernel (VNNI, tokens in the lanes) also reads each weight byte once per block
        boolean packed = n >= PACKED_MIN_TOKENS && NativeKernels.level() >= NativeKernels.LEVEL_AVX512;
        try (Weights weights = Weights.of(w.data())) {
            long addr = weights.address;
            gemm(n, m, k, packed ? PACKED_TILE : BATCH_TILE, packed ? PACKED_TASKS_PER_THREAD : TASKS_PER_THREAD,
                    (j0, j1, i0, i1) -> NativeKernels.matmulInt8(q, qOff, k, addr, m, j0, j1, i0, i1,
                    rowScale, accBias, colScale, out, outOff));
        }
    }

    @Override
    public void quantizeRows(float[] x, int xOff, int rows, int k, byte[] q, int qOff, float[] scale, int scaleOff) {
        nonNegative(xOff, rows, k, qOff, scaleOff);
        need("x", x.length, (long) xOff + (long) rows * k);
        need("q", q.length, (long) qOff + (long) rows * k);
        need("scale", scale.length, (long) scaleOff + rows);
        if (rows == 0) return;
        NativeKernels.quantizeRows(x, xOff, rows, k, q, qOff, scale, scaleOff);
    }

    @Override
    public void rmsNorm(float[] x, int xOff, int xStride, int rows, float[] weight, float eps,
                        float[] out, int outOff, int outStride) {
        nonNegative(xOff, xStride, rows, outOff, outStride);
        if (rows == 0) return;
        int len = weight.length;
        need("x", x.length, (long) xOff + (long) (rows - 1) * xStride + len);
        need("out", out.length, (long) outOff + (long) (rows - 1) * outStride + len);
        NativeKernels.rmsNorm(x, xOff, xStride, rows, weight, eps, out, outOff, outStride);
    }

    @Override
    public void rope(float[] x, int off, int rows, int rowStride, int heads, int headStride, int rotaryDim,
                     float[] cos, float[] sin, boolean interleaved) {
        nonNegative(off, rows, rowStride, heads, headStride, rotaryDim);
        if (rotaryDim % 2 != 0) throw new IllegalArgumentException("rotaryDim must be even, got " + rotaryDim);
        if (rows == 0 || heads == 0 || rotaryDim == 0) return;
        need("x", x.length, (long) off + (long) (rows - 1) * rowStride + (long) (heads - 1) * headStride + rotaryDim);
        need("cos", cos.length, (long) rows * (rotaryDim / 2));
        need("sin", sin.length, (long) rows * (rotaryDim / 2));
        NativeKernels.rope(x, off, rows, rowStride, heads, headStride, rotaryDim, cos, sin, interleaved);
    }

    @Override
    public void softmax(float[] x, int off, int rows, int len, int stride) {
        nonNegative(off, rows, len, stride);
        if (rows == 0 || len == 0) return;
        need("x", x.length, (long) off + (long) (rows - 1) * stride + len);
        NativeKernels.softmax(x, off, rows, len, stride);
    }

    @Override
    public void siluMul(float[] gate, int gOff, float[] up, int uOff, int n) {
        nonNegative(gOff, uOff, n);
        need("gate", gate.length, (long) gOff + n);
        need("up", up.length, (long) uOff + n);
        if (n == 0) return;
        NativeKernels.siluMul(gate, gOff, up, uOff, n);
    }

    @Override
    public void topK(float[] x, int off, int len, int k, int[] idx, float[] val) {
        nonNegative(off, len, k);
        if (k > len) throw new IllegalArgumentException("top-" + k + " of " + len + " values");
        need("x", x.length, (long) off + len);
        need("idx", idx.length, k);
        need("val", val.length, k);
        if (k == 0) return;
        NativeKernels.topK(x, off, len, k, idx, val);
    }

    /**
     * Decode-sized calls (up to {@value VectorTiledAttention#MIN_TOKENS} - 1 tokens) run in C, one
     * JNI call per thread over a share of the (token, head) pairs, each pinning the cache blocks it
     * needs. The heads of a group (GQA, MLA) read each K/V row once, and the rows of the positions
     * ahead are prefetched, since a decode step finds its cache in memory (MLA decode ≈ 2×, MHA
     * 1.25–1.5× the Vector API kernel on cold caches). Chunks of
     * {@value VectorTiledAttention#MIN_TOKENS}+ tokens (prefill) run the tiled Vector API kernel of
     * this bundle (queries in the lanes) on this backend's pool.
     */
    @Override
    public void attention(PagedAttention a) {
        checkAttention(a);
        if (a.numTokens() >= VectorTiledAttention.MIN_TOKENS) {
            VectorTiledAttention.attention(pool, threads, a);
            return;
        }
        int tasks = a.numTokens() * a.numHeads();
        long work = (long) tasks * a.contextLength() * (a.kDim() + a.vDim());
        ExecutorService p = pool;
        int t = threads;
        if (p == null || t == 1 || tasks == 1 || work < ATTENTION_PARALLEL_MIN_WORK) {
            attend(a, 0, tasks);
            return;
        }
        int chunks = Math.min(tasks, t);
        Tasks.run(p, t, chunks, c -> attend(a, (int) ((long) tasks * c / chunks), (int) ((long) tasks * (c + 1) / chunks)));
    }

    private static void attend(PagedAttention a, int task0, int task1) {
        int status = NativeKernels.attention(a.q(), a.qOff(), a.qTokenStride(), a.qHeadStride(), a.numHeads(),
                a.numKvHeads(), a.kDim(), a.vDim(), a.blocks(), a.blockTable(), a.blockSize(), a.layerOffset(),
                a.slotStride(), a.kOffset(), a.kHeadStride(), a.vOffset(), a.vHeadStride(), a.startPosition(),
                a.window(), a.scale(), a.out(), a.outOff(), a.outTokenStride(), a.outHeadStride(), task0, task1);
        if (status != 0) throw new IllegalStateException("native attention could not pin its arrays");
    }

    /** Every index native code will touch, checked here (native code trusts them). */
    private static void checkAttention(PagedAttention a) {
        nonNegative(a.qOff(), a.qTokenStride(), a.qHeadStride(), a.outOff(), a.outTokenStride(), a.outHeadStride(),
                a.layerOffset(), a.slotStride(), a.kOffset(), a.kHeadStride(), a.vOffset(), a.vHeadStride());
        int lastT = a.numTokens() - 1;
        int lastH = a.numHeads() - 1;
        need("q", a.q().length, a.qOff() + (long) lastT * a.qTokenStride() + (long) lastH * a.qHeadStride() + a.kDim());
        need("out", a.out().length,
                a.outOff() + (long) lastT * a.outTokenStride() + (long) lastH * a.outHeadStride() + a.vDim());
        int lastKv = a.numKvHeads() - 1;
        long slotEnd = Math.max(a.kOffset() + (long) lastKv * a.kHeadStride() + a.kDim(),
                a.vOffset() + (long) lastKv * a.vHeadStride() + a.vDim());
        int maxPos = a.contextLength() - 1;
        int bs = a.blockSize();
        float[][] blocks = a.blocks();
        int[] table = a.blockTable();
        int first = a.window() > 0 ? Math.max(0, a.startPosition() - a.window() + 1) / bs : 0;
        for (int i = first; i <= maxPos / bs; i++) {
            int b = table[i];
            if (b < 0 || b >= blocks.length || blocks[b] == null) {
                throw new IllegalArgumentException("block table entry " + i + " = " + b + " is not a block of the cache");
            }
            int lastSlot = Math.min(bs - 1, maxPos - i * bs);
            need("cache block " + b, blocks[b].length, a.layerOffset() + (long) lastSlot * a.slotStride() + slotEnd);
        }
    }

    /** One GEMM block: weight rows [j0, j1), tokens [i0, i1). */
    @FunctionalInterface
    private interface Block {
        void run(int j0, int j1, int i0, int i1);
    }

    /** Splits an (n tokens × m rows × k) GEMM into blocks of up to {@code tile} tokens over the pool. */
    private void gemm(int n, int m, int k, int tile, int tasksPerThread, Block block) {
        ExecutorService p = pool;
        int t = threads;
        if (p == null || t == 1 || (long) n * m * k < PARALLEL_MIN_WORK) {
            for (int i0 = 0; i0 < n; i0 += tile) block.run(0, m, i0, Math.min(n, i0 + tile));
            return;
        }
        int batchTiles = ceilDiv(n, tile);
        int rowChunks = Math.clamp(ceilDiv(t * tasksPerThread, batchTiles), 1, Math.max(1, m / MIN_ROWS_PER_TASK));
        // batch-tile-major so that concurrent blocks share the activation tile in cache; chunk
        // boundaries on multiples of 4 rows (the kernels' register block)
        Tasks.run(p, t, batchTiles * rowChunks, task -> {
            int bt = task / rowChunks;
            int chunk = task % rowChunks;
            int j0 = chunk == 0 ? 0 : (int) ((long) m * chunk / rowChunks) & ~3;
            int j1 = chunk == rowChunks - 1 ? m : (int) ((long) m * (chunk + 1) / rowChunks) & ~3;
            int i0 = bt * tile;
            if (j1 > j0) block.run(j0, j1, i0, Math.min(n, i0 + tile));
        });
    }


    /** A weight's native address: the segment's own, or a temporary native copy of a heap segment. */
    static final class Weights implements AutoCloseable {
        final long address;
        private final Arena arena;

        private Weights(long address, Arena arena) {
            this.address = address;
            this.arena = arena;
        }

        static Weights of(MemorySegment data) {
            // native code reads the address directly: refuse memory that was already released
            if (!data.scope().isAlive()) throw new IllegalStateException("weight memory was already released");
            if (data.isNative()) return new Weights(data.address(), null);
            Arena a = Arena.ofShared();
            MemorySegment copy = a.allocate(Math.max(1, data.byteSize()), 64);
            MemorySegment.copy(data, 0, copy, 0, data.byteSize());
            return new Weights(copy.address(), a);
        }

        @Override
        public void close() {
            if (arena != null) arena.close();
        }
    }

    private static void nonNegative(int... values) {
        for (int v : values) {
            if (v < 0) throw new IllegalArgumentException("negative size, stride or offset: " + v);
        }
    }

    private static void need(String what, int have, long need) {
        if (need > have) throw new IllegalArgumentException(what + " too short: need " + need + ", have " + have);
    }

    private static int ceilDiv(int a, int b) {
        return (a + b - 1) / b;
    }
}
