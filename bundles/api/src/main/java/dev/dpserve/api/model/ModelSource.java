// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.model;

import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What an architecture needs to load a model.
 *
 * @param dir    the Hugging Face model directory (config.json, *.safetensors, ...)
 * @param config config.json parsed into plain Java values (Map, List, String, Number, Boolean, null)
 * @param dtype  requested compute/weight dtype as in vLLM's {@code --dtype}: "auto", "float32",
 *               "bfloat16", "float16"
 * @param quantization weight quantization as in vLLM's {@code --quantization}: "none" (or null),
 *               or "w8a8" (dynamic W8A8: the projections' weights are quantized to int8 at load
 *               with one scale per output channel, activations per token at run time)
 */
public record ModelSource(Path dir, Map<String, Object> config, String dtype, String quantization) {
    public ModelSource {
        // config.json values may be null (e.g. "rope_scaling": null): no Map.copyOf here.
        config = Collections.unmodifiableMap(new LinkedHashMap<>(config));
        quantization = quantization == null || quantization.isBlank() ? "none" : quantization;
    }

    /** Without quantization. */
    public ModelSource(Path dir, Map<String, Object> config, String dtype) {
        this(dir, config, dtype, "none");
    }
}
