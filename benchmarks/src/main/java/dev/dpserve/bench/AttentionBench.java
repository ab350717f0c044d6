// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.bench;

import dev.dpserve.api.tensor.KernelBackend;
import dev.dpserve.api.tensor.PagedAttention;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Paged attention of one layer at the model shapes, per backend, with the backend's pool at
 * {@code threads}: the 110M Llama's 12 heads of 64 (decode at context 512 and 2048, a 512-token
 * prefill chunk), the DeepSeek-V3-shaped model's MLA (16 heads over a 256 + 32 latent, decode at
 * context 64 and 1024) and DeepSeek-V3's own (128 heads over 512 + 64, context 1024). Blocks of 16
 * positions, laid out as the engine's cache (K then V per slot); distinct caches of at least
 * {@value #MIN_TOTAL_BYTES} bytes in all are cycled, so that each call reads its cache from memory.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-Xmx2g"})
@Threads(1)
@State(Scope.Benchmark)
public class AttentionBench {

    @Param({"native", "vector"})
    public String backend;

    @Param({"llamaDecode512", "llamaDecode2048", "llamaPrefill512", "mlaDecode64", "mlaDecode1024", "dsv3Decode1024"})
    public String shape;

    @Param({"2"})
    public int threads;

    /** The distinct caches cycled through together hold at least this many bytes (beyond the LLC). */
    public static final long MIN_TOTAL_BYTES = 96L << 20;

    private KernelBackend kernels;
    private PagedAttention[] calls;
    private int next;

    @Setup(Level.Trial)
    public void setup() {
        kernels = GemmBench.backend(backend, threads);
        SplittableRandom rnd = new SplittableRandom(1);
        // as in a decode step, where the other layers' caches and the weights pass through the
        // caches between two calls on one layer: distinct caches, cycled, far beyond the LLC
        PagedAttention first = call(rnd);
        long bytes = 0;
        for (float[] b : first.blocks()) bytes += 4L * b.length;
        calls = new PagedAttention[(int) Math.clamp((MIN_TOTAL_BYTES + bytes - 1) / bytes, 2, 4096)];
        calls[0] = first;
        for (int c = 1; c < calls.length; c++) calls[c] = call(rnd);
    }

    private PagedAttention call(SplittableRandom rnd) {
        return switch (shape) {
            case "llamaDecode512" -> dense(rnd, 12, 64, 511, 1);
            case "llamaDecode2048" -> dense(rnd, 12, 64, 2047, 1);
            case "llamaPrefill512" -> dense(rnd, 12, 64, 0, 512);
            case "mlaDecode64" -> mla(rnd, 16, 256, 32, 63);
            case "mlaDecode1024" -> mla(rnd, 16, 256, 32, 1023);
            case "dsv3Decode1024" -> mla(rnd, 128, 512, 64, 1023);
            default -> throw new IllegalArgumentException("shape " + shape);
        };
    }

    @TearDown(Level.Trial)
    public void tearDown() throws Exception {
        if (kernels instanceof AutoCloseable c) c.close();
    }

    @Benchmark
    public float[] attention() {
        PagedAttention call = calls[next];
        next = (next + 1) % calls.length;
        kernels.attention(call);
        return call.out();
    }

    private static final int BLOCK = 16;

    /** Multi-head attention (no GQA), K and V of every head in one slot per position. */
    private static PagedAttention dense(SplittableRandom rnd, int heads, int dim, int start, int n) {
        int ctx = start + n;
        int slot = 2 * heads * dim;
        int blocks = (ctx + BLOCK - 1) / BLOCK;
        float[][] data = new float[blocks][];
        int[] table = new int[blocks];
        for (int b = 0; b < blocks; b++) {
            data[b] = random(rnd, BLOCK * slot);
            table[b] = blocks - 1 - b; // not in order, as after a while of serving
        }
        return new PagedAttention(random(rnd, n * heads * dim), 0, heads * dim, dim, n, heads, heads, dim, dim,
                data, table, BLOCK, 0, slot, 0, dim, heads * dim, dim, start, 0, (float) (1 / Math.sqrt(dim)),
                new float[n * heads * dim], 0, heads * dim, dim);
    }

    /** Absorbed MLA decode: one KV head [latent ‖ rope key], V the latent. */
    private static PagedAttention mla(SplittableRandom rnd, int heads, int lora, int rope, int start) {
        int ctx = start + 1;
        int cd = lora + rope;
        int blocks = (ctx + BLOCK - 1) / BLOCK;
        float[][] data = new float[blocks][];
        int[] table = new int[blocks];
        for (int b = 0; b < blocks; b++) {
            data[b] = random(rnd, BLOCK * cd);
            table[b] = blocks - 1 - b;
        }
        return new PagedAttention(random(rnd, heads * cd), 0, heads * cd, cd, 1, heads, 1, cd, lora,
                data, table, BLOCK, 0, cd, 0, 0, 0, 0, start, 0, (float) (1 / Math.sqrt(cd)),
                new float[heads * lora], 0, heads * lora, lora);
    }

    private static float[] random(SplittableRandom rnd, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) rnd.nextDouble(-1, 1);
        return a;
    }
}
