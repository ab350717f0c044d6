// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tensor;

import dev.dpserve.api.tensor.DType;
import java.lang.foreign.Arena;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The vector backend's batched matmul paths ({@link VectorGemm}: pair kernels for small batches,
 * outer products for larger ones, dot products below the crossover) at shapes that cross their
 * blocks: several token panels and chunks with a partial last one, row blocks with a remainder
 * that is not a multiple of the micro-tile, column blocks with a short last one, odd K — against
 * a naive double-precision matmul ({@link MatmulConformanceTest#check}).
 */
class VectorGemmTest {

    @ParameterizedTest(name = "{0} threads={1}")
    @CsvSource({"F32, 1", "F32, 3", "BF16, 1", "BF16, 2", "F16, 1", "F16, 2"})
    void matchesDoublePrecisionReference(DType type, int threads) {
        SplittableRandom rnd = new SplittableRandom(7);
        try (Arena arena = Arena.ofShared(); VectorKernelBackend backend = new VectorKernelBackend(threads)) {
            int[][] shapes = {
                {2, 9, 20}, {4, 7, 9}, {5, 600, 17}, {8, 1100, 33}, {8, 1, 8}, {9, 513, 25}, {12, 2, 13}, {16, 3, 12},
                {16, 1, 6}, {16, 5, 7}, {17, 33, 12}, {31, 130, 5}, {40, 600, 53}, {64, 513, 49},
                {100, 1100, 97}, {257, 64, 13}, {300, 520, 60}, {513, 9, 6},
            };
            for (int[] s : shapes) MatmulConformanceTest.check(backend, arena, rnd, type, s[0], s[1], s[2]);
        }
    }
}
