// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.model;

import java.util.List;
import org.osgi.annotation.versioning.ConsumerType;

/**
 * A loaded causal language model with a paged KV cache. The model owns the cache storage; the
 * engine owns which block holds what: it hands out block ids in {@link BatchEntry#blockTable()}s
 * and may point several sequences at the same block (prefix caching).
 *
 * <p>Not thread-safe: one engine loop drives it.
 */
@ConsumerType
public interface CausalLm extends AutoCloseable {

    ModelInfo info();

    /** The shape of one token's cache entry; the engine sizes the cache with it. */
    KvCacheLayout kvCacheLayout();

    /**
     * (Re)allocates the KV cache as {@code numBlocks} blocks of {@code blockSize} token slots each,
     * F32, in the model's {@link #kvCacheLayout()}. Slot {@code s} is block {@code s / blockSize},
     * offset {@code s % blockSize}. Earlier cache contents are discarded. Block 0 is the engine's
     * null block; the model need not treat it specially. Implementations may commit memory lazily.
     */
    void allocateKvCache(int numBlocks, int blockSize);

    /**
     * One forward pass over a batch; all tokens of all entries go through each weight matmul
     * together. For each entry, token {@code i} sits at position {@code startPosition + i}: its
     * keys/values are written to that position's slot, and it attends to positions
     * {@code [0, startPosition + i]} read through the block table, so positions below
     * {@code startPosition} must have been written by earlier passes (or by another sequence
     * sharing the block). The slot of position {@code p} is
     * {@code blockTable[p / blockSize] * blockSize + p % blockSize}.
     *
     * <p>Two entries of one batch must not write the same slot. Throws IllegalStateException before
     * {@link #allocateKvCache}, IllegalArgumentException for malformed entries (then nothing is
     * written).
     *
     * @return per entry, in order: the logits (length {@code info().vocabSize()}) after the entry's
     *         last token, or null when the entry did not {@linkplain BatchEntry#wantLogits() want} them
     */
    float[][] forward(List<BatchEntry> batch);

    /**
     * One sequence's part of a forward batch.
     *
     * @param blockTable    block ids holding positions {@code [0, startPosition + tokens.length)},
     *                      in order; at least {@code ceil((startPosition + tokens.length) / blockSize)} long
     * @param startPosition position of {@code tokens[0]} (number of tokens already cached)
     * @param tokens        the tokens to run (a prefill chunk or decode tokens), non-empty
     * @param wantLogits    whether to compute the logits of the last token (the LM head is skipped otherwise)
     */
    record BatchEntry(int[] blockTable, int startPosition, int[] tokens, boolean wantLogits) {
    }

    /** Releases the KV cache and unmaps the weights. */
    @Override
    void close();
}
