// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.engine;

import dev.dpserve.api.tokenizer.Tokenizer;
import org.osgi.annotation.versioning.ProviderType;

/**
 * The engine as the front end sees it: submit token-level requests, receive token outputs.
 * Text concerns (tokenizing, detokenizing, stop strings) belong to the caller, as in vLLM's
 * front-end output processor. Implementations: the in-process engine (DP=1) and the DP client.
 *
 * <p>Thread-safe. Listeners are called from engine threads and must not block.
 */
@ProviderType
public interface InferenceEngine {

    /** The served model. */
    ModelCard model();

    /** The model's tokenizer. */
    Tokenizer tokenizer();

    /**
     * Queues a request. Validation failures (prompt too long for the model, token ids outside the
     * vocabulary, bad sampling values) throw {@link InvalidRequestException} before anything is
     * queued; {@link EngineUnavailableException} when no request can be admitted now.
     */
    void submit(EngineRequest request, OutputListener listener);

    /** Aborts a running or waiting request; its listener gets a final output with ABORT. No-op if unknown. */
    void abort(String requestId);

    /** The engine's counters; with data parallelism, the sum over all ranks. */
    EngineStats stats();

    /**
     * One snapshot per engine rank, each with its rank as {@link EngineStats#engineName()} (the
     * {@code engine} label of the metrics). A single engine returns {@code List.of(stats())}.
     */
    default java.util.List<EngineStats> rankStats() {
        return java.util.List.of(stats());
    }

    /**
     * Per DP rank, the lockstep (wave) state; empty when the engine does not step in lockstep
     * (DP=1, dense models).
     */
    default java.util.List<WaveStats> rankWaveStats() {
        return java.util.List.of();
    }

    /**
     * Null when healthy, else why not (for /health, which answers 503 with it). A degraded engine,
     * e.g. one waiting for a scheduling policy, still accepts requests (they wait); only
     * {@link #submit} decides admission.
     */
    String unhealthyReason();
}
