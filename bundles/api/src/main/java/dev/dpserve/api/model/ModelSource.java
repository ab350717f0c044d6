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
 */
public record ModelSource(Path dir, Map<String, Object> config, String dtype) {
    public ModelSource {
        // config.json values may be null (e.g. "rope_scaling": null): no Map.copyOf here.
        config = Collections.unmodifiableMap(new LinkedHashMap<>(config));
    }
}
