// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model;

import dev.dpserve.api.tensor.DType;
import dev.dpserve.api.tensor.KernelBackend;
import java.util.Comparator;
import java.util.List;

/** Which registered kernel backend computes a weight dtype. */
public final class KernelChoice {

    private KernelChoice() {
    }

    /** The best backend for MATMUL on {@code dtype}; IllegalStateException if none supports it. */
    public static KernelBackend choose(List<KernelBackend> backends, DType dtype) {
        return backends.stream()
                .filter(b -> b.supports(KernelBackend.Op.MATMUL, dtype))
                .max(Comparator.comparingInt(KernelBackend::score))
                .orElseThrow(() -> new IllegalStateException("no kernel backend supports MATMUL on " + dtype
                        + " weights (registered: " + backends.stream().map(KernelBackend::name).toList() + ")"));
    }
}
