// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.parallel;

import java.time.Duration;
import org.osgi.annotation.versioning.ProviderType;

/**
 * One rank's handle on a process group's collectives. Every rank must make the same calls in the
 * same order with arrays of the same length (the implementation checks the call sequence number and
 * the length, and fails on a mismatch rather than mixing up calls).
 *
 * <p>Not thread-safe: one thread (the engine loop) calls it. {@link #close()} from another thread
 * makes a blocked call fail with {@link CollectiveException}.
 */
@ProviderType
public interface Communicator extends AutoCloseable {

    /** This process's rank, 0..size()-1. */
    int rank();

    /** Number of ranks in the group. */
    int size();

    /**
     * Combines {@code values} element-wise over all ranks and returns the result (the same on every
     * rank). {@code values} is not modified.
     *
     * @throws CollectiveException if a rank did not take part within {@link #timeout()}, or sent a
     *                             mismatching call; the message names the rank when it is known
     */
    long[] allReduce(long[] values, ReduceOp op);

    /** {@link #allReduce(long[], ReduceOp)} for {@code int} values (each result fits: no overflow check). */
    default int[] allReduce(int[] values, ReduceOp op) {
        long[] in = new long[values.length];
        for (int i = 0; i < values.length; i++) in[i] = values[i];
        long[] out = allReduce(in, op);
        int[] r = new int[out.length];
        for (int i = 0; i < out.length; i++) r[i] = (int) out[i];
        return r;
    }

    /** One value, all ranks: a convenience for the engine's flags and counts. */
    default long allReduce(long value, ReduceOp op) {
        return allReduce(new long[] {value}, op)[0];
    }

    /** How long a collective waits for the slowest rank before failing. */
    Duration timeout();

    /** Collectives completed so far by this rank. */
    long calls();

    /** Total time this rank spent inside collectives, in nanoseconds (the lockstep's cost). */
    long totalNanos();

    /** Leaves the group and releases its sockets; idempotent. */
    @Override
    void close();
}
