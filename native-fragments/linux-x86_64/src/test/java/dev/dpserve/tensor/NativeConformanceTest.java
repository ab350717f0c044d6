// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tensor;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dpserve.tensor.conformance.KernelConformance;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The tensor bundle's conformance kit on the native backend: every op and dtype it claims, over the
 * kit's awkward shapes, against the pure-Java reference, at every dispatch level this CPU runs
 * (baseline, AVX2, AVX-512 where present) and with one and three worker threads.
 */
class NativeConformanceTest {

    private static int detectedLevel;

    @BeforeAll
    static void load() {
        assertTrue(NativeKernelBackend.available(), "libdpserve_kernels must load from java.library.path");
        detectedLevel = NativeKernels.level();
    }

    @AfterEach
    void restoreLevel() {
        NativeKernels.forceLevel(detectedLevel);
    }

    static Stream<Arguments> levelsThreads() {
        NativeKernels.load();
        List<Arguments> all = new ArrayList<>();
        for (int level = 0; level <= NativeKernels.level(); level++) {
            for (int threads : new int[] {1, 3}) all.add(Arguments.of(level, threads));
        }
        return all.stream();
    }

    @ParameterizedTest(name = "level {0}, {1} threads")
    @MethodSource("levelsThreads")
    void passesTheKit(int level, int threads) {
        NativeKernels.forceLevel(level);
        try (NativeKernelBackend b = new NativeKernelBackend(threads)) {
            KernelConformance.Report report = KernelConformance.check(b);
            assertTrue(report.passed(), report.summary(30));
            assertTrue(report.cases() > 100, "the kit ran its cases: " + report.summary(0));
        }
    }
}
