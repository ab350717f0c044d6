// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.tensor;

import java.util.List;
import java.util.Optional;
import org.osgi.annotation.versioning.ProviderType;

/**
 * Which {@link KernelBackend} computes each op, and an operator's pin. Per op and dtype the chosen
 * backend is the pinned one where it supports the op, else the highest {@link KernelBackend#score}
 * among the registered backends that support it. Models read the choice once per forward step, so
 * a pin, an unpin or a backend coming or going applies at the next step boundary.
 */
@ProviderType
public interface KernelSelection {

    /** A backend that supports an op: its name and score. */
    record Candidate(String backend, int score) {
    }

    /**
     * One op on one dtype (the weight dtype for the GEMMs, F32 otherwise): the supporting backends,
     * best score first, and the chosen one (null while none supports it).
     */
    record Choice(KernelBackend.Op op, DType dtype, List<Candidate> candidates, String chosen) {
        public Choice {
            candidates = List.copyOf(candidates);
        }
    }

    /** The choice for every op and dtype the models use. */
    List<Choice> choices();

    /** The names of the registered backends, best score first. */
    List<String> backends();

    /** The pinned backend name, if any. */
    Optional<String> pinned();

    /**
     * Pins a backend by name: it computes every op it supports from the next step on.
     * IllegalArgumentException if no registered backend has that name.
     */
    void pin(String backend);

    /** Back to the best score per op, from the next step on. */
    void unpin();
}
