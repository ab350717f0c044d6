// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.launcher;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.Iterator;
import java.util.Map;
import java.util.stream.Stream;

/**
 * A launcher's private run directory: every process it starts (its own front end too) gets the
 * path as the framework property {@code dpserve.run.dir} and reports its state there as
 * {@code NAME.json} (see the transport's {@code LaunchContext}): {@code frontend.json},
 * {@code engine-R.json}, and whatever other child JVMs add. The launcher decides readiness and
 * failure from these files, never from log wording, and builds the run file ({@code --run-file})
 * from them. Deleted when the launcher exits.
 */
final class RunDir {

    static final ObjectMapper JSON = new ObjectMapper();

    private final Path dir;

    private RunDir(Path dir) {
        this.dir = dir;
    }

    static RunDir create() throws IOException {
        return new RunDir(Files.createTempDirectory("dpserve-run-"));
    }

    /** An existing run directory (a child process's view of its launcher's). */
    static RunDir of(Path dir) { return new RunDir(dir); }

    Path path() { return dir; }

    /** The state file {@code name.json}, or null if it does not exist (yet) or cannot be read. */
    JsonNode read(String name) {
        Path f = dir.resolve(name + ".json");
        if (!Files.isRegularFile(f)) return null;
        try {
            return JSON.readTree(f.toFile()); // written atomically (rename), so never half a file
        } catch (IOException e) {
            return null;
        }
    }

    /** {@code "state"} of a state file: "starting", "ready", "failed", or null if there is none. */
    String state(String name) {
        JsonNode n = read(name);
        return n == null ? null : n.path("state").asText(null);
    }

    /** {@code "error"} of a state file, or null. */
    String error(String name) {
        JsonNode n = read(name);
        return n == null || !n.hasNonNull("error") ? null : n.path("error").asText();
    }

    /** Every endpoint any process reported as bound: {process, pid, name, endpoint, type}, sorted by process. */
    ArrayNode boundEndpoints() {
        ArrayNode out = JSON.createArrayNode();
        try (Stream<Path> files = Files.list(dir)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".json")).sorted().toList()) {
                String name = f.getFileName().toString().replaceFirst("\\.json$", "");
                JsonNode n = read(name);
                if (n == null) continue;
                for (Iterator<Map.Entry<String, JsonNode>> it = n.path("endpoints").fields(); it.hasNext(); ) {
                    Map.Entry<String, JsonNode> e = it.next();
                    ObjectNode o = out.addObject();
                    o.put("process", name);
                    o.put("pid", n.path("pid").asLong());
                    o.put("name", e.getKey());
                    o.put("endpoint", e.getValue().asText());
                    o.put("type", n.path("socketTypes").path(e.getKey()).asText("unknown"));
                }
            }
        } catch (IOException e) {
            // the directory is gone: the launcher is exiting
        }
        return out;
    }

    /** Writes {@code json} to {@code file} atomically (a temp file in the same directory, then a rename). */
    static void writeAtomically(Path file, JsonNode json) throws IOException {
        Path abs = file.toAbsolutePath();
        Files.createDirectories(abs.getParent());
        Path tmp = Files.createTempFile(abs.getParent(), abs.getFileName().toString(), ".tmp");
        Files.write(tmp, JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(json));
        Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    /** Deletes the directory (best effort). */
    void delete() {
        try (Stream<Path> walk = Files.walk(dir)) {
            walk.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException ignored) {
            // a temp dir left behind is harmless
        }
    }
}
