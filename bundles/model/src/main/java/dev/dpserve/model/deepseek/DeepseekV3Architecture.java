// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model.deepseek;

import dev.dpserve.api.model.CausalLm;
import dev.dpserve.api.model.ModelArchitecture;
import dev.dpserve.api.model.ModelSource;
import dev.dpserve.api.tensor.KernelBackend;
import dev.dpserve.model.KernelChoice;
import java.io.IOException;
import java.util.List;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.FieldOption;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ReferenceCardinality;
import org.osgi.service.component.annotations.ReferencePolicy;

/**
 * Serves DeepSeek-V3 and DeepSeek-V2 checkpoints (MLA attention, grouped-top-k MoE) with
 * {@link DeepseekV3Model}. Each weight dtype is computed by the highest-scoring registered
 * {@link KernelBackend} that supports MATMUL on it, chosen once at load.
 */
@Component(service = ModelArchitecture.class, property = {
        ModelArchitecture.MODEL_TYPE + "=deepseek_v3",
        ModelArchitecture.MODEL_TYPE + "=deepseek_v2"})
public final class DeepseekV3Architecture implements ModelArchitecture {

    @Reference(cardinality = ReferenceCardinality.MULTIPLE, policy = ReferencePolicy.DYNAMIC,
            fieldOption = FieldOption.REPLACE)
    private volatile List<KernelBackend> backends = List.of();

    /** For DS. */
    public DeepseekV3Architecture() {
    }

    /** For tests and tools outside a framework: these backends only. */
    public DeepseekV3Architecture(KernelBackend... backends) {
        this.backends = List.of(backends);
    }

    @Override
    public CausalLm load(ModelSource source) throws IOException {
        List<KernelBackend> available = backends;
        return DeepseekV3Model.load(source, dtype -> KernelChoice.choose(available, dtype));
    }
}
