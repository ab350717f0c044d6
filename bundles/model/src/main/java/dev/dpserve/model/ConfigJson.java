// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/** Reads a model directory's config.json into the plain-value map a {@code ModelSource} carries. */
public final class ConfigJson {

    private ConfigJson() {
    }

    /**
     * config.json as Map/List/String/Number/Boolean values. Top-level null values (such as
     * {@code "rope_scaling": null}) are dropped, because {@code ModelSource} copies the map with
     * {@code Map.copyOf}, which rejects nulls; absent and null mean the same to the architectures.
     */
    public static Map<String, Object> read(Path dir) throws IOException {
        Map<String, Object> raw = new ObjectMapper().readValue(dir.resolve("config.json").toFile(), new TypeReference<>() { });
        Map<String, Object> config = new LinkedHashMap<>();
        raw.forEach((k, v) -> {
            if (v != null) config.put(k, v);
        });
        return config;
    }
}
