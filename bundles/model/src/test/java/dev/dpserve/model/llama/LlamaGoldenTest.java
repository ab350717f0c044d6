// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model.llama;

import dev.dpserve.api.tensor.KernelBackend;
import dev.dpserve.model.Fixtures;
import java.util.function.Supplier;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * llama-tiny against the independent float64 reference (see the fixture's PROVENANCE.md): the 24
 * greedy tokens of all 8 prompts, logits within 1e-4 on the top-10 ids at every step and on the
 * whole vocabulary at step 0.
 */
class LlamaGoldenTest {

    private static final double TOLERANCE = 1e-4;

    @ParameterizedTest(name = "{0}")
    @MethodSource("dev.dpserve.model.Fixtures#backends")
    void matchesGoldenTokensAndLogits(String name, Supplier<KernelBackend> backend) throws Exception {
        KernelBackend kernels = backend.get();
        try {
            Fixtures.assertMatchesGolden(Fixtures.dir("llama-tiny"), kernels, TOLERANCE);
        } finally {
            if (kernels instanceof AutoCloseable c) c.close();
        }
    }
}
