// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.bench;

import dev.dpserve.api.tensor.DType;
import dev.dpserve.api.tensor.KernelBackend;
import dev.dpserve.api.tensor.Tensor;
import java.lang.foreign.Arena;
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
 * Int8 GEMM ({@code matmulInt8}: int8 weights and activations, int32 accumulation, per-row and
 * per-column scales) at the shape and with the weight rotation of {@link GemmBench}.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-Xmx4g"})
@Threads(1)
@State(Scope.Benchmark)
public class Int8GemmBench {

    /** Only backends that implement MATMUL_INT8 (the Vector API backend does not yet). */
    @Param({"native"})
    public String backend;

    @Param({"I8"})
    public String dtype;

    @Param({"1", "8", "64", "256"})
    public int batch;

    @Param({"2"})
    public int threads;

    private Arena arena;
    private KernelBackend kernels;
    private Tensor[] weights;
    private int next;
    private byte[] q;
    private float[] rowScale;
    private float[] colScale;
    private float[] out;

    @Setup(Level.Trial)
    public void setup() {
        DType type = DType.valueOf(dtype);
        kernels = GemmBench.backend(backend, threads);
        KernelBackend.Op op = type == DType.I8 ? KernelBackend.Op.MATMUL_INT8 : KernelBackend.Op.MATMUL;
        if (!kernels.supports(op, type)) throw new IllegalStateException(backend + " does not support " + op + " on " + type);
        arena = Arena.ofShared();
        weights = GemmBench.weights(arena, type);
        q = new byte[batch * GemmBench.K];
        Arrays.fill(q, (byte) 3);
        rowScale = new float[batch];
        Arrays.fill(rowScale, 0.01f);
        colScale = new float[GemmBench.M];
        Arrays.fill(colScale, 0.02f);
        out = new float[batch * GemmBench.M];
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
        kernels.matmulInt8(q, 0, batch, rowScale, w, null, colScale, out, 0);
        return out[out.length - 1];
    }
}
