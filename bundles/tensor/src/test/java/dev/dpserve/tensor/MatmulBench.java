// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tensor;

import dev.dpserve.api.tensor.DType;
import dev.dpserve.api.tensor.KernelBackend;
import dev.dpserve.api.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * Matmul throughput of the backends on a decode-sized weight (not a unit test). Usage:
 * {@code java --add-modules jdk.incubator.vector -cp ... dev.dpserve.tensor.MatmulBench [M] [K]}.
 * Prints GB/s of weight traffic and GFLOP/s (GOP/s for the int8 GEMM) per batch size.
 */
public final class MatmulBench {

    public static void main(String[] args) {
        int m = args.length > 0 ? Integer.parseInt(args[0]) : 8192;
        int k = args.length > 1 ? Integer.parseInt(args[1]) : 4096;
        try (Arena arena = Arena.ofShared();
             VectorKernelBackend vector = new VectorKernelBackend(Runtime.getRuntime().availableProcessors())) {
            for (DType type : new DType[] {DType.F32, DType.BF16, DType.F16}) {
                MemorySegment data = arena.allocate((long) m * k * type.byteSize());
                for (long i = 0; i < data.byteSize(); i += 2) data.set(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, i, (short) 0x3C00);
                Tensor w = new Tensor("w", type, new long[] {m, k}, data);
                for (int n : new int[] {1, 8, 64}) {
                    float[] x = new float[n * k];
                    Arrays.fill(x, 0.5f);
                    float[] out = new float[n * m];
                    double best = run(vector, x, n, w, out);
                    System.out.printf("vector %-4s n=%-3d %8.2f ms  %6.1f GB/s  %6.1f GFLOP/s%n", type, n, best * 1e3,
                            data.byteSize() / best / 1e9, 2.0 * n * m * k / best / 1e9);
                }
            }
            // int8 weights and activations, int32 accumulation (W8A8), same shape
            MemorySegment i8 = arena.allocate((long) m * k);
            for (long i = 0; i < i8.byteSize(); i++) i8.set(java.lang.foreign.ValueLayout.JAVA_BYTE, i, (byte) (i % 251 - 125));
            Tensor w8 = new Tensor("w8", DType.I8, new long[] {m, k}, i8);
            float[] colScale = new float[m];
            Arrays.fill(colScale, 0.01f);
            for (int n : new int[] {1, 8, 64}) {
                byte[] q = new byte[n * k];
                Arrays.fill(q, (byte) 3);
                float[] out = new float[n * m];
                double best = Double.MAX_VALUE;
                for (int r = 0; r < 30; r++) {
                    long t0 = System.nanoTime();
                    vector.matmulInt8(q, 0, n, null, w8, null, colScale, out, 0);
                    best = Math.min(best, (System.nanoTime() - t0) / 1e9);
                }
                System.out.printf("vector I8   n=%-3d %8.2f ms  %6.1f GB/s  %6.1f GOP/s%n", n, best * 1e3,
                        i8.byteSize() / best / 1e9, 2.0 * n * m * k / best / 1e9);
            }
            if (m * (long) k <= 1 << 22) {
                Tensor w = new Tensor("w", DType.F32, new long[] {m, k}, arena.allocate((long) m * k * 4));
                double best = run(new JavaKernelBackend(), new float[k], 1, w, new float[m]);
                System.out.printf("java   F32  n=1   %8.2f ms%n", best * 1e3);
            }
        }
    }

    private static double run(KernelBackend b, float[] x, int n, Tensor w, float[] out) {
        double best = Double.MAX_VALUE;
        for (int r = 0; r < 30; r++) {
            long t0 = System.nanoTime();
            b.matmul(x, 0, n, w, out, 0);
            best = Math.min(best, (System.nanoTime() - t0) / 1e9);
        }
        return best;
    }
}
