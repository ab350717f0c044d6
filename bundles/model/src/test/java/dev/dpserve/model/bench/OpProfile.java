// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model.bench;

import dev.dpserve.api.model.CausalLm;
import dev.dpserve.api.model.ModelSource;
import dev.dpserve.api.tensor.KernelBackend;
import dev.dpserve.model.ConfigJson;
import dev.dpserve.model.PagedSequences;
import dev.dpserve.model.deepseek.DeepseekV3Architecture;
import dev.dpserve.model.llama.LlamaArchitecture;
import dev.dpserve.tensor.NativeKernelBackend;
import dev.dpserve.tensor.VectorKernelBackend;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Where a forward step's time goes, per kernel op: the model runs on one backend wrapped in a proxy
 * that adds up the wall time of each call by method name; the rest of the step (model code between
 * the kernels) is reported as "other". One prefill of {@code --prompt} tokens, then {@code --steps}
 * decode steps at batch 1, after a warm-up of the same.
 * <pre>{@code
 * scripts/bench-model OpProfile --dir ~/.cache/dpserve/bench-llama-110m [--backend native|vector]
 *     [--quantization none|w8a8] [--dtype auto|bfloat16] [--prompt 512] [--steps 32]
 * }</pre>
 * The native backend needs {@code -Djava.library.path} pointing at the fragment's built library
 * (scripts/bench-model sets it).
 */
public final class OpProfile {

    /** Proxy calls that are not kernel ops. */
    private static final java.util.Set<String> NOT_OPS = java.util.Set.of("name", "score", "supports", "toString", "hashCode", "equals", "close");

    public static void main(String[] args) throws Exception {
        Path dir = null;
        String backendName = "native";
        String quantization = "none";
        String dtype = "auto";
        int prompt = 512;
        int steps = 32;
        for (int i = 0; i + 1 < args.length; i += 2) {
            switch (args[i]) {
                case "--dir" -> dir = Path.of(args[i + 1]);
                case "--backend" -> backendName = args[i + 1];
                case "--quantization" -> quantization = args[i + 1];
                case "--dtype" -> dtype = args[i + 1];
                case "--prompt" -> prompt = Integer.parseInt(args[i + 1]);
                case "--steps" -> steps = Integer.parseInt(args[i + 1]);
                default -> throw new IllegalArgumentException("unknown flag " + args[i]);
            }
        }
        if (dir == null) throw new IllegalArgumentException("--dir MODEL_DIR is required");
        int threads = Runtime.getRuntime().availableProcessors();
        List<KernelBackend> real = new ArrayList<>();
        real.add(new VectorKernelBackend(threads)); // attention and whatever native lacks
        if (backendName.equals("native")) real.add(new NativeKernelBackend(threads));
        Map<String, long[]> times = new TreeMap<>();
        KernelBackend[] timed = real.stream().map(b -> (KernelBackend) Proxy.newProxyInstance(OpProfile.class.getClassLoader(),
                new Class<?>[] {KernelBackend.class}, (proxy, m, a) -> {
                    long t0 = System.nanoTime();
                    try {
                        return m.invoke(b, a);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    } finally {
                        long dt = System.nanoTime() - t0;
                        if (!NOT_OPS.contains(m.getName())) {
                            long[] acc = times.computeIfAbsent(m.getName() + " (" + b.name() + ")", k -> new long[2]);
                            acc[0] += dt;
                            acc[1]++;
                        }
                    }
                })).toArray(KernelBackend[]::new);
        Map<String, Object> config = ConfigJson.read(dir);
        boolean deepseek = String.valueOf(config.get("model_type")).startsWith("deepseek");
        try (CausalLm model = (deepseek ? new DeepseekV3Architecture(timed) : new LlamaArchitecture(timed))
                .load(new ModelSource(dir, config, dtype, quantization))) {
            System.out.printf("%s, %s weights, backend %s, %d threads%n", dir.getFileName(), model.info().weightDtype(), backendName, threads);
            for (int round = 0; round < 2; round++) {
                PagedSequences pages = new PagedSequences(model, 2 + (prompt + steps + 15) / 16, 16);
                PagedSequences.Seq seq = pages.newSequence();
                int[] p = new int[prompt];
                for (int i = 0; i < prompt; i++) p[i] = 2 + (i * 17) % 1000;
                times.clear();
                long t0 = System.nanoTime();
                float[] logits = seq.forward(p);
                long prefill = System.nanoTime() - t0;
                if (round == 1) report("prefill " + prompt + " tokens", prefill, 1, times);
                times.clear();
                t0 = System.nanoTime();
                for (int s = 0; s < steps; s++) logits = seq.forward(new int[] {argmax(logits)});
                long decode = System.nanoTime() - t0;
                if (round == 1) report("decode batch 1, per step (" + steps + " steps)", decode, steps, times);
            }
        } finally {
            for (KernelBackend b : real) if (b instanceof AutoCloseable c) c.close();
        }
    }

    private static void report(String what, long total, int per, Map<String, long[]> times) {
        System.out.printf("%s: %.2f ms%n", what, total / 1e6 / per);
        long ops = 0;
        List<Map.Entry<String, long[]>> rows = new ArrayList<>(times.entrySet());
        rows.sort((a, b) -> Long.compare(b.getValue()[0], a.getValue()[0]));
        for (Map.Entry<String, long[]> e : rows) {
            ops += e.getValue()[0];
            System.out.printf("  %-26s %8.2f ms %5.1f%%  (%d calls)%n", e.getKey(), e.getValue()[0] / 1e6 / per,
                    100.0 * e.getValue()[0] / total, e.getValue()[1] / per);
        }
        System.out.printf("  %-26s %8.2f ms %5.1f%%%n", "other", (total - ops) / 1e6 / per, 100.0 * (total - ops) / total);
    }

    private static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
        return best;
    }
}
