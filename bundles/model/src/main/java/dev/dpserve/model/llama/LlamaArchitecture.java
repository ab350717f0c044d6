// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model.llama;

import dev.dpserve.api.model.CausalLm;
import dev.dpserve.api.model.ModelArchitecture;
import dev.dpserve.api.model.ModelSource;
import dev.dpserve.api.tensor.KernelBackend;
import dev.dpserve.model.KernelRegistry;
import java.io.IOException;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;

/**
 * Serves Llama-family checkpoints (llama, qwen2, mistral) with {@link LlamaModel}. Every op runs
 * on the {@link KernelBackend} the bundle's {@link KernelRegistry} chooses for it (pinned, else the
 * highest score that supports it), resolved again at each forward step.
 */
@Component(service = ModelArchitecture.class, property = {
        ModelArchitecture.MODEL_TYPE + "=llama",
        ModelArchitecture.MODEL_TYPE + "=qwen2",
        ModelArchitecture.MODEL_TYPE + "=mistral"})
public final class LlamaArchitecture implements ModelArchitecture {

    @Reference
    private KernelRegistry kernels;

    /** For DS. */
    public LlamaArchitecture() {
    }

    /** For tests and tools outside a framework: these backends only. */
    public LlamaArchitecture(KernelBackend... backends) {
        this(new KernelRegistry(backends));
    }

    /** For tests and tools outside a framework: the kernels this registry chooses, as they change. */
    public LlamaArchitecture(KernelRegistry kernels) {
        this.kernels = kernels;
    }

    @Override
    public CausalLm load(ModelSource source) throws IOException {
        return LlamaModel.load(source, kernels);
    }
}
