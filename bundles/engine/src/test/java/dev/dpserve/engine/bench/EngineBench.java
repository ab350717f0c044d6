// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.engine.bench;

import dev.dpserve.api.engine.EngineRequest;
import dev.dpserve.api.engine.EngineStats;
import dev.dpserve.api.engine.RequestOutput;
import dev.dpserve.api.engine.SamplingParams;
import dev.dpserve.api.model.CausalLm;
import dev.dpserve.api.model.ModelSource;
import dev.dpserve.api.scheduler.SchedulingPolicy;
import dev.dpserve.engine.EngineCore;
import dev.dpserve.model.ConfigJson;
import dev.dpserve.model.deepseek.DeepseekV3Architecture;
import dev.dpserve.model.generate.CheckpointGenerator;
import dev.dpserve.model.llama.LlamaArchitecture;
import dev.dpserve.scheduler.ascend.PrefillFirstPolicy;
import dev.dpserve.scheduler.v1.ContinuousBatchingPolicy;
import dev.dpserve.tensor.VectorKernelBackend;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * End-to-end engine benchmarks: the real {@link EngineCore} step loop and scheduling policies over a
 * real model (Llama or DeepSeek-V3, chosen from the checkpoint's config.json) on the Vector API
 * backend. No HTTP, no tokenizer: requests are token ids. Not a unit test; it lives in the test
 * sources because main code may not depend on the tensor, model or scheduler bundles.
 *
 * <ul>
 *   <li>{@code throughput}: offline throughput of {@code --requests} requests of {@code --input}
 *       prompt / {@code --output} generated tokens (greedy, ignore_eos), "batched" (all submitted at
 *       once) and "serial" (the next submitted when the previous finishes), for each policy
 *       ("v1" = ContinuousBatchingPolicy, "ascend" = PrefillFirstPolicy). The serial mode runs at
 *       the same rate whatever the request count, so {@code --serial-requests} may run fewer.</li>
 *   <li>{@code prefix}: time to first token of requests sharing a {@code --prefix}-token prefix plus a
 *       distinct {@code --suffix}-token tail, prefix caching on vs off. One warm-up request fills the
 *       cache, then {@code --ttft-requests} requests run one at a time (max_tokens 1); medians.</li>
 * </ul>
 * Usage:
 * <pre>{@code
 * java --add-modules jdk.incubator.vector -cp <test classpath> dev.dpserve.engine.bench.EngineBench
 *     [--dir DIR] [--sections throughput,prefix] [--policies v1,ascend] [--modes batched,serial]
 *     [--requests 64] [--serial-requests N] [--input 128] [--output 128] [--repeats 1]
 *     [--prefix 512] [--suffix 16] [--ttft-requests 7] [--ttft-policy v1]
 *     [--max-num-seqs 256] [--max-num-batched-tokens 2048] [--block-size 16] [--threads 2]
 * }</pre>
 * The ~134M-parameter Llama checkpoint of {@code DecodeBench} (hidden 768, 12 layers, 12 heads,
 * intermediate 2048, vocab 32000, F32) is generated into DIR (default:
 * java.io.tmpdir/dpserve-decodebench-100m, shared with DecodeBench) when absent.
 */
public final class EngineBench {

    private static final long TIMEOUT_SECONDS = 3600;

    public static void main(String[] args) throws Exception {
        Path dir = Path.of(System.getProperty("java.io.tmpdir"), "dpserve-decodebench-100m");
        List<String> sections = List.of("throughput", "prefix");
        List<String> policies = List.of("v1", "ascend");
        List<String> modes = List.of("batched", "serial");
        int requests = 64;
        int serialRequests = -1;
        int input = 128;
        int output = 128;
        int repeats = 1;
        int prefix = 512;
        int suffix = 16;
        int ttftRequests = 7;
        String ttftPolicy = "v1";
        int maxNumSeqs = 256;
        int maxBatched = 2048;
        int blockSize = 16;
        int threads = Runtime.getRuntime().availableProcessors();
        for (int i = 0; i + 1 < args.length; i += 2) {
            String v = args[i + 1];
            switch (args[i]) {
                case "--dir" -> dir = Path.of(v);
                case "--sections" -> sections = List.of(v.split(","));
                case "--policies" -> policies = List.of(v.split(","));
                case "--modes" -> modes = List.of(v.split(","));
                case "--requests" -> requests = Integer.parseInt(v);
                case "--serial-requests" -> serialRequests = Integer.parseInt(v);
                case "--input" -> input = Integer.parseInt(v);
                case "--output" -> output = Integer.parseInt(v);
                case "--repeats" -> repeats = Integer.parseInt(v);
                case "--prefix" -> prefix = Integer.parseInt(v);
                case "--suffix" -> suffix = Integer.parseInt(v);
                case "--ttft-requests" -> ttftRequests = Integer.parseInt(v);
                case "--ttft-policy" -> ttftPolicy = v;
                case "--max-num-seqs" -> maxNumSeqs = Integer.parseInt(v);
                case "--max-num-batched-tokens" -> maxBatched = Integer.parseInt(v);
                case "--block-size" -> blockSize = Integer.parseInt(v);
                case "--threads" -> threads = Integer.parseInt(v);
                default -> throw new IllegalArgumentException("unknown flag " + args[i]);
            }
        }
        if (args.length % 2 != 0) throw new IllegalArgumentException("flag without a value: " + args[args.length - 1]);
        if (serialRequests < 0) serialRequests = requests;
        if (!Files.exists(dir.resolve("config.json"))) {
            long t0 = System.nanoTime();
            CheckpointGenerator.generate(CheckpointGenerator.Options.parse("--arch", "llama", "--out", dir.toString(),
                    "--hidden", "768", "--layers", "12", "--heads", "12", "--kv-heads", "12", "--intermediate", "2048",
                    "--vocab", "32000", "--max-position", "2048", "--dtype", "f32"));
            System.out.printf("generated %s in %.1f s%n", dir, (System.nanoTime() - t0) / 1e9);
        }
        Map<String, Object> config = ConfigJson.read(dir);
        boolean deepseek = String.valueOf(config.get("model_type")).startsWith("deepseek");
        try (VectorKernelBackend kernels = new VectorKernelBackend(threads);
             CausalLm model = (deepseek ? new DeepseekV3Architecture(kernels) : new LlamaArchitecture(kernels))
                     .load(new ModelSource(dir, config, "auto"))) {
            int maxModelLen = Math.min(model.info().maxPositionEmbeddings(), Math.max(input + output, prefix + suffix + 1));
            maxModelLen = Math.max(maxModelLen, input + output);
            System.out.printf("model %s: %.1fM parameters, %.0f MB %s weights, %d threads; limits: max_model_len %d, "
                            + "max_num_seqs %d, max_num_batched_tokens %d, block size %d%n",
                    model.info().architecture(), model.info().parameterCount() / 1e6, model.info().weightBytes() / 1e6,
                    model.info().weightDtype(), threads, maxModelLen, maxNumSeqs, maxBatched, blockSize);
            EngineCore.Limits limits = new EngineCore.Limits(maxModelLen, maxNumSeqs, maxBatched);

            if (sections.contains("throughput")) {
                int blocksPerRequest = (input + output + blockSize - 1) / blockSize;
                // room for every request at once: the batched run never preempts
                EngineCore.KvConfig kv = new EngineCore.KvConfig(1 + Math.max(requests, serialRequests) * blocksPerRequest,
                        blockSize, true);
                System.out.printf("%nthroughput: %d requests (serial: %d) of %d input / %d output tokens, greedy, ignore_eos; "
                        + "KV cache %d blocks, prefix caching on; %d repeat(s)%n", requests, serialRequests, input, output,
                        kv.numBlocks() - 1, repeats);
                warmUp(model, limits, kv, blockSize);
                for (String policy : policies) {
                    for (int r = 0; r < repeats; r++) {
                        for (String mode : modes) {
                            boolean batched = mode.equals("batched");
                            throughput(model, limits, kv, policy, batched, batched ? requests : serialRequests, input, output);
                        }
                    }
                }
            }

            if (sections.contains("prefix")) {
                int blocks = 1 + 2 * ((prefix + suffix + 1 + blockSize - 1) / blockSize) + 4;
                System.out.printf("%nprefix caching: TTFT of %d-token shared prefix + %d-token distinct suffix, max_tokens 1, "
                        + "one at a time, policy %s; median of %d after 1 warm-up request%n", prefix, suffix, ttftPolicy,
                        ttftRequests);
                double[] median = new double[2];
                for (int round = 0; round < 2; round++) { // off, on, off, on: the second round is reported
                    for (boolean caching : new boolean[] {false, true}) {
                        double m = ttft(model, limits, new EngineCore.KvConfig(blocks, blockSize, caching), ttftPolicy,
                                prefix, suffix, ttftRequests, round == 1);
                        if (round == 1) median[caching ? 1 : 0] = m;
                    }
                }
                System.out.printf("  TTFT ratio off/on: %.1fx%n", median[0] / median[1]);
            }
        }
    }

    static Supplier<EngineCore.ActivePolicy> policy(String name) {
        SchedulingPolicy p = switch (name) {
            case "v1" -> new ContinuousBatchingPolicy();
            case "ascend" -> new PrefillFirstPolicy();
            default -> throw new IllegalArgumentException("unknown policy " + name + " (v1, ascend)");
        };
        EngineCore.ActivePolicy active = new EngineCore.ActivePolicy(name, p);
        return () -> active;
    }

    private static SamplingParams greedy(int maxTokens) {
        return new SamplingParams(0, 1, 0, 0, null, maxTokens, 0, Set.of(), true, -1);
    }

    /** Distinct pseudo-random prompts (no shared prefix blocks between them). */
    private static int[] randomPrompt(long seed, int length, int vocab) {
        SplittableRandom random = new SplittableRandom(seed);
        int[] p = new int[length];
        for (int i = 0; i < length; i++) p[i] = 2 + random.nextInt(Math.min(vocab, 30000) - 2);
        return p;
    }

    /** Collects one request's outputs; records the wall time of the first token. */
    private static final class Tracker {
        final long submitted = System.nanoTime();
        volatile long firstToken;
        volatile int tokens;
        final CompletableFuture<RequestOutput> done = new CompletableFuture<>();

        void accept(RequestOutput o) {
            if (o.newTokenIds().length > 0 && firstToken == 0) firstToken = System.nanoTime();
            tokens += o.newTokenIds().length;
            if (o.finished()) {
                if (o.error() != null) done.completeExceptionally(new IllegalStateException(o.requestId() + ": " + o.error()));
                else done.complete(o);
            }
        }

        RequestOutput await() throws Exception {
            return done.get(TIMEOUT_SECONDS, TimeUnit.SECONDS);
        }
    }

    private static Tracker submit(EngineCore core, String id, int[] prompt, SamplingParams sampling) {
        Tracker t = new Tracker();
        core.submit(new EngineRequest(id, prompt, sampling, System.nanoTime()), t::accept);
        return t;
    }

    /** A few small batched and single requests so the JIT has compiled the forward pass and the step loop. */
    private static void warmUp(CausalLm model, EngineCore.Limits limits, EngineCore.KvConfig kv, int blockSize) throws Exception {
        long t0 = System.nanoTime();
        try (EngineCore core = new EngineCore(model, limits, kv, policy("v1"), Set.of(), 0, "warmup")) {
            List<Tracker> ts = new ArrayList<>();
            for (int i = 0; i < 8; i++) ts.add(submit(core, "w" + i, randomPrompt(-1 - i, 64, model.info().vocabSize()), greedy(16)));
            for (Tracker t : ts) t.await();
            submit(core, "w-single", randomPrompt(-100, 64, model.info().vocabSize()), greedy(16)).await();
        }
        System.out.printf("  warm-up: %.1f s%n", (System.nanoTime() - t0) / 1e9);
    }

    private static void throughput(CausalLm model, EngineCore.Limits limits, EngineCore.KvConfig kv, String policy,
                                   boolean batched, int n, int input, int output) throws Exception {
        int vocab = model.info().vocabSize();
        List<int[]> prompts = new ArrayList<>();
        for (int i = 0; i < n; i++) prompts.add(randomPrompt(i, input, vocab));
        double[] perRequest = new double[n];
        double[] ttft = new double[n];
        long t0;
        long t1;
        EngineStats stats;
        try (EngineCore core = new EngineCore(model, limits, kv, policy(policy), Set.of(), 0, policy)) {
            List<Tracker> ts = new ArrayList<>();
            t0 = System.nanoTime();
            for (int i = 0; i < n; i++) {
                Tracker t = submit(core, "r" + i, prompts.get(i), greedy(output));
                ts.add(t);
                if (!batched) {
                    t.await();
                    perRequest[i] = (System.nanoTime() - t.submitted) / 1e9;
                }
            }
            for (int i = 0; i < n; i++) {
                Tracker t = ts.get(i);
                t.await();
                if (t.tokens != output) throw new IllegalStateException("r" + i + " generated " + t.tokens + " tokens, not " + output);
                ttft[i] = (t.firstToken - t.submitted) / 1e9;
            }
            t1 = System.nanoTime();
            stats = settledStats(core, n);
        }
        double seconds = (t1 - t0) / 1e9;
        Arrays.sort(ttft);
        String extra = "";
        if (!batched) {
            double[] sorted = perRequest.clone();
            Arrays.sort(sorted);
            extra = String.format("; per request median %.2f s (min %.2f, max %.2f) = %.1f total tokens/s",
                    sorted[n / 2], sorted[0], sorted[n - 1], (input + output) / sorted[n / 2]);
        }
        System.out.printf("  %-6s %-7s %3d requests in %7.1f s: %7.1f total tokens/s, %6.1f output tokens/s, %.2f requests/s; "
                        + "TTFT median %.2f s (max %.2f); %d steps, %d preemptions%s%n",
                policy, batched ? "batched" : "serial", n, seconds, (double) n * (input + output) / seconds,
                (double) n * output / seconds, n / seconds, ttft[n / 2], ttft[n - 1], stats.steps(), stats.preemptions(), extra);
    }

    /** The stats once the loop has published the step that finished the last of {@code finished} requests. */
    private static EngineStats settledStats(EngineCore core, long finished) throws InterruptedException {
        long deadline = System.nanoTime() + 5_000_000_000L;
        EngineStats s = core.stats();
        while (s.finishedRequests() < finished && System.nanoTime() < deadline) {
            Thread.sleep(1);
            s = core.stats();
        }
        return s;
    }

    /** Median TTFT in seconds of {@code n} one-at-a-time requests sharing a prefix, after one warm-up request. */
    private static double ttft(CausalLm model, EngineCore.Limits limits, EngineCore.KvConfig kv, String policy, int prefix,
                               int suffix, int n, boolean print) throws Exception {
        int vocab = model.info().vocabSize();
        int[] shared = randomPrompt(1_000_003, prefix, vocab);
        double[] times = new double[n];
        EngineStats stats;
        try (EngineCore core = new EngineCore(model, limits, kv, policy(policy), Set.of(), 0, "ttft")) {
            for (int i = -1; i < n; i++) {
                int[] prompt = Arrays.copyOf(shared, prefix + suffix);
                int[] tail = randomPrompt(2_000_000 + i, suffix, vocab);
                System.arraycopy(tail, 0, prompt, prefix, suffix);
                Tracker t = submit(core, "p" + i, prompt, greedy(1));
                t.await();
                if (i >= 0) times[i] = (t.firstToken - t.submitted) / 1e9;
            }
            stats = settledStats(core, n + 1);
        }
        double[] sorted = times.clone();
        Arrays.sort(sorted);
        if (print) {
            System.out.printf("  prefix caching %-3s: TTFT median %6.1f ms (min %.1f, max %.1f over %d); prefix cache %d/%d tokens hit%n",
                    kv.prefixCaching() ? "on" : "off", sorted[n / 2] * 1e3, sorted[0] * 1e3, sorted[n - 1] * 1e3, n,
                    stats.prefixCacheHits(), stats.prefixCacheQueries());
        }
        return sorted[n / 2];
    }
}
