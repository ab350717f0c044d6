// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.bench;

import dev.dpserve.tensor.MachineProbe;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.concurrent.TimeUnit;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;

/**
 * This machine's limits, measured in the same run as the kernels: the peak FMA rate (12
 * independent FMA chains, native AVX2 and AVX-512 and the Vector API) and the streaming read
 * bandwidth (a sum over a buffer far larger than the caches), with 1 and 2 threads.
 *
 * <p>Throughput mode: one op of a peak benchmark is {@value #FMA_ITERATIONS} loop iterations (see
 * {@link Report} for the conversion to GFLOP/s); one op of a stream benchmark reads
 * {@value #STREAM_BYTES} bytes per thread. With 2 threads JMH sums the threads' ops.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
@State(Scope.Benchmark)
public class MachineLimitsBench {

    /** Loop iterations per op of the peak benchmarks. */
    public static final long FMA_ITERATIONS = 1_000_000;
    /** Bytes read per op (per thread) by the stream benchmarks: far beyond any cache. */
    public static final long STREAM_BYTES = 256L << 20;

    private static final VectorSpecies<Float> PREFERRED = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Float> S256 = FloatVector.SPECIES_256;

    /** Each thread streams its own buffer. */
    @State(Scope.Thread)
    public static class Buffer {
        Arena arena;
        MemorySegment data;

        @Setup(Level.Trial)
        public void setup() {
            MachineProbe.requireNative();
            arena = Arena.ofShared();
            data = arena.allocate(STREAM_BYTES, 64);
            data.fill((byte) 0x3C);
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            arena.close();
        }
    }

    @Setup(Level.Trial)
    public void load() {
        MachineProbe.requireNative();
    }

    @Benchmark
    @Threads(1)
    public double peakFmaNativeAvx2T1() {
        return MachineProbe.fmaLoop(FMA_ITERATIONS);
    }

    @Benchmark
    @Threads(2)
    public double peakFmaNativeAvx2T2() {
        return MachineProbe.fmaLoop(FMA_ITERATIONS);
    }

    @Benchmark
    @Threads(1)
    public double peakFmaNativeAvx512T1() {
        return MachineProbe.fmaLoop512(FMA_ITERATIONS);
    }

    @Benchmark
    @Threads(2)
    public double peakFmaNativeAvx512T2() {
        return MachineProbe.fmaLoop512(FMA_ITERATIONS);
    }

    @Benchmark
    @Threads(1)
    public float peakFmaVector256T1() {
        return fmaLoop256();
    }

    @Benchmark
    @Threads(2)
    public float peakFmaVector256T2() {
        return fmaLoop256();
    }

    @Benchmark
    @Threads(1)
    public float peakFmaVectorPreferredT1() {
        return fmaLoopPreferred();
    }

    @Benchmark
    @Threads(2)
    public float peakFmaVectorPreferredT2() {
        return fmaLoopPreferred();
    }

    @Benchmark
    @Threads(1)
    public double streamNativeT1(Buffer b) {
        return MachineProbe.streamSum(b.data);
    }

    @Benchmark
    @Threads(2)
    public double streamNativeT2(Buffer b) {
        return MachineProbe.streamSum(b.data);
    }

    @Benchmark
    @Threads(1)
    public float streamVectorT1(Buffer b) {
        return streamSum(b.data);
    }

    @Benchmark
    @Threads(2)
    public float streamVectorT2(Buffer b) {
        return streamSum(b.data);
    }

    // The species must be a compile-time constant for C2 to intrinsify the Vector API: one method per
    // species, each reading its static final field (a species passed as a parameter would not be).

    /** 12 independent FMA chains of 8 lanes, {@link #FMA_ITERATIONS} times. */
    private static float fmaLoop256() {
        FloatVector m = FloatVector.broadcast(S256, 0.999999f);
        FloatVector c = FloatVector.broadcast(S256, 1e-7f);
        FloatVector a0 = FloatVector.broadcast(S256, 0f), a1 = FloatVector.broadcast(S256, 1f), a2 = FloatVector.broadcast(S256, 2f);
        FloatVector a3 = FloatVector.broadcast(S256, 3f), a4 = FloatVector.broadcast(S256, 4f), a5 = FloatVector.broadcast(S256, 5f);
        FloatVector a6 = FloatVector.broadcast(S256, 6f), a7 = FloatVector.broadcast(S256, 7f), a8 = FloatVector.broadcast(S256, 8f);
        FloatVector a9 = FloatVector.broadcast(S256, 9f), a10 = FloatVector.broadcast(S256, 10f), a11 = FloatVector.broadcast(S256, 11f);
        for (long i = 0; i < FMA_ITERATIONS; i++) {
            a0 = a0.fma(m, c);
            a1 = a1.fma(m, c);
            a2 = a2.fma(m, c);
            a3 = a3.fma(m, c);
            a4 = a4.fma(m, c);
            a5 = a5.fma(m, c);
            a6 = a6.fma(m, c);
            a7 = a7.fma(m, c);
            a8 = a8.fma(m, c);
            a9 = a9.fma(m, c);
            a10 = a10.fma(m, c);
            a11 = a11.fma(m, c);
        }
        return a0.add(a1).add(a2).add(a3).add(a4).add(a5).add(a6).add(a7).add(a8).add(a9).add(a10).add(a11)
                .reduceLanes(VectorOperators.ADD);
    }

    /** 12 independent FMA chains of the preferred species' lanes, {@link #FMA_ITERATIONS} times. */
    private static float fmaLoopPreferred() {
        FloatVector m = FloatVector.broadcast(PREFERRED, 0.999999f);
        FloatVector c = FloatVector.broadcast(PREFERRED, 1e-7f);
        FloatVector a0 = FloatVector.broadcast(PREFERRED, 0f), a1 = FloatVector.broadcast(PREFERRED, 1f);
        FloatVector a2 = FloatVector.broadcast(PREFERRED, 2f), a3 = FloatVector.broadcast(PREFERRED, 3f);
        FloatVector a4 = FloatVector.broadcast(PREFERRED, 4f), a5 = FloatVector.broadcast(PREFERRED, 5f);
        FloatVector a6 = FloatVector.broadcast(PREFERRED, 6f), a7 = FloatVector.broadcast(PREFERRED, 7f);
        FloatVector a8 = FloatVector.broadcast(PREFERRED, 8f), a9 = FloatVector.broadcast(PREFERRED, 9f);
        FloatVector a10 = FloatVector.broadcast(PREFERRED, 10f), a11 = FloatVector.broadcast(PREFERRED, 11f);
        for (long i = 0; i < FMA_ITERATIONS; i++) {
            a0 = a0.fma(m, c);
            a1 = a1.fma(m, c);
            a2 = a2.fma(m, c);
            a3 = a3.fma(m, c);
            a4 = a4.fma(m, c);
            a5 = a5.fma(m, c);
            a6 = a6.fma(m, c);
            a7 = a7.fma(m, c);
            a8 = a8.fma(m, c);
            a9 = a9.fma(m, c);
            a10 = a10.fma(m, c);
            a11 = a11.fma(m, c);
        }
        return a0.add(a1).add(a2).add(a3).add(a4).add(a5).add(a6).add(a7).add(a8).add(a9).add(a10).add(a11)
                .reduceLanes(VectorOperators.ADD);
    }

    private static float streamSum(MemorySegment data) {
        long step = PREFERRED.vectorByteSize();
        FloatVector a0 = FloatVector.zero(PREFERRED), a1 = a0, a2 = a0, a3 = a0;
        long n = data.byteSize();
        long i = 0;
        for (; i + 4 * step <= n; i += 4 * step) {
            a0 = a0.add(FloatVector.fromMemorySegment(PREFERRED, data, i, ByteOrder.LITTLE_ENDIAN));
            a1 = a1.add(FloatVector.fromMemorySegment(PREFERRED, data, i + step, ByteOrder.LITTLE_ENDIAN));
            a2 = a2.add(FloatVector.fromMemorySegment(PREFERRED, data, i + 2 * step, ByteOrder.LITTLE_ENDIAN));
            a3 = a3.add(FloatVector.fromMemorySegment(PREFERRED, data, i + 3 * step, ByteOrder.LITTLE_ENDIAN));
        }
        return a0.add(a1).add(a2).add(a3).reduceLanes(VectorOperators.ADD);
    }

    /** Lanes of the preferred species (for the report). */
    public static int preferredLanes() {
        return PREFERRED.length();
    }
}
