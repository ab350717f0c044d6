// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.parallel;

import java.time.Duration;
import java.util.List;
import java.util.Objects;

/**
 * What a rank needs to join a group.
 *
 * @param rank      this process's rank, 0..size-1
 * @param size      number of ranks
 * @param endpoints where the group meets; their meaning belongs to the implementation (the JeroMQ
 *                  one: {@code endpoints[0]} is bound by rank 0 and connected to by the others)
 * @param timeout   the collective timeout (a peer silent this long counts as gone)
 * @param joinTimeout how long {@link CommunicatorFactory#join} waits for every rank (ranks of
 *                  other nodes may start much later)
 * @param curvePublicKey cluster public key for CurveZMQ (32 bytes), or null for a loopback group without security
 * @param curveSecretKey cluster secret key (32 bytes), or null
 */
public record GroupSpec(int rank, int size, List<String> endpoints, Duration timeout, Duration joinTimeout,
                        byte[] curvePublicKey, byte[] curveSecretKey) {
    public GroupSpec {
        if (size < 1 || rank < 0 || rank >= size) throw new IllegalArgumentException("rank " + rank + " of " + size);
        endpoints = List.copyOf(endpoints);
        if (size > 1 && endpoints.isEmpty()) throw new IllegalArgumentException("a group of " + size + " needs an endpoint");
        Objects.requireNonNull(timeout, "timeout");
        Objects.requireNonNull(joinTimeout, "joinTimeout");
        if (timeout.isNegative() || timeout.isZero() || joinTimeout.isNegative() || joinTimeout.isZero()) {
            throw new IllegalArgumentException("timeouts must be positive");
        }
        if ((curvePublicKey == null) != (curveSecretKey == null)) throw new IllegalArgumentException("both CURVE keys or none");
        if (curvePublicKey != null && (curvePublicKey.length != 32 || curveSecretKey.length != 32)) {
            throw new IllegalArgumentException("CURVE keys are 32 bytes");
        }
        curvePublicKey = curvePublicKey == null ? null : curvePublicKey.clone();
        curveSecretKey = curveSecretKey == null ? null : curveSecretKey.clone();
    }

    /** A group without CurveZMQ (loopback only). */
    public GroupSpec(int rank, int size, List<String> endpoints, Duration timeout, Duration joinTimeout) {
        this(rank, size, endpoints, timeout, joinTimeout, null, null);
    }

    @Override
    public byte[] curvePublicKey() { return curvePublicKey == null ? null : curvePublicKey.clone(); }

    @Override
    public byte[] curveSecretKey() { return curveSecretKey == null ? null : curveSecretKey.clone(); }

    @Override
    public String toString() {
        return "GroupSpec[rank " + rank + " of " + size + ", " + endpoints + ", timeout " + timeout
                + (curvePublicKey != null ? ", CURVE" : "") + "]";
    }
}
