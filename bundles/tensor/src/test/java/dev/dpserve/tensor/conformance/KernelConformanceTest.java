// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tensor.conformance;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dpserve.api.tensor.DType;
import dev.dpserve.api.tensor.KernelBackend;
import dev.dpserve.api.tensor.PagedAttention;
import dev.dpserve.api.tensor.Tensor;
import dev.dpserve.tensor.JavaKernelBackend;
import dev.dpserve.tensor.VectorKernelBackend;
import java.util.List;
import java.util.Set;
import java.util.function.Supplier;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** The conformance kit on the in-bundle backends, and proof that it catches broken ones. */
class KernelConformanceTest {

    static Stream<Arguments> backends() {
        return Stream.of(
                Arguments.of("java", (Supplier<KernelBackend>) JavaKernelBackend::new),
                Arguments.of("vector-1-thread", (Supplier<KernelBackend>) () -> new VectorKernelBackend(1)),
                Arguments.of("vector-3-threads", (Supplier<KernelBackend>) () -> new VectorKernelBackend(3)));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void backendConforms(String name, Supplier<KernelBackend> factory) throws Exception {
        KernelBackend backend = factory.get();
        try {
            KernelConformance.Report report = KernelConformance.check(backend);
            assertTrue(report.passed(), report.summary(20));
            assertTrue(report.unsupported().isEmpty(), report.summary(0));
            assertTrue(report.cases() > 500, report.summary(0));
        } finally {
            if (backend instanceof AutoCloseable c) c.close();
        }
    }

    @Test
    void reportsTheOpsABrokenBackendGetsWrongAndSkipsWhatItDoesNotClaim() {
        KernelBackend java = new JavaKernelBackend();
        KernelBackend broken = new KernelBackend() {
            @Override public String name() { return "broken"; }
            @Override public int score() { return 1; }
            @Override public boolean supports(Op op, DType t) {
                return op != Op.TOP_K && java.supports(op, t);
            }
            @Override public void matmul(float[] x, int xOff, int n, Tensor w, float[] out, int outOff) {
                java.matmul(x, xOff, n, w, out, outOff);
                if (w.dim(1) > 100) out[outOff] += 1e-3f; // wrong only for long rows
            }
            @Override public void softmax(float[] x, int off, int rows, int len, int stride) {
                java.softmax(x, off, rows, len, stride);
                x[off + len] = 0f; // writes past the row: a guard/gap cell of the next row or beyond
            }
            @Override public void rmsNorm(float[] x, int xOff, int xStride, int rows, float[] w, float eps, float[] out, int oOff, int oStride) {
                java.rmsNorm(x, xOff, xStride, rows, w, eps, out, oOff, oStride);
            }
            @Override public void attention(PagedAttention a) {
                throw new IllegalStateException("no attention today");
            }
        };
        KernelConformance.Report report = KernelConformance.check(broken);
        assertFalse(report.passed());
        Set<KernelBackend.Op> failed = report.failures().stream().map(KernelConformance.Failure::op).collect(Collectors.toSet());
        // rope, silu etc. fall to the SPI defaults, which throw: they fail too
        assertTrue(failed.containsAll(List.of(KernelBackend.Op.MATMUL, KernelBackend.Op.SOFTMAX, KernelBackend.Op.ATTENTION,
                KernelBackend.Op.ROPE, KernelBackend.Op.SILU_MUL)), report.summary(5));
        assertFalse(failed.contains(KernelBackend.Op.RMS_NORM), report.summary(50));
        assertTrue(report.failures().stream().filter(f -> f.op() == KernelBackend.Op.MATMUL)
                .allMatch(f -> f.shape().contains("K=130")), report.summary(50));
        assertEquals(List.of("TOP_K/F32"), report.unsupported());
    }
}
