// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.tensor;

import org.osgi.annotation.versioning.ConsumerType;

/**
 * A set of compute kernels. Registered as a DS service; consumers pick the highest {@link #score()}
 * among backends that {@link #supports} the op and weight dtype they need. Activations are F32
 * heap arrays, row-major; weights are {@link Tensor} views in their stored dtype.
 *
 * <p>Threading: a backend may use its own worker threads inside one call, but calls from one
 * caller are sequential; implementations must be safe for concurrent calls from different threads.
 */
@ConsumerType
public interface KernelBackend {

    /** Service property: the backend name (e.g. "java", "native"). */
    String NAME = "dpserve.backend.name";

    enum Op { MATMUL }

    String name();

    /** Higher is preferred. The pure-Java reference scores lowest. */
    int score();

    boolean supports(Op op, DType weightType);

    /**
     * {@code out[i][j] = sum_k x[i][k] * w[j][k]} for i in [0, n): x is (n, K), w is (M, K) row-major,
     * out is (n, M). Reads x from {@code xOff}, writes out from {@code outOff}.
     */
    void matmul(float[] x, int xOff, int n, Tensor w, float[] out, int outOff);
}
