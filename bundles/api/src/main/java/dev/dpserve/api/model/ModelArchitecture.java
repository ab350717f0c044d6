// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.model;

import java.io.IOException;
import org.osgi.annotation.versioning.ConsumerType;

/**
 * One model architecture (Llama, Qwen2, DeepSeek-V3, ...), registered as a DS service with the
 * {@link #MODEL_TYPE} property listing the Hugging Face {@code model_type} values it handles.
 */
@ConsumerType
public interface ModelArchitecture {

    /** Service property (String or String[]): the config.json {@code model_type} values served. */
    String MODEL_TYPE = "dpserve.model.type";

    /**
     * Loads the checkpoint. Tensors stay memory-mapped; the returned model owns the mappings until
     * {@link CausalLm#close()}. Throws {@link IllegalArgumentException} with a clear message for
     * configurations or tensors this architecture cannot serve.
     */
    CausalLm load(ModelSource source) throws IOException;
}
