// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model.bench;

import dev.dpserve.api.model.CausalLm;
import dev.dpserve.api.model.CausalLm.BatchEntry;
import dev.dpserve.api.model.ModelSource;
import dev.dpserve.model.ConfigJson;
import dev.dpserve.model.PagedSequences;
import dev.dpserve.model.generate.CheckpointGenerator;
import dev.dpserve.model.deepseek.DeepseekV3Architecture;
import dev.dpserve.tensor.VectorKernelBackend;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Prefill and decode throughput of a ~240M-parameter DeepSeek-V3-shaped model (hidden 1024, 8
 * layers with the first dense, 16 heads, q_lora 384, kv_lora 256, nope 64 / rope 32 / v 64, 16
 * routed experts of 384 in 4 groups with 2 kept and 4 per token, 1 shared, vocab 32000) on the
 * Vector API backend: one prompt prefilled at once, then greedy decode at batch 1 and 16, for each
 * requested weight dtype (F32 as stored, BF16 converted at load). Not a unit test; it lives in the
 * test sources because main code may not depend on the tensor bundle. Usage:
 * <pre>{@code
 * java --add-modules jdk.incubator.vector -cp <test classpath> dev.dpserve.model.bench.DeepseekBench
 *     [--dir DIR] [--prompt 256] [--context 64] [--tokens 16] [--repeats 3] [--dtypes auto,bfloat16]
 * }</pre>
 * The checkpoint is generated into DIR (default: java.io.tmpdir/dpserve-deepseekbench-240m) when absent.
 */
public final class DeepseekBench {

    public static void main(String[] args) throws Exception {
        Path dir = Path.of(System.getProperty("java.io.tmpdir"), "dpserve-deepseekbench-240m");
        int prompt = 256;
        int context = 64;
        int tokens = 16;
        int repeats = 3;
        String[] dtypes = {"auto", "bfloat16"};
        for (int i = 0; i + 1 < args.length; i += 2) {
            switch (args[i]) {
                case "--dir" -> dir = Path.of(args[i + 1]);
                case "--prompt" -> prompt = Integer.parseInt(args[i + 1]);
                case "--context" -> context = Integer.parseInt(args[i + 1]);
                case "--tokens" -> tokens = Integer.parseInt(args[i + 1]);
                case "--repeats" -> repeats = Integer.parseInt(args[i + 1]);
                case "--dtypes" -> dtypes = args[i + 1].split(",");
                default -> throw new IllegalArgumentException("unknown flag " + args[i]);
            }
        }
        if (!Files.exists(dir.resolve("config.json"))) {
            long t0 = System.nanoTime();
            CheckpointGenerator.generate(CheckpointGenerator.Options.parse("--arch", "deepseek_v3", "--out", dir.toString(),
                    "--hidden", "1024", "--layers", "8", "--heads", "16", "--intermediate", "2816", "--vocab", "32000",
                    "--max-position", "4096", "--q-lora-rank", "384", "--kv-lora-rank", "256", "--qk-nope-dim", "64",
                    "--qk-rope-dim", "32", "--v-head-dim", "64", "--moe-intermediate", "384", "--experts", "16",
                    "--groups", "4", "--topk-group", "2", "--experts-per-token", "4", "--shared-experts", "1",
                    "--first-dense", "1", "--dtype", "f32"));
            System.out.printf("generated %s in %.1f s%n", dir, (System.nanoTime() - t0) / 1e9);
        }
        int threads = Runtime.getRuntime().availableProcessors();
        for (String dtype : dtypes) {
            try (VectorKernelBackend kernels = new VectorKernelBackend(threads);
                 CausalLm model = new DeepseekV3Architecture(kernels).load(new ModelSource(dir, ConfigJson.read(dir), dtype))) {
                System.out.printf("model %s: %.1fM parameters, %.0f MB %s weights, %d threads%n", model.info().architecture(),
                        model.info().parameterCount() / 1e6, model.info().weightBytes() / 1e6, model.info().weightDtype(), threads);
                prefill(model, prompt); // warm-up (JIT)
                double[] rates = new double[repeats];
                for (int r = 0; r < repeats; r++) rates[r] = prefill(model, prompt);
                report("prefill " + prompt + " tokens", rates, "tokens/s");
                for (int batch : new int[] {1, 16}) {
                    decode(model, batch, context, tokens); // warm-up
                    for (int r = 0; r < repeats; r++) rates[r] = decode(model, batch, context, tokens);
                    report("decode batch " + batch + " (context " + context + ")", rates, "tokens/s");
                }
            }
        }
    }

    private static void report(String what, double[] rates, String unit) {
        double[] sorted = rates.clone();
        Arrays.sort(sorted);
        System.out.printf("  %s: median %.1f %s (min %.1f, max %.1f over %d repeats)%n",
                what, sorted[sorted.length / 2], unit, sorted[0], sorted[sorted.length - 1], sorted.length);
    }

    private static int[] prompt(int seed, int length) {
        int[] p = new int[length];
        for (int i = 0; i < length; i++) p[i] = 2 + (seed * 131 + i * 17) % 1000;
        return p;
    }

    private static final int BLOCK_SIZE = 16;

    /** A fresh paged cache for {@code sequences} sequences of up to {@code length} tokens. */
    private static PagedSequences pages(CausalLm model, int sequences, int length) {
        return new PagedSequences(model, 1 + sequences * ((length + BLOCK_SIZE - 1) / BLOCK_SIZE), BLOCK_SIZE);
    }

    /** One forward over a whole prompt; returns tokens/s. */
    private static double prefill(CausalLm model, int length) {
        BatchEntry entry = pages(model, 1, length).newSequence().entry(prompt(0, length));
        long t0 = System.nanoTime();
        model.forward(List.of(entry));
        return length / ((System.nanoTime() - t0) / 1e9);
    }

    /** Prefills {@code batch} prompts, then times {@code steps} batched greedy decode steps; returns tokens/s. */
    private static double decode(CausalLm model, int batch, int promptLength, int steps) {
        PagedSequences pages = pages(model, batch, promptLength + steps);
        List<PagedSequences.Seq> seqs = new ArrayList<>();
        List<BatchEntry> entries = new ArrayList<>();
        for (int b = 0; b < batch; b++) {
            PagedSequences.Seq seq = pages.newSequence();
            seqs.add(seq);
            entries.add(seq.entry(prompt(b, promptLength)));
        }
        float[][] logits = model.forward(entries);
        seqs.forEach(q -> q.advance(promptLength));
        long t0 = System.nanoTime();
        for (int s = 0; s < steps; s++) {
            entries.clear();
            for (int b = 0; b < batch; b++) entries.add(seqs.get(b).entry(new int[] {argmax(logits[b])}));
            logits = model.forward(entries);
            seqs.forEach(q -> q.advance(1));
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        return batch * steps / seconds;
    }

    private static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
        return best;
    }
}
