// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dpserve.api.model.CausalLm;
import dev.dpserve.api.model.ModelSource;
import dev.dpserve.api.tensor.DType;
import dev.dpserve.api.tensor.KernelBackend;
import dev.dpserve.api.tensor.KernelBackend.Op;
import dev.dpserve.api.tensor.KernelSelection;
import dev.dpserve.api.tensor.Tensor;
import dev.dpserve.model.llama.LlamaArchitecture;
import dev.dpserve.tensor.JavaKernelBackend;
import dev.dpserve.tensor.VectorKernelBackend;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Per-op choice, pinning, backends coming and going, and a forward step waiting for a backend. */
class KernelRegistryTest {

    /** A backend that only does F32 matmul and softmax, scoring high. */
    private static final class Partial implements KernelBackend {
        private final JavaKernelBackend java = new JavaKernelBackend();

        @Override public String name() { return "partial"; }
        @Override public int score() { return 500; }
        @Override public boolean supports(Op op, DType t) {
            return op == Op.MATMUL && t == DType.F32 || op == Op.SOFTMAX;
        }
        @Override public void matmul(float[] x, int xOff, int n, Tensor w, float[] out, int outOff) {
            java.matmul(x, xOff, n, w, out, outOff);
        }
        @Override public void softmax(float[] x, int off, int rows, int len, int stride) {
            java.softmax(x, off, rows, len, stride);
        }
    }

    @Test
    void choosesTheBestScorePerOpAndHonoursAPinWhereThePinnedBackendSupportsTheOp() throws Exception {
        JavaKernelBackend java = new JavaKernelBackend();
        Partial partial = new Partial();
        try (VectorKernelBackend vector = new VectorKernelBackend(1)) {
            KernelRegistry r = new KernelRegistry(java, partial, vector);
            assertSame(partial, r.kernels().backend(Op.MATMUL, DType.F32));
            assertSame(vector, r.kernels().backend(Op.MATMUL, DType.BF16));
            assertSame(partial, r.kernels().backend(Op.SOFTMAX, DType.F32));
            assertSame(vector, r.kernels().backend(Op.ATTENTION, DType.F32));
            assertEquals(List.of("partial", "vector", "java"), r.backends());

            KernelSelection.Choice attention = choice(r, Op.ATTENTION, DType.F32);
            assertEquals("vector", attention.chosen());
            assertEquals(List.of(new KernelSelection.Candidate("vector", 100), new KernelSelection.Candidate("java", 0)),
                    attention.candidates());
            assertEquals(KernelRegistry.SLOTS.size(), r.choices().size());

            Kernels before = r.kernels();
            r.pin("java");
            assertEquals(Optional.of("java"), r.pinned());
            assertSame(java, r.kernels().backend(Op.MATMUL, DType.F32));
            assertSame(java, r.kernels().backend(Op.ATTENTION, DType.F32));
            assertSame(partial, before.backend(Op.MATMUL, DType.F32), "a taken choice never changes under a step");
            r.pin("partial");
            assertSame(partial, r.kernels().backend(Op.MATMUL, DType.F32));
            assertSame(vector, r.kernels().backend(Op.ATTENTION, DType.F32), "the best where the pinned one cannot");
            assertThrows(IllegalArgumentException.class, () -> r.pin("nosuch"));
            r.unpin();
            assertEquals(Optional.empty(), r.pinned());

            r.removeBackend(partial);
            assertSame(vector, r.kernels().backend(Op.MATMUL, DType.F32));
            r.removeBackend(vector);
            r.removeBackend(java);
            assertNull(r.kernels().backend(Op.MATMUL, DType.F32));
            assertNull(choice(r, Op.MATMUL, DType.F32).chosen());
        }
    }

    @Test
    void awaitTimesOutNamingTheMissingOps() {
        KernelRegistry r = new KernelRegistry(new Partial());
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> r.await(List.of(Kernels.Need.of(Op.ATTENTION), Kernels.Need.of(Op.SOFTMAX)), 100, TimeUnit.MILLISECONDS));
        assertTrue(e.getMessage().contains("[ATTENTION/F32]") && e.getMessage().contains("partial"), e.getMessage());
    }

    @Test
    void aForwardStepWaitsWhileNoBackendIsRegisteredAndGoesOnWithTheNextOne() throws Exception {
        Path dir = Fixtures.dir("llama-tiny");
        KernelRegistry registry = new KernelRegistry();
        JavaKernelBackend java = new JavaKernelBackend();
        registry.addBackend(java);
        try (CausalLm model = new LlamaArchitecture(registry).load(new ModelSource(dir, ConfigJson.read(dir), "auto"))) {
            int[] prompt = {1, 5, 9, 13, 2};
            float[] expected = new PagedSequences(model, 4, 4).newSequence().forward(prompt);
            registry.removeBackend(java); // e.g. the tensor bundle being refreshed
            PagedSequences.Seq seq = new PagedSequences(model, 4, 4).newSequence();
            CompletableFuture<float[]> step = CompletableFuture.supplyAsync(() -> seq.forward(prompt));
            Thread.sleep(300);
            assertTrue(!step.isDone(), "the step waits for a backend");
            try (VectorKernelBackend vector = new VectorKernelBackend(2)) {
                registry.addBackend(vector);
                float[] logits = step.get(20, TimeUnit.SECONDS);
                for (int v = 0; v < expected.length; v++) assertEquals(expected[v], logits[v], 1e-4, "logit " + v);
            }
        }
    }

    private static KernelSelection.Choice choice(KernelRegistry r, Op op, DType t) {
        return r.choices().stream().filter(c -> c.op() == op && c.dtype() == t).findFirst().orElseThrow();
    }
}
