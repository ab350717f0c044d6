// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tensor;

import dev.dpserve.api.tensor.KernelBackend;
import dev.dpserve.api.tensor.PagedAttention;
import java.util.SplittableRandom;
import java.util.function.Consumer;

/**
 * The non-GEMM ops at model shapes, reference loops vs the Vector API backend in one process (not
 * a unit test): the reference loops are what the models ran before they called the backends, so
 * the ratio within one run is the kernels' share of the model change. Best of N calls each. Usage:
 * {@code java --add-modules jdk.incubator.vector -cp ... dev.dpserve.tensor.OpsBench}.
 */
public final class OpsBench {

    public static void main(String[] args) {
        int threads = Runtime.getRuntime().availableProcessors();
        SplittableRandom rnd = new SplittableRandom(1);
        try (VectorKernelBackend vector = new VectorKernelBackend(threads)) {
            KernelBackend java = new JavaKernelBackend();
            // Llama 768/12 heads of 64 (the decode benchmark's model): decode at context 512, a 512-token prefill
            PagedAttention decode = dense(rnd, 12, 12, 64, 16, 511, 1);
            compare("attention llama decode ctx 512", java, vector, b -> b.attention(decode));
            PagedAttention prefill = dense(rnd, 12, 12, 64, 16, 0, 512);
            compare("attention llama prefill 512", java, vector, b -> b.attention(prefill));
            // DeepSeek-shaped MLA decode: 16 heads over [latent 256 ‖ rope 32], context 64 and 1024
            PagedAttention mla64 = mla(rnd, 16, 256, 32, 16, 63);
            compare("attention MLA decode ctx 64", java, vector, b -> b.attention(mla64));
            PagedAttention mla1024 = mla(rnd, 16, 256, 32, 16, 1023);
            compare("attention MLA decode ctx 1024", java, vector, b -> b.attention(mla1024));
            float[] x = random(rnd, 8 * 768);
            float[] w = random(rnd, 768);
            float[] out = new float[8 * 768];
            compare("rmsNorm 8 x 768", java, vector, b -> b.rmsNorm(x, 0, 768, 8, w, 1e-6f, out, 0, 768));
            float[] gate = random(rnd, 8 * 2048);
            float[] up = random(rnd, 8 * 2048);
            compare("siluMul 8 x 2048", java, vector, b -> b.siluMul(gate.clone(), 0, up, 0, 8 * 2048));
            float[] s = random(rnd, 12 * 1024);
            compare("softmax 12 x 1024", java, vector, b -> b.softmax(s.clone(), 0, 12, 1024, 1024));
            float[] q = random(rnd, 8 * 768);
            float[] cos = random(rnd, 8 * 32);
            float[] sin = random(rnd, 8 * 32);
            compare("rope neox 8 x 12 heads x 64", java, vector, b -> b.rope(q, 0, 8, 768, 12, 64, 64, cos, sin, false));
            try (VectorKernelBackend one = new VectorKernelBackend(1)) {
                compare("attention llama decode, 1 thread", java, one, b -> b.attention(decode));
                compare("attention MLA ctx 1024, 1 thread", java, one, b -> b.attention(mla1024));
            }
        }
    }

    private static void compare(String what, KernelBackend java, KernelBackend vector, Consumer<KernelBackend> call) {
        double tj = best(java, call);
        double tv = best(vector, call);
        System.out.printf("%-32s java %9.1f µs   vector %9.1f µs   %5.1fx%n", what, tj * 1e6, tv * 1e6, tj / tv);
    }

    private static double best(KernelBackend b, Consumer<KernelBackend> call) {
        double best = Double.MAX_VALUE;
        long until = System.nanoTime() + 2_000_000_000L;
        for (int r = 0; r < 5 || r < 20_000 && System.nanoTime() < until; r++) {
            long t0 = System.nanoTime();
            call.accept(b);
            best = Math.min(best, (System.nanoTime() - t0) / 1e9);
        }
        return best;
    }

    private static PagedAttention dense(SplittableRandom rnd, int heads, int kvHeads, int dim, int blockSize, int start, int n) {
        int ctx = start + n;
        int slot = 2 * kvHeads * dim;
        int blocks = (ctx + blockSize - 1) / blockSize;
        float[][] data = new float[blocks][];
        int[] table = new int[blocks];
        for (int b = 0; b < blocks; b++) {
            data[b] = random(rnd, blockSize * slot);
            table[b] = b;
        }
        return new PagedAttention(random(rnd, n * heads * dim), 0, heads * dim, dim, n, heads, kvHeads, dim, dim,
                data, table, blockSize, 0, slot, 0, dim, kvHeads * dim, dim, start, 0, (float) (1 / Math.sqrt(dim)),
                new float[n * heads * dim], 0, heads * dim, dim);
    }

    private static PagedAttention mla(SplittableRandom rnd, int heads, int lora, int rope, int blockSize, int start) {
        int ctx = start + 1;
        int cd = lora + rope;
        int blocks = (ctx + blockSize - 1) / blockSize;
        float[][] data = new float[blocks][];
        int[] table = new int[blocks];
        for (int b = 0; b < blocks; b++) {
            data[b] = random(rnd, blockSize * cd);
            table[b] = b;
        }
        return new PagedAttention(random(rnd, heads * cd), 0, heads * cd, cd, 1, heads, 1, cd, lora,
                data, table, blockSize, 0, cd, 0, 0, 0, 0, start, 0, 0.1f,
                new float[heads * lora], 0, heads * lora, lora);
    }

    private static float[] random(SplittableRandom rnd, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) rnd.nextDouble(-1, 1);
        return a;
    }
}
