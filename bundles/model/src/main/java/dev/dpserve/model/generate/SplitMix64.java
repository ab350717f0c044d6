// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model.generate;

import java.nio.charset.StandardCharsets;

/** The splitmix64 generator: tiny, fast and bit-identical on every JVM, so weights are reproducible. */
final class SplitMix64 {

    private long state;

    SplitMix64(long seed) {
        this.state = seed;
    }

    /** A stream keyed by a name (e.g. a tensor's HF name) under a global seed. */
    static SplitMix64 keyed(long seed, String key) {
        long h = 0xcbf29ce484222325L; // FNV-1a over the UTF-8 key
        for (byte b : key.getBytes(StandardCharsets.UTF_8)) h = (h ^ (b & 0xFF)) * 0x100000001b3L;
        return new SplitMix64(mix(seed ^ h));
    }

    long nextLong() {
        return mix(state += 0x9E3779B97F4A7C15L);
    }

    /** Uniform in [0, 1) with 24 bits. */
    float nextFloat() {
        return (nextLong() >>> 40) * 0x1p-24f;
    }

    /**
     * Approximately normal with mean 0 and the given std: a sum of four uniforms (Irwin-Hall), which
     * needs no transcendental functions and so stays bit-exact across platforms.
     */
    float nextGaussianish(float std) {
        float s = nextFloat() + nextFloat() + nextFloat() + nextFloat() - 2f;
        return s * std * 1.7320508f; // the sum's std is 1/sqrt(3)
    }

    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
