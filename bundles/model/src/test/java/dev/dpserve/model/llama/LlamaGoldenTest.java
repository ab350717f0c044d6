// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model.llama;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.dpserve.api.model.CausalLm;
import dev.dpserve.api.tensor.KernelBackend;
import dev.dpserve.model.Fixtures;
import dev.dpserve.model.PagedSequences;
import dev.dpserve.tensor.JavaKernelBackend;
import dev.dpserve.tensor.VectorKernelBackend;
import java.nio.file.Path;
import java.util.function.Supplier;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * llama-tiny against the independent float64 reference (see the fixture's PROVENANCE.md): the 24
 * greedy tokens of all 8 prompts, logits within 1e-4 on the top-10 ids at every step and on the
 * whole vocabulary at step 0.
 */
class LlamaGoldenTest {

    private static final double TOLERANCE = 1e-4;

    static Stream<Arguments> backends() {
        return Stream.of(
                Arguments.of("java", (Supplier<KernelBackend>) JavaKernelBackend::new),
                Arguments.of("vector", (Supplier<KernelBackend>) () -> new VectorKernelBackend(2)));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void matchesGoldenTokensAndLogits(String name, Supplier<KernelBackend> backend) throws Exception {
        Path dir = Fixtures.dir("llama-tiny");
        JsonNode golden = new ObjectMapper().readTree(dir.resolve("golden.json").toFile());
        float[][] step0 = Fixtures.readNpy2d(dir.resolve("logits_step0.npy"));
        KernelBackend kernels = backend.get();
        try (CausalLm model = Fixtures.load(dir, kernels, "auto")) {
            int steps = golden.get("steps").asInt();
            assertEquals(24, steps);
            assertEquals(8, golden.get("prompts").size());
            for (JsonNode p : golden.get("prompts")) {
                int index = p.get("index").asInt();
                int[] prompt = ints(p.get("prompt"));
                int[] expectedTokens = ints(p.get("generated"));
                int[] generated = new int[steps];
                {
                    // block size 4 so that prompts and decodes cross block boundaries
                    PagedSequences.Seq seq = new PagedSequences(model, 1 + (prompt.length + steps + 3) / 4, 4).newSequence();
                    float[] logits = seq.forward(prompt);
                    assertEquals(step0[index].length, logits.length);
                    for (int v = 0; v < logits.length; v++) {
                        assertEquals(step0[index][v], logits[v], TOLERANCE, "prompt " + index + " step 0 logit " + v);
                    }
                    for (int k = 0; k < steps; k++) {
                        if (k > 0) logits = seq.forward(new int[] {generated[k - 1]});
                        JsonNode step = p.get("steps").get(k);
                        JsonNode ids = step.get("top10_ids");
                        for (int r = 0; r < ids.size(); r++) {
                            int id = ids.get(r).asInt();
                            assertEquals(step.get("top10_logits").get(r).asDouble(), logits[id], TOLERANCE,
                                    "prompt " + index + " step " + k + " logit of " + id);
                        }
                        generated[k] = Fixtures.argmax(logits);
                        assertEquals(expectedTokens[k], generated[k], "prompt " + index + " step " + k);
                    }
                    assertEquals(prompt.length + steps - 1, seq.length());
                }
                assertArrayEquals(expectedTokens, generated);
            }
            assertTrue(model.info().parameterCount() > 0);
        } finally {
            if (kernels instanceof AutoCloseable c) c.close();
        }
    }

    private static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) out[i] = array.get(i).asInt();
        return out;
    }
}
