// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.launcher.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.locks.LockSupport;

/**
 * One {@code dpserve bench serve} run: resolve the model and tokenizer, build the random dataset,
 * send one test request, then send every request at its arrival time on its own virtual thread
 * (at most --max-concurrency in flight) and report vLLM's metrics.
 */
final class ServeBenchmark {

    private static final ObjectMapper MAPPER = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    private static final DateTimeFormatter DATE = DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss");
    /** vLLM's AIOHTTP_TIMEOUT: 6 hours per request. */
    private static final Duration REQUEST_TIMEOUT = Duration.ofHours(6);
    private static final int ERRORS_SHOWN = 5;

    private final BenchServeOptions o;
    private final PrintStream out;
    private final PrintStream err;
    private final String base;
    private final HttpClient http;
    private final boolean chat;
    private String modelId;
    private String modelName;

    ServeBenchmark(BenchServeOptions o, PrintStream out, PrintStream err) throws BenchUsageException {
        this.o = o;
        this.out = out;
        this.err = err;
        this.base = o.baseUrl();
        this.chat = o.requestKind().equals("chat");
        try {
            URI.create(base + o.endpoint).toURL();
        } catch (IllegalArgumentException | java.net.MalformedURLException e) {
            throw new BenchUsageException("invalid server URL '" + base + o.endpoint + "': " + e.getMessage());
        }
        this.http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(10))
                .executor(Executors.newVirtualThreadPerTaskExecutor()).build();
    }

    int run() throws IOException, BenchUsageException, InterruptedException {
        String firstServedModel = probe();
        modelId = o.model != null ? o.model : firstServedModel;
        if (modelId == null) throw new BenchUsageException("--model not given and " + base + "/v1/models lists no model");
        modelName = o.servedModelName != null ? o.servedModelName : modelId;

        BenchTokenizer tok = tokenizer();
        boolean local = tok instanceof LocalTokenizer;
        List<RandomDataset.SampleRequest> requests = RandomDataset.sample(tok, o.numPrompts, o.randomInputLen, o.randomOutputLen,
                o.randomRangeRatio, o.randomPrefixLen, o.seed, local ? Runtime.getRuntime().availableProcessors() : 8, out);

        out.println("Starting initial single prompt test run...");
        RequestOutput test = send(requests.getFirst());
        if (!test.success) {
            throw new IOException("Initial test run failed - Please make sure benchmark arguments are correctly"
                    + " specified. Error: " + test.error);
        }
        out.println("Initial test run completed. Starting main benchmark run...");
        out.println("Traffic request rate: " + pyFloat(o.requestRate));
        out.println("Burstiness factor: " + o.burstiness + " (" + (o.burstiness == 1.0 ? "Poisson process" : "Gamma distribution") + ")");
        out.println("Maximum request concurrency: " + (o.maxConcurrency == null ? "None" : o.maxConcurrency));

        double[] sendTimes = ArrivalSchedule.sendTimes(o.numPrompts, o.requestRate, o.burstiness, o.rampUpStrategy,
                o.rampUpStartRps == null ? 0 : o.rampUpStartRps, o.rampUpEndRps == null ? 0 : o.rampUpEndRps,
                new SplittableRandom(o.seed).split().split());
        RequestOutput[] outputs = new RequestOutput[requests.size()];
        ProgressBar progress = new ProgressBar(err, requests.size(), !o.disableTqdm);
        Semaphore limit = o.maxConcurrency == null ? null : new Semaphore(o.maxConcurrency);
        long t0 = System.nanoTime();
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            for (int i = 0; i < requests.size(); i++) {
                sleepUntil(t0 + (long) (sendTimes[i] * 1e9));
                final int idx = i;
                pool.submit(() -> {
                    try {
                        if (limit != null) limit.acquire();
                        try {
                            outputs[idx] = send(requests.get(idx));
                        } finally {
                            if (limit != null) limit.release();
                        }
                    } catch (InterruptedException e) {
                        outputs[idx] = RequestOutput.failed(System.nanoTime(), requests.get(idx).promptLen(), "interrupted");
                    } finally {
                        progress.step();
                    }
                });
            }
        }
        double durationS = (System.nanoTime() - t0) / 1e9;
        List<RequestOutput> results = Arrays.asList(outputs);

        Map<Integer, Integer> retokenized = new HashMap<>();
        for (int i = 0; i < results.size(); i++) {
            RequestOutput r = results.get(i);
            if (r.success && r.outputTokens < 0) retokenized.put(i, tok.encode(r.generatedText.toString(), false).length);
        }
        if (!retokenized.isEmpty()) err.println("note: " + retokenized.size() + " responses had no usage; their output was re-tokenized");
        listFailures(results);

        BenchmarkMetrics metrics = BenchmarkMetrics.calculate(results, durationS, o.goodput, retokenized);
        if (metrics.completed == 0) err.println("warning: all requests failed. This is likely due to a misconfiguration on the benchmark arguments.");
        ObjectNode result = MAPPER.createObjectNode();
        result.put("date", LocalDateTime.now().format(DATE));
        result.put("endpoint_type", o.endpointType());
        if (o.label == null) result.putNull("label");
        else result.put("label", o.label);
        result.put("model_id", modelId);
        result.put("tokenizer_id", tok.id());
        result.put("num_prompts", o.numPrompts);
        o.metadata.forEach(result::put);
        if (Double.isInfinite(o.requestRate)) result.put("request_rate", "inf");
        else result.put("request_rate", o.requestRate);
        result.put("burstiness", o.burstiness);
        if (o.maxConcurrency == null) result.putNull("max_concurrency");
        else result.put("max_concurrency", o.maxConcurrency);
        metrics.report(out, result, o.maxConcurrency, o.requestRate, o.goodput, o.percentileMetrics, o.metricPercentiles);
        if (o.saveDetailed) metrics.putDetails(result, results);
        if (o.saveResult || o.saveDetailed) {
            Path file = resultFile(result.path("date").asText());
            Files.createDirectories(file.toAbsolutePath().getParent());
            MAPPER.writeValue(file.toFile(), result);
            err.println("Saved the result to " + file);
        }
        return 0;
    }

    /** GET /v1/models: fails with exit 1 when the server does not answer; returns the first model id, or null. */
    private String probe() throws IOException, InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(o.readyCheckTimeoutSec).toNanos();
        while (true) {
            try {
                HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/models"))
                        .timeout(Duration.ofSeconds(30)).GET().build(), HttpResponse.BodyHandlers.ofString());
                if (r.statusCode() != 200) {
                    err.println("warning: GET " + base + "/v1/models answered HTTP " + r.statusCode());
                    return null;
                }
                JsonNode data = MAPPER.readTree(r.body()).path("data");
                return data.isArray() && !data.isEmpty() ? data.get(0).path("id").asText(null) : null;
            } catch (IOException e) { // refused, timed out, reset, unknown host
                if (System.nanoTime() >= deadline) {
                    throw new ServerUnreachableException("cannot reach the server at " + base + ": " + describe(e), e);
                }
                Thread.sleep(1000);
            }
        }
    }

    private BenchTokenizer tokenizer() throws IOException, BenchUsageException {
        if (o.tokenizer != null) {
            Path dir = Path.of(o.tokenizer);
            if (!Files.isDirectory(dir)) {
                throw new BenchUsageException("argument --tokenizer: " + o.tokenizer + " is not a directory (dpserve loads tokenizers"
                        + " from local model directories; leave --tokenizer out to tokenize through the server)");
            }
            if (!LocalTokenizer.canLoad(dir)) throw new BenchUsageException("argument --tokenizer: no BPE tokenizer.json in " + dir);
            return LocalTokenizer.load(dir, o.tokenizer);
        }
        if (o.model != null && Files.isDirectory(Path.of(o.model)) && LocalTokenizer.canLoad(Path.of(o.model))) {
            return LocalTokenizer.load(Path.of(o.model), o.model);
        }
        out.println("Tokenizing through " + base + "/tokenize and /detokenize (model " + modelName + ")");
        return new ServerTokenizer(http, base, modelName);
    }

    /** One streaming request, timed; never throws for server or network errors (they make a failed output). */
    RequestOutput send(RandomDataset.SampleRequest r) {
        ObjectNode body = MAPPER.createObjectNode();
        body.put("model", modelName);
        if (chat) {
            body.putArray("messages").addObject().put("role", "user").put("content", r.prompt());
            body.put("temperature", 0.0);
            body.put("max_completion_tokens", r.expectedOutputLen());
        } else {
            body.put("prompt", r.prompt());
            body.put("temperature", 0.0);
            body.put("repetition_penalty", 1.0);
            body.put("max_tokens", r.expectedOutputLen());
        }
        body.put("stream", true);
        body.putObject("stream_options").put("include_usage", true);
        if (o.ignoreEos) body.put("ignore_eos", true);
        HttpRequest.Builder req = HttpRequest.newBuilder(URI.create(base + o.endpoint)).timeout(REQUEST_TIMEOUT)
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body.toString(), StandardCharsets.UTF_8));
        String key = System.getenv("OPENAI_API_KEY");
        if (key != null && !key.isBlank()) req.header("Authorization", "Bearer " + key);
        long start = System.nanoTime();
        try {
            HttpResponse<InputStream> resp = http.send(req.build(), HttpResponse.BodyHandlers.ofInputStream());
            try (InputStream in = resp.body()) {
                if (resp.statusCode() != 200) {
                    String text = new String(in.readNBytes(2000), StandardCharsets.UTF_8);
                    return RequestOutput.failed(start, r.promptLen(), "HTTP " + resp.statusCode() + ": " + SseTimer.abbreviate(text));
                }
                return SseTimer.read(in, chat, start, r.promptLen(), System::nanoTime);
            }
        } catch (IOException e) {
            return RequestOutput.failed(start, r.promptLen(), describe(e));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return RequestOutput.failed(start, r.promptLen(), "interrupted");
        }
    }

    private void listFailures(List<RequestOutput> results) {
        List<String> shown = new ArrayList<>();
        int failed = 0;
        for (int i = 0; i < results.size(); i++) {
            if (results.get(i).success) continue;
            failed++;
            if (shown.size() < ERRORS_SHOWN) shown.add("  request " + i + ": " + results.get(i).error);
        }
        if (failed == 0) return;
        err.println(failed + " of " + results.size() + " requests failed; the first errors:");
        shown.forEach(err::println);
    }

    private Path resultFile(String date) throws BenchUsageException {
        String name = o.resultFilename;
        if (name == null) {
            String baseModelId = modelId.substring(modelId.lastIndexOf('/') + 1);
            if (baseModelId.isEmpty()) baseModelId = Path.of(modelId).getFileName() == null ? "model" : Path.of(modelId).getFileName().toString();
            String concurrency = o.maxConcurrency == null ? "" : "-concurrency" + o.maxConcurrency;
            name = (o.label != null ? o.label : o.endpointType()) + "-" + pyFloat(o.requestRate) + "qps" + concurrency + "-"
                    + baseModelId + "-" + date + ".json";
        }
        return o.resultDir != null ? Path.of(o.resultDir).resolve(name) : Path.of(name);
    }

    /** Python's str(float) for the values that occur here: inf, 20.0, 0.5. */
    static String pyFloat(double v) {
        return Double.isInfinite(v) ? "inf" : Double.toString(v);
    }

    private static String describe(Throwable e) {
        String m = e.getMessage();
        String name = e.getClass().getSimpleName();
        if (e instanceof ConnectException && (m == null || m.isBlank())) return "connection refused";
        return m == null || m.isBlank() ? name : name + ": " + m;
    }

    private static void sleepUntil(long deadlineNanos) {
        long d;
        while ((d = deadlineNanos - System.nanoTime()) > 0) LockSupport.parkNanos(d);
    }
}
