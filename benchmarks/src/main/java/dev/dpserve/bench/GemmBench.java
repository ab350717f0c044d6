// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.bench;

import dev.dpserve.api.tensor.DType;
import dev.dpserve.api.tensor.KernelBackend;
import dev.dpserve.api.tensor.Tensor;
import dev.dpserve.tensor.NativeKernelBackend;
import dev.dpserve.tensor.VectorKernelBackend;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
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
 * GEMM at an LLM shape: {@code batch} tokens × a 4096×4096 weight, per backend and weight dtype,
 * with the backend's worker pool at {@code threads} (2 = the cores of this machine). As in a
 * decode step, every op multiplies by the next of several distinct weight matrices whose total
 * ({@value #MIN_TOTAL_BYTES} bytes at least) is far beyond the last-level cache, so batch 1 reads
 * its weights from memory. The int8 GEMM is {@link Int8GemmBench}.
 *
 * <p>Average time per op; {@link Report} turns it into GFLOP/s (2·batch·M·K per op) and GB/s of
 * weight traffic, and into ratios to the peak and bandwidth measured by {@link MachineLimitsBench}.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-Xmx4g"})
@Threads(1)
@State(Scope.Benchmark)
public class GemmBench {

    /** Weight rows (M) and columns (K). */
    public static final int M = 4096;
    public static final int K = 4096;
    /** Distinct weight matrices together hold at least this many bytes. */
    public static final long MIN_TOTAL_BYTES = 256L << 20;

    @Param({"native", "vector"})
    public String backend;

    @Param({"F32", "BF16"})
    public String dtype;

    @Param({"1", "8", "64", "256"})
    public int batch;

    @Param({"2"})
    public int threads;

    private Arena arena;
    private KernelBackend kernels;
    private Tensor[] weights;
    private int next;
    private float[] x;
    private byte[] q;
    private float[] rowScale;
    private float[] colScale;
    private float[] out;

    @Setup(Level.Trial)
    public void setup() {
        DType type = DType.valueOf(dtype);
        kernels = backend(backend, threads);
        KernelBackend.Op op = type == DType.I8 ? KernelBackend.Op.MATMUL_INT8 : KernelBackend.Op.MATMUL;
        if (!kernels.supports(op, type)) throw new IllegalStateException(backend + " does not support " + op + " on " + type);
        arena = Arena.ofShared();
        weights = weights(arena, type);
        x = new float[batch * K];
        Arrays.fill(x, 0.25f);
        q = new byte[batch * K];
        Arrays.fill(q, (byte) 3);
        rowScale = new float[batch];
        Arrays.fill(rowScale, 0.01f);
        colScale = new float[M];
        Arrays.fill(colScale, 0.02f);
        out = new float[batch * M];
    }

    static KernelBackend backend(String name, int threads) {
        return switch (name) {
            case "native" -> new NativeKernelBackend(threads);
            case "vector" -> new VectorKernelBackend(threads);
            default -> throw new IllegalArgumentException("backend " + name);
        };
    }

    /** Enough distinct M×K weights of {@code type} to hold {@link #MIN_TOTAL_BYTES}. */
    static Tensor[] weights(Arena arena, DType type) {
        long bytes = (long) M * K * type.byteSize();
        int copies = (int) Math.max(2, (MIN_TOTAL_BYTES + bytes - 1) / bytes);
        Tensor[] w = new Tensor[copies];
        for (int c = 0; c < copies; c++) {
            MemorySegment data = arena.allocate(bytes, 64);
            data.fill((byte) (0x3C + c)); // small finite values in every dtype
            w[c] = new Tensor("w" + c, type, new long[] {M, K}, data);
        }
        return w;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        if (kernels instanceof AutoCloseable c) {
            try {
                c.close();
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }
        arena.close();
    }

    @Benchmark
    public float gemm() {
        Tensor w = weights[next];
        next = next + 1 == weights.length ? 0 : next + 1;
        if (w.dtype() == DType.I8) {
            kernels.matmulInt8(q, 0, batch, rowScale, w, null, colScale, out, 0);
        } else {
            kernels.matmul(x, 0, batch, w, out, 0);
        }
        return out[out.length - 1];
    }
}
