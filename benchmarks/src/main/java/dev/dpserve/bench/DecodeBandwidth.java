// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.bench;

import dev.dpserve.api.tensor.DType;
import dev.dpserve.api.tensor.KernelBackend;
import dev.dpserve.api.tensor.Tensor;
import dev.dpserve.tensor.MachineProbe;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.ToDoubleFunction;

/**
 * Batch-1 GEMM (decode) against the streaming bandwidth measured in the same round, with 2 threads.
 * The machine this project runs on switches between phases (its two vCPUs act as one core or as
 * two, and the stream then differs by 1.5–2×) within minutes, so a ratio of two separate JMH runs
 * can compare different phases. Here each round streams 2 × {@value #STREAM_BYTES_PER_THREAD}
 * bytes on two threads (chunks claimed from a counter, as the GEMM's tasks are), then runs
 * {@value #OPS} GEMMs per dtype over distinct 4096×4096 weights (more than the last-level cache),
 * and the ratio is taken within the round. Rounds are grouped by
 * their stream (below or above {@code split} GB/s); the table gives each group's median ratio.
 * Not JMH: a complement to {@link GemmBench} and {@link MachineLimitsBench}.
 * Usage: {@code java --add-modules jdk.incubator.vector -Djava.library.path=... -cp benchmarks.jar
 * dev.dpserve.bench.DecodeBandwidth [rounds [backend [dtypes [split]]]]} (default 40 native
 * F32,BF16,I8 48).
 */
public final class DecodeBandwidth {

    static final long STREAM_BYTES_PER_THREAD = 64L << 20;
    static final int OPS = 24;

    private DecodeBandwidth() {
    }

    public static void main(String[] args) throws Exception {
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 40;
        String backendName = args.length > 1 ? args[1] : "native";
        List<DType> types = Arrays.stream((args.length > 2 ? args[2] : "F32,BF16,I8").split(",")).map(DType::valueOf).toList();
        double split = args.length > 3 ? Double.parseDouble(args[3]) : 48;
        MachineProbe.requireNative();
        KernelBackend b = GemmBench.backend(backendName, 2);
        try (Arena arena = Arena.ofShared(); Stream stream = new Stream(arena)) {
            Tensor[][] weights = new Tensor[types.size()][];
            for (int t = 0; t < types.size(); t++) weights[t] = GemmBench.weights(arena, types.get(t));
            float[] x = new float[GemmBench.K];
            Arrays.fill(x, 0.25f);
            byte[] q = new byte[GemmBench.K];
            Arrays.fill(q, (byte) 3);
            float[] colScale = new float[GemmBench.M];
            Arrays.fill(colScale, 0.02f);
            float[] out = new float[GemmBench.M];
            List<double[]> rows = new ArrayList<>(); // per round: stream GB/s, then GB/s per dtype
            for (int r = 0; r < rounds + 1; r++) {
                double[] row = new double[1 + types.size()];
                row[0] = stream.run();
                for (int t = 0; t < types.size(); t++) {
                    DType type = types.get(t);
                    Tensor[] w = weights[t];
                    long t0 = System.nanoTime();
                    for (int i = 0; i < OPS; i++) {
                        if (type == DType.I8) b.matmulInt8(q, 0, 1, null, w[i % w.length], null, colScale, out, 0);
                        else b.matmul(x, 0, 1, w[i % w.length], out, 0);
                    }
                    long dt = System.nanoTime() - t0;
                    row[1 + t] = (double) OPS * GemmBench.M * GemmBench.K * type.byteSize() / dt;
                }
                if (r > 0) rows.add(row); // the first round warms up
            }
            System.out.println("batch-1 GEMM, 4096×4096 weights, " + backendName + " backend, 2 threads, "
                    + MachineProbe.nativeLevel() + "; ratios to the same round's 2-thread stream (medians)");
            System.out.println();
            StringBuilder head = new StringBuilder("| rounds | stream GB/s |");
            StringBuilder rule = new StringBuilder("|---|---|");
            for (DType t : types) {
                head.append(' ').append(t).append(" GB/s (% of stream) |");
                rule.append("---|");
            }
            System.out.println(head);
            System.out.println(rule);
            for (boolean high : new boolean[] {false, true}) {
                List<double[]> sel = rows.stream().filter(v -> (v[0] >= split) == high).toList();
                if (sel.isEmpty()) continue;
                StringBuilder line = new StringBuilder("| " + sel.size() + (high ? " (stream ≥ " : " (stream < ")
                        + split + ") | " + String.format("%.1f", median(sel, v -> v[0])) + " |");
                for (int t = 0; t < types.size(); t++) {
                    int c = 1 + t;
                    line.append(String.format(" %.1f (%.0f%%) |", median(sel, v -> v[c]), 100 * median(sel, v -> v[c] / v[0])));
                }
                System.out.println(line);
            }
        } finally {
            if (b instanceof AutoCloseable c) c.close();
        }
    }

    private static double median(List<double[]> rows, ToDoubleFunction<double[]> f) {
        return Report.median(rows.stream().map(f::applyAsDouble).toList());
    }

    /**
     * Two threads that sum one buffer when asked, claiming chunks of {@value #CHUNK} bytes from a
     * shared counter (as the GEMM's tasks are claimed), so a thread the machine slows down does not
     * set the time alone. Started once.
     */
    private static final class Stream implements AutoCloseable {
        static final long CHUNK = 2L << 20;
        private final MemorySegment buffer;
        private final AtomicInteger next = new AtomicInteger();
        private final CyclicBarrier start = new CyclicBarrier(3);
        private final CyclicBarrier end = new CyclicBarrier(3);
        private final Thread[] threads = new Thread[2];
        private volatile boolean closed;
        volatile double sink;

        Stream(Arena arena) {
            buffer = arena.allocate(2 * STREAM_BYTES_PER_THREAD, 64);
            buffer.fill((byte) 0x3C);
            int chunks = (int) (buffer.byteSize() / CHUNK);
            for (int i = 0; i < 2; i++) {
                threads[i] = new Thread(() -> {
                    try {
                        while (true) {
                            start.await();
                            if (closed) return;
                            double s = 0;
                            for (int c; (c = next.getAndIncrement()) < chunks; ) s += MachineProbe.streamSum(buffer.asSlice(c * CHUNK, CHUNK));
                            sink += s;
                            end.await();
                        }
                    } catch (Exception e) {
                        // closed
                    }
                }, "stream-" + i);
                threads[i].setDaemon(true);
                threads[i].start();
            }
        }

        /** Both threads stream the buffer; GB/s of the pair. */
        double run() throws Exception {
            next.set(0);
            long t0 = System.nanoTime();
            start.await();
            end.await();
            return (double) buffer.byteSize() / (System.nanoTime() - t0);
        }

        @Override
        public void close() throws Exception {
            closed = true;
            start.await();
            for (Thread t : threads) t.join();
        }
    }
}
