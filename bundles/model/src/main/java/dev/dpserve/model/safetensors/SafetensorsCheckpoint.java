// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model.safetensors;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.dpserve.api.tensor.Tensor;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * All safetensors weights of a Hugging Face model directory, memory-mapped into one shared arena:
 * either the shards listed by {@code model.safetensors.index.json} (its {@code weight_map}) or a
 * single {@code model.safetensors}. Tensors are valid until {@link #close()}; they may be read
 * from any thread.
 */
public final class SafetensorsCheckpoint implements AutoCloseable {

    public static final String INDEX_FILE = "model.safetensors.index.json";
    public static final String SINGLE_FILE = "model.safetensors";

    private final Arena arena;
    private final Map<String, Tensor> tensors;
    private final List<Path> files;

    private SafetensorsCheckpoint(Arena arena, Map<String, Tensor> tensors, List<Path> files) {
        this.arena = arena;
        this.tensors = tensors;
        this.files = files;
    }

    public static SafetensorsCheckpoint open(Path dir) throws IOException {
        Arena arena = Arena.ofShared();
        try {
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            List<Path> files = new ArrayList<>();
            Path index = dir.resolve(INDEX_FILE);
            if (Files.isRegularFile(index)) {
                Map<String, String> weightMap = readWeightMap(index);
                for (String file : new TreeSet<>(weightMap.values())) {
                    Path shard = dir.resolve(file).normalize();
                    if (!shard.startsWith(dir.normalize()) || !Files.isRegularFile(shard)) {
                        throw new IOException(index + ": shard " + file + " is missing or outside " + dir);
                    }
                    files.add(shard);
                    SafetensorsFile sf = SafetensorsFile.open(shard, arena);
                    for (Map.Entry<String, String> e : weightMap.entrySet()) {
                        if (!e.getValue().equals(file)) continue;
                        Tensor t = sf.tensors().get(e.getKey());
                        if (t == null) throw new IOException(index + ": tensor " + e.getKey() + " not found in " + file);
                        tensors.put(e.getKey(), t);
                    }
                }
            } else {
                Path single = dir.resolve(SINGLE_FILE);
                if (Files.isRegularFile(single)) {
                    files.add(single);
                } else {
                    try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, "*.safetensors")) {
                        ds.forEach(files::add);
                    }
                    Collections.sort(files);
                }
                if (files.isEmpty()) throw new IOException(dir + ": no " + SINGLE_FILE + ", " + INDEX_FILE + " or *.safetensors");
                for (Path f : files) {
                    for (Tensor t : SafetensorsFile.open(f, arena).tensors().values()) {
                        if (tensors.put(t.name(), t) != null) throw new IOException(f + ": tensor " + t.name() + " also in another file");
                    }
                }
            }
            return new SafetensorsCheckpoint(arena, Collections.unmodifiableMap(tensors), List.copyOf(files));
        } catch (IOException | RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    private static Map<String, String> readWeightMap(Path index) throws IOException {
        JsonNode root = new ObjectMapper().readTree(index.toFile());
        JsonNode map = root == null ? null : root.get("weight_map");
        if (map == null || !map.isObject()) throw new IOException(index + ": no weight_map object");
        Map<String, String> weightMap = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = map.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (!e.getValue().isTextual()) throw new IOException(index + ": weight_map value for " + e.getKey() + " is not a file name");
            weightMap.put(e.getKey(), e.getValue().asText());
        }
        return weightMap;
    }

    /** All tensors by name. */
    public Map<String, Tensor> tensors() {
        return tensors;
    }

    /** The named tensor; IllegalArgumentException if absent. */
    public Tensor get(String name) {
        Tensor t = tensors.get(name);
        if (t == null) throw new IllegalArgumentException("checkpoint has no tensor " + name);
        return t;
    }

    public boolean contains(String name) {
        return tensors.containsKey(name);
    }

    public List<Path> files() {
        return files;
    }

    /** Unmaps all files; tensors from this checkpoint must no longer be used. */
    @Override
    public void close() {
        if (arena.scope().isAlive()) arena.close();
    }
}
