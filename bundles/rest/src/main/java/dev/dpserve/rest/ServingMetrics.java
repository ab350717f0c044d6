// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.rest;

import dev.dpserve.api.engine.EngineStats;
import dev.dpserve.api.engine.InferenceEngine;
import dev.dpserve.api.engine.RequestOutput;
import dev.dpserve.api.engine.WaveStats;
import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.CounterWithCallback;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.function.ToDoubleFunction;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ReferenceCardinality;
import org.osgi.service.component.annotations.ReferencePolicy;
import org.osgi.service.component.annotations.ReferencePolicyOption;

/**
 * The server's Prometheus metrics, with vLLM's names (prefix {@code vllm:}, labels
 * {@code model_name} and {@code engine}) so its dashboards work, plus {@code dpserve:} extras.
 * Engine gauges and counters are read from {@link EngineStats} at scrape time; request latencies
 * are observed by the front end as outputs arrive (TTFT, inter-token latency, end-to-end).
 *
 * <p>Thread-safe; {@link Tracker#onOutput} runs on engine threads and only updates histograms.
 */
@Component(service = ServingMetrics.class)
public class ServingMetrics {

    /** Seconds; vLLM's TTFT buckets. */
    private static final double[] TTFT_BUCKETS = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
        1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0};
    private static final double[] ITL_BUCKETS = {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0,
        2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0};
    private static final double[] E2E_BUCKETS = {0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0,
        50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};
    private static final double[] TOKEN_BUCKETS = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000,
        50000, 100000};

    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY)
    private volatile InferenceEngine engine;

    private final PrometheusRegistry registry = new PrometheusRegistry();
    private final Histogram ttft;
    private final Histogram itl;
    private final Histogram e2e;
    private final Histogram queue;
    private final Histogram promptTokens;
    private final Histogram generationTokens;
    private final Counter success;

    /** For tests outside OSGi. */
    ServingMetrics(InferenceEngine engine) {
        this();
        this.engine = engine;
    }

    public ServingMetrics() {
        String[] labels = {"model_name", "engine"};
        gauge("vllm:num_requests_running", "Requests in model execution batches", s -> s.running());
        gauge("vllm:num_requests_waiting", "Requests waiting to be processed", s -> s.waiting());
        gauge("vllm:kv_cache_usage_perc", "KV-cache usage; 1 means 100 percent", EngineStats::kvCacheUsage);
        gauge("dpserve:kv_cache_blocks_total", "KV cache blocks", s -> s.kvBlocksTotal());
        gauge("dpserve:kv_cache_blocks_used", "KV cache blocks held by requests", s -> s.kvBlocksUsed());
        counter("vllm:prefix_cache_queries", "Prefix cache queries, in tokens", s -> s.prefixCacheQueries());
        counter("vllm:prefix_cache_hits", "Prefix cache hits, in tokens", s -> s.prefixCacheHits());
        counter("vllm:num_preemptions", "Cumulative preemptions", s -> s.preemptions());
        counter("vllm:prompt_tokens", "Prefill tokens processed", s -> s.promptTokens());
        counter("vllm:generation_tokens", "Generation tokens processed", s -> s.generationTokens());
        counter("dpserve:engine_steps", "Engine steps (forward passes)", s -> s.steps());
        // DP lockstep (MoE with data parallelism): one sample per rank that steps in lockstep.
        waveGauge("dpserve:dp_current_wave", "The DP wave this rank is in", w -> w.currentWave());
        waveGauge("dpserve:dp_engines_running", "1 while the DP group runs a wave on this rank, 0 while paused",
                w -> w.running() ? 1 : 0);
        waveCounter("dpserve:dp_dummy_steps", "1-token dummy forwards this rank ran while others had work", w -> w.dummySteps());
        waveCounter("dpserve:dp_exchanges", "DP-wide collectives (token-count exchanges, idle checks)", w -> w.exchanges());
        waveCounter("dpserve:dp_exchange_seconds", "Time spent in DP-wide collectives, seconds", w -> w.exchangeNanos() / 1e9);
        ttft = Histogram.builder().name("vllm:time_to_first_token_seconds").help("Time to first token in seconds")
                .classicUpperBounds(TTFT_BUCKETS).labelNames(labels).withoutExemplars().register(registry);
        itl = Histogram.builder().name("vllm:inter_token_latency_seconds").help("Inter-token latency in seconds")
                .classicUpperBounds(ITL_BUCKETS).labelNames(labels).withoutExemplars().register(registry);
        e2e = Histogram.builder().name("vllm:e2e_request_latency_seconds").help("End-to-end request latency in seconds")
                .classicUpperBounds(E2E_BUCKETS).labelNames(labels).withoutExemplars().register(registry);
        queue = Histogram.builder().name("vllm:request_queue_time_seconds").help("Time in the WAITING phase before the first step, in seconds")
                .classicUpperBounds(E2E_BUCKETS).labelNames(labels).withoutExemplars().register(registry);
        promptTokens = Histogram.builder().name("vllm:request_prompt_tokens").help("Prompt tokens per request")
                .classicUpperBounds(TOKEN_BUCKETS).labelNames(labels).withoutExemplars().register(registry);
        generationTokens = Histogram.builder().name("vllm:request_generation_tokens").help("Generated tokens per request")
                .classicUpperBounds(TOKEN_BUCKETS).labelNames(labels).withoutExemplars().register(registry);
        success = Counter.builder().name("vllm:request_success").help("Successfully processed requests")
                .labelNames("model_name", "engine", "finished_reason").withoutExemplars().register(registry);
    }

    private void gauge(String name, String help, ToDoubleFunction<EngineStats> value) {
        GaugeWithCallback.builder().name(name).help(help).labelNames("model_name", "engine")
                .callback(cb -> report(value, cb::call)).register(registry);
    }

    private void counter(String name, String help, ToDoubleFunction<EngineStats> value) {
        CounterWithCallback.builder().name(name).help(help).labelNames("model_name", "engine")
                .callback(cb -> report(value, cb::call)).register(registry);
    }

    private void waveGauge(String name, String help, ToDoubleFunction<WaveStats> value) {
        GaugeWithCallback.builder().name(name).help(help).labelNames("model_name", "engine")
                .callback(cb -> reportWaves(value, cb::call)).register(registry);
    }

    private void waveCounter(String name, String help, ToDoubleFunction<WaveStats> value) {
        CounterWithCallback.builder().name(name).help(help).labelNames("model_name", "engine")
                .callback(cb -> reportWaves(value, cb::call)).register(registry);
    }

    private void reportWaves(ToDoubleFunction<WaveStats> value, Sample sample) {
        InferenceEngine e = engine;
        if (e != null) {
            String model = e.model().servedName();
            for (WaveStats w : e.rankWaveStats()) sample.call(value.applyAsDouble(w), model, Integer.toString(w.rank()));
        }
    }

    private interface Sample {
        void call(double value, String... labelValues);
    }

    /** One sample per engine rank, read at scrape time; none while no engine is registered. */
    private void report(ToDoubleFunction<EngineStats> value, Sample sample) {
        InferenceEngine e = engine;
        if (e != null) {
            String model = e.model().servedName();
            for (EngineStats s : e.rankStats()) sample.call(value.applyAsDouble(s), model, s.engineName());
        }
    }

    /** The Prometheus text exposition format 0.0.4. */
    byte[] scrape() throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream(8192);
        new PrometheusTextFormatWriter(false).write(out, registry.scrape());
        return out.toByteArray();
    }

    /** Starts observing one engine request. */
    Tracker track(String modelName, long arrivalNanos) {
        InferenceEngine e = engine;
        return new Tracker(modelName, e == null ? "0" : e.stats().engineName(), arrivalNanos);
    }

    /** Latencies of one engine request, fed with its outputs in order. */
    final class Tracker {
        private final String model;
        private final String engineName;
        private final long arrival;
        private long last;
        private int generated;

        Tracker(String model, String engineName, long arrivalNanos) {
            this.model = model;
            this.engineName = engineName;
            this.arrival = arrivalNanos;
        }

        void onOutput(RequestOutput out) {
            long now = System.nanoTime();
            int n = out.newTokenIds() == null ? 0 : out.newTokenIds().length;
            if (n > 0) {
                if (generated == 0) {
                    ttft.labelValues(model, engineName).observe((now - arrival) / 1e9);
                    if (out.queueNanos() > 0) queue.labelValues(model, engineName).observe(out.queueNanos() / 1e9);
                } else {
                    itl.labelValues(model, engineName).observe((now - last) / 1e9);
                }
                generated += n;
                last = now;
            }
            if (out.finished()) {
                e2e.labelValues(model, engineName).observe((now - arrival) / 1e9);
                promptTokens.labelValues(model, engineName).observe(out.numPromptTokens());
                generationTokens.labelValues(model, engineName).observe(out.numGeneratedTokens());
                if (out.error() == null) success.labelValues(model, engineName, out.finishReason().openAi()).inc();
            }
        }
    }
}
