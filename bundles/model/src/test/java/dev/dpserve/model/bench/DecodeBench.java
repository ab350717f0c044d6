// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model.bench;

import dev.dpserve.api.model.CausalLm;
import dev.dpserve.api.model.CausalLm.BatchEntry;
import dev.dpserve.api.model.ModelSource;
import dev.dpserve.model.ConfigJson;
import dev.dpserve.model.PagedSequences;
import dev.dpserve.model.generate.CheckpointGenerator;
import dev.dpserve.model.llama.LlamaArchitecture;
import dev.dpserve.tensor.VectorKernelBackend;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Decode throughput of a ~134M-parameter F32 Llama (hidden 768, 12 layers, 12 heads, intermediate
 * 2048, vocab 32000) on the Vector API backend, at batch 1 and batch 8. Not a unit test; it lives in
 * the test sources because main code may not depend on the tensor bundle. Usage:
 * <pre>{@code
 * java --add-modules jdk.incubator.vector -cp <test classpath> dev.dpserve.model.bench.DecodeBench
 *     [--dir DIR] [--tokens 32] [--repeats 5] [--prompt 16] [--dtype auto|bfloat16|float16]
 * }</pre>
 * The checkpoint is generated into DIR (default: java.io.tmpdir/dpserve-decodebench-100m) when absent.
 */
public final class DecodeBench {

    public static void main(String[] args) throws Exception {
        Path dir = Path.of(System.getProperty("java.io.tmpdir"), "dpserve-decodebench-100m");
        int tokens = 32;
        int repeats = 5;
        int prompt = 16;
        String dtype = "auto";
        for (int i = 0; i + 1 < args.length; i += 2) {
            switch (args[i]) {
                case "--dir" -> dir = Path.of(args[i + 1]);
                case "--tokens" -> tokens = Integer.parseInt(args[i + 1]);
                case "--repeats" -> repeats = Integer.parseInt(args[i + 1]);
                case "--prompt" -> prompt = Integer.parseInt(args[i + 1]);
                case "--dtype" -> dtype = args[i + 1];
                default -> throw new IllegalArgumentException("unknown flag " + args[i]);
            }
        }
        if (!Files.exists(dir.resolve("config.json"))) {
            long t0 = System.nanoTime();
            CheckpointGenerator.generate(CheckpointGenerator.Options.parse("--arch", "llama", "--out", dir.toString(),
                    "--hidden", "768", "--layers", "12", "--heads", "12", "--kv-heads", "12", "--intermediate", "2048",
                    "--vocab", "32000", "--max-position", "2048", "--dtype", "f32"));
            System.out.printf("generated %s in %.1f s%n", dir, (System.nanoTime() - t0) / 1e9);
        }
        int threads = Runtime.getRuntime().availableProcessors();
        try (VectorKernelBackend kernels = new VectorKernelBackend(threads);
             CausalLm model = new LlamaArchitecture(kernels).load(new ModelSource(dir, ConfigJson.read(dir), dtype))) {
            System.out.printf("model %s: %.1fM parameters, %.0f MB %s weights, %d threads%n", model.info().architecture(),
                    model.info().parameterCount() / 1e6, model.info().weightBytes() / 1e6, model.info().weightDtype(), threads);
            for (int batch : new int[] {1, 8}) {
                run(model, batch, prompt, tokens); // warm-up (JIT)
                double[] rates = new double[repeats];
                for (int r = 0; r < repeats; r++) rates[r] = run(model, batch, prompt, tokens);
                Arrays.sort(rates);
                System.out.printf("batch %d: median %.1f tokens/s (%.1f steps/s; min %.1f, max %.1f tokens/s over %d repeats of %d steps)%n",
                        batch, rates[repeats / 2], rates[repeats / 2] / batch, rates[0], rates[repeats - 1], repeats, tokens);
            }
        }
    }

    /** Prefills {@code batch} prompts, then times {@code steps} batched greedy decode steps; returns tokens/s. */
    private static double run(CausalLm model, int batch, int promptLength, int steps) {
        PagedSequences pages = new PagedSequences(model, 1 + batch * ((promptLength + steps + 15) / 16), 16);
        List<PagedSequences.Seq> seqs = new ArrayList<>();
        List<BatchEntry> entries = new ArrayList<>();
        for (int b = 0; b < batch; b++) {
            PagedSequences.Seq seq = pages.newSequence();
            seqs.add(seq);
            int[] prompt = new int[promptLength];
            for (int i = 0; i < promptLength; i++) prompt[i] = 2 + (b * 131 + i * 17) % 1000;
            entries.add(seq.entry(prompt));
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
