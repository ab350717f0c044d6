// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.model;

import org.osgi.annotation.versioning.ConsumerType;

/**
 * The KV cache of one sequence, created by {@link CausalLm#newSequence(int)}. Not thread-safe:
 * only the engine loop touches it.
 */
@ConsumerType
public interface SequenceCache extends AutoCloseable {

    /** Tokens whose keys and values are cached (the next token goes at this position). */
    int length();

    /** Most tokens this cache can hold. */
    int capacity();

    /** Forgets tokens from position {@code length} on (used for recompute after preemption). */
    void truncate(int length);

    /** Releases the cache memory. Idempotent. */
    @Override
    void close();
}
