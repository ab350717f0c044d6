// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tensor;

import dev.dpserve.api.tensor.DType;
import dev.dpserve.api.tensor.KernelBackend;
import dev.dpserve.api.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import org.osgi.service.component.annotations.Component;

/**
 * The pure-Java reference kernels: plain loops, single-threaded, F32 accumulation in index order.
 * It is the oracle the other backends are tested against, and scores lowest so that any other
 * backend supporting the op is preferred.
 */
@Component(service = KernelBackend.class, property = KernelBackend.NAME + "=java")
public final class JavaKernelBackend implements KernelBackend {

    /** The score of this backend: the lowest of all. */
    public static final int SCORE = 0;

    @Override
    public String name() {
        return "java";
    }

    @Override
    public int score() {
        return SCORE;
    }

    @Override
    public boolean supports(Op op, DType weightType) {
        return op == Op.MATMUL && MatmulArgs.isFloatWeight(weightType);
    }

    @Override
    public void matmul(float[] x, int xOff, int n, Tensor w, float[] out, int outOff) {
        int k = MatmulArgs.check(x, xOff, n, w, out, outOff);
        int m = w.dim(0);
        DType type = w.dtype();
        MemorySegment data = w.data();
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < m; j++) {
                float sum = 0f;
                for (int p = 0; p < k; p++) {
                    sum += x[xOff + i * k + p] * MatmulArgs.weight(type, data, (long) j * k + p);
                }
                out[outOff + i * m + j] = sum;
            }
        }
    }
}
