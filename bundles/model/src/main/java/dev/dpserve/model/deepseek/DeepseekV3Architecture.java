// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model.deepseek;

import dev.dpserve.api.model.CausalLm;
import dev.dpserve.api.model.ModelArchitecture;
import dev.dpserve.api.model.ModelSource;
import dev.dpserve.api.tensor.KernelBackend;
import dev.dpserve.model.KernelRegistry;
import java.io.IOException;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;

/**
 * Serves DeepSeek-V3 and DeepSeek-V2 checkpoints (MLA attention, grouped-top-k MoE) with
 * {@link DeepseekV3Model}. Every op runs on the {@link KernelBackend} the bundle's
 * {@link KernelRegistry} chooses for it (pinned, else the highest score that supports it),
 * resolved again at each forward step.
 */
@Component(service = ModelArchitecture.class, property = {
        ModelArchitecture.MODEL_TYPE + "=deepseek_v3",
        ModelArchitecture.MODEL_TYPE + "=deepseek_v2"})
public final class DeepseekV3Architecture implements ModelArchitecture {

    @Reference
    private KernelRegistry kernels;

    /** For DS. */
    public DeepseekV3Architecture() {
    }

    /** For tests and tools outside a framework: these backends only. */
    public DeepseekV3Architecture(KernelBackend... backends) {
        this(new KernelRegistry(backends));
    }

    /** For tests and tools outside a framework: the kernels this registry chooses, as they change. */
    public DeepseekV3Architecture(KernelRegistry kernels) {
        this.kernels = kernels;
    }

    @Override
    public CausalLm load(ModelSource source) throws IOException {
        return DeepseekV3Model.load(source, kernels);
    }
}
