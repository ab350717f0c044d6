// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tensor;

import java.lang.foreign.MemorySegment;

/**
 * Loops that measure this machine's limits with the native library (for the benchmarks module):
 * peak FMA throughput and streaming read bandwidth. Needs the native library on
 * {@code java.library.path}.
 */
public final class MachineProbe {

    /** Floating-point operations done by one iteration of {@link #fmaLoop}: 12 FMAs × 8 lanes × 2. */
    public static final int FLOPS_PER_ITERATION = 12 * 8 * 2;

    private MachineProbe() {
    }

    /** Loads the native library; IllegalStateException says why when it is missing. */
    public static void requireNative() {
        String err = NativeKernels.load();
        if (err != null) throw new IllegalStateException("native kernels not loadable: " + err);
    }

    /** Runs {@code iterations} of 12 independent AVX2 FMA chains; returns a value to consume. */
    public static double fmaLoop(long iterations) {
        return NativeKernels.fmaLoop(iterations);
    }

    /** Floating-point operations done by one iteration of {@link #fmaLoop512}. */
    public static final int FLOPS_PER_ITERATION_512 = 12 * 16 * 2;

    /**
     * The same loop with AVX-512 (for comparison only: the kernels use AVX2); NaN without AVX-512F.
     */
    public static double fmaLoop512(long iterations) {
        return NativeKernels.fmaLoop512(iterations);
    }

    /** Reads every float of a native segment once (AVX2 loads); returns their sum. */
    public static double streamSum(MemorySegment segment) {
        if (!segment.isNative()) throw new IllegalArgumentException("streamSum needs a native segment");
        return NativeKernels.streamSum(segment.address(), segment.byteSize());
    }

    /** The code path the native library chose for this CPU. */
    public static String nativeLevel() {
        return NativeKernels.levelName(NativeKernels.level());
    }
}
