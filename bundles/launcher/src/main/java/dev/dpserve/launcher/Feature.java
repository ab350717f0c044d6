// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.launcher;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A feature descriptor ({@code features/<name>.json}, OSGi Feature style): a named set of bundles
 * given as Maven ids {@code group:artifact:version}, each with a start order (lower starts first).
 * The distribution keeps the jars in {@code bundle/} as {@code artifact-version.jar}.
 */
record Feature(String id, List<BundleRef> bundles) {

    record BundleRef(String mavenId, int startOrder) {
        String fileName() {
            String[] gav = mavenId.split(":");
            if (gav.length != 3) throw new IllegalArgumentException("bundle id must be group:artifact:version, got " + mavenId);
            return gav[1] + "-" + gav[2] + ".jar";
        }
    }

    static Feature read(Path file) throws IOException {
        JsonNode root = new ObjectMapper().readTree(file.toFile());
        List<BundleRef> refs = new ArrayList<>();
        for (JsonNode b : root.path("bundles")) {
            refs.add(new BundleRef(b.path("id").asText(), b.path("start-order").asInt(10)));
        }
        if (refs.isEmpty()) throw new IOException("feature " + file + " lists no bundles");
        return new Feature(root.path("id").asText(file.getFileName().toString()), refs);
    }
}
