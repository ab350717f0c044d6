// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.model;

import java.util.List;
import org.osgi.annotation.versioning.ConsumerType;

/**
 * A loaded causal language model. Not thread-safe: one engine loop drives it.
 */
@ConsumerType
public interface CausalLm extends AutoCloseable {

    ModelInfo info();

    /** A fresh, empty KV cache for one sequence of at most {@code capacity} tokens. */
    SequenceCache newSequence(int capacity);

    /**
     * One forward pass over a batch: every entry appends its tokens (a prefill chunk or one
     * decode token) to its cache, starting at position {@code cache.length()}; all tokens of all
     * entries go through each weight matmul together. Returns, per entry and in order, the logits
     * (length {@code info().vocabSize()}) for the entry's last token.
     */
    float[][] forward(List<BatchEntry> batch);

    /** One entry of a forward batch. */
    record BatchEntry(SequenceCache cache, int[] tokens) {
    }

    /** Unmaps the weights. */
    @Override
    void close();
}
