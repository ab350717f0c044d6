// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.transport;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.osgi.framework.BundleContext;

import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What the {@code dpserve} launcher hands every process of a deployment it starts (front end,
 * engines, and any other child JVM), as framework properties, so that no component needs its
 * own configuration key for them:
 * <ul>
 *   <li>{@value #CLUSTER_KEY_FILE}: absolute path of the cluster key file ({@code --cluster-key-file});
 *       absent for a plain loopback deployment. Every ZeroMQ socket of the process uses it.</li>
 *   <li>{@value #RUN_DIR}: a directory private to one launcher in which components report their
 *       state as small JSON files ({@code NAME.json}, written atomically). The launcher reads
 *       them for readiness and failures (instead of matching log lines) and for the run file
 *       ({@code --run-file}). Absent when nobody listens.</li>
 * </ul>
 * A state file is a JSON object with at least {@code "state"} ({@code "starting"},
 * {@code "ready"} or {@code "failed"}), {@code "pid"}, and optionally {@code "error"} (a message
 * for the user), {@code "endpoints"} (name → every ZeroMQ endpoint the process bound) and
 * {@code "socketTypes"} (name → the bound socket's ZeroMQ type, e.g. {@code ROUTER}).
 */
public final class LaunchContext {

    /** Framework property: absolute path of the cluster key file. */
    public static final String CLUSTER_KEY_FILE = "dpserve.cluster.key.file";
    /** Framework property: the launcher's run directory. */
    public static final String RUN_DIR = "dpserve.run.dir";

    private static final System.Logger LOG = System.getLogger(LaunchContext.class.getName());
    private static final ObjectMapper JSON = new ObjectMapper();

    private LaunchContext() {
    }

    /**
     * The deployment's cluster key, or null without {@value #CLUSTER_KEY_FILE} (or without a
     * context: components constructed by tests).
     *
     * @throws IllegalStateException naming the file and the problem if it cannot be loaded (the
     *                               launcher checked it at startup, so this means it changed since)
     */
    public static ClusterKeys clusterKeys(BundleContext context) {
        String file = context == null ? null : context.getProperty(CLUSTER_KEY_FILE);
        if (file == null || file.isBlank()) return null;
        try {
            return ClusterKeys.load(Path.of(file));
        } catch (IOException e) {
            throw new IllegalStateException("--cluster-key-file: " + e.getMessage(), e);
        }
    }

    /**
     * Writes {@code RUN_DIR/name.json} with {@code fields} plus {@code "pid"}; does nothing without
     * a run directory (or without a context). Failures are logged, never thrown: reporting must not break serving.
     */
    public static void report(BundleContext context, String name, Map<String, ?> fields) {
        String dir = context == null ? null : context.getProperty(RUN_DIR);
        if (dir == null || dir.isBlank()) return;
        Map<String, Object> out = new LinkedHashMap<>(fields);
        out.put("pid", ProcessHandle.current().pid());
        Path target = Path.of(dir).resolve(name + ".json");
        try {
            Path tmp = Files.createTempFile(target.getParent(), name, ".tmp");
            Files.write(tmp, JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(out));
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException | RuntimeException e) {
            LOG.log(Level.WARNING, "cannot write the state file " + target + ": " + e);
        }
    }
}
