// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.bench;

import dev.dpserve.api.tensor.DType;
import dev.dpserve.api.tensor.KernelBackend;
import dev.dpserve.api.tensor.Tensor;
import dev.dpserve.tensor.MachineProbe;
import dev.dpserve.tensor.NativeKernelBackend;
import dev.dpserve.tensor.VectorKernelBackend;
import java.lang.foreign.Arena;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Kernel efficiency on one thread, timed by the thread's CPU time rather than the wall clock, so
 * that time the shared machine gives to other processes does not count (a core's other hardware
 * thread and the caches are still shared). Each repeat runs the FMA peak loop and then the GEMM,
 * and the ratio is taken within the repeat; the table gives medians over the repeats. Not JMH:
 * a complement to {@link MachineLimitsBench} / {@link GemmBench} for a loaded machine.
 * Usage: {@code java --add-modules jdk.incubator.vector -Djava.library.path=... -cp benchmarks.jar
 * dev.dpserve.bench.CpuTimeRatios [repeats [backends [dtypes [batches]]]]}, the lists comma-separated
 * (default: native,vector F32,BF16,I8 1,8,64,256).
 */
public final class CpuTimeRatios {

    private static final ThreadMXBean THREADS = ManagementFactory.getThreadMXBean();
    private static final long PEAK_ITERATIONS = 20_000_000;

    private CpuTimeRatios() {
    }

    public static void main(String[] args) {
        int repeats = args.length > 0 ? Integer.parseInt(args[0]) : 7;
        List<String> backends = List.of((args.length > 1 ? args[1] : "native,vector").split(","));
        List<DType> types = Arrays.stream((args.length > 2 ? args[2] : "F32,BF16,I8").split(",")).map(DType::valueOf).toList();
        int[] batches = Arrays.stream((args.length > 3 ? args[3] : "1,8,64,256").split(",")).mapToInt(Integer::parseInt).toArray();
        MachineProbe.requireNative();
        System.out.println("native code path: " + MachineProbe.nativeLevel() + "; one thread; thread CPU time; medians of "
                + repeats + " repeats");
        System.out.println();
        System.out.println("| backend | weights | batch | GFLOP/s | % of AVX2 peak | % of AVX-512 peak |");
        System.out.println("|---|---|---|---|---|---|");
        try (Arena arena = Arena.ofShared();
             NativeKernelBackend nat = new NativeKernelBackend(1);
             VectorKernelBackend vec = new VectorKernelBackend(1)) {
            for (DType type : types) {
                Tensor[] w = GemmBench.weights(arena, type);
                for (KernelBackend b : List.of(nat, vec)) {
                    if (!backends.contains(b.name())) continue;
                    if (!b.supports(type == DType.I8 ? KernelBackend.Op.MATMUL_INT8 : KernelBackend.Op.MATMUL, type)) continue;
                    for (int batch : batches) run(b, type, w, batch, repeats);
                }
            }
        }
    }

    private static void run(KernelBackend b, DType type, Tensor[] weights, int batch, int repeats) {
        int k = GemmBench.K;
        int m = GemmBench.M;
        float[] x = new float[batch * k];
        Arrays.fill(x, 0.25f);
        byte[] q = new byte[batch * k];
        Arrays.fill(q, (byte) 3);
        float[] colScale = new float[m];
        Arrays.fill(colScale, 0.02f);
        float[] out = new float[batch * m];
        double flopPerOp = 2.0 * batch * m * k;
        int ops = (int) Math.max(weights.length, Math.min(64, 4e10 / flopPerOp / 10));
        List<Double> gemm = new ArrayList<>();
        List<Double> r2 = new ArrayList<>();
        List<Double> r512 = new ArrayList<>();
        for (int r = 0; r < repeats + 1; r++) {
            long t0 = THREADS.getCurrentThreadCpuTime();
            MachineProbe.fmaLoop(PEAK_ITERATIONS);
            long t1 = THREADS.getCurrentThreadCpuTime();
            MachineProbe.fmaLoop512(PEAK_ITERATIONS);
            long t2 = THREADS.getCurrentThreadCpuTime();
            for (int i = 0; i < ops; i++) {
                Tensor w = weights[i % weights.length];
                if (type == DType.I8) b.matmulInt8(q, 0, batch, null, w, null, colScale, out, 0);
                else b.matmul(x, 0, batch, w, out, 0);
            }
            long t3 = THREADS.getCurrentThreadCpuTime();
            if (r == 0) continue; // warm-up
            double peak2 = PEAK_ITERATIONS * (double) MachineProbe.FLOPS_PER_ITERATION / (t1 - t0);
            double peak512 = PEAK_ITERATIONS * (double) MachineProbe.FLOPS_PER_ITERATION_512 / (t2 - t1);
            double g = flopPerOp * ops / (t3 - t2);
            gemm.add(g);
            r2.add(g / peak2);
            r512.add(g / peak512);
        }
        System.out.printf("| %s | %s | %d | %.1f | %.0f%% | %.0f%% |%n", b.name(), type, batch, Report.median(gemm),
                100 * Report.median(r2), 100 * Report.median(r512));
    }
}
