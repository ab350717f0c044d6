// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.itests;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.dpserve.model.generate.CheckpointGenerator;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.jar.JarFile;

/** Paths and helpers shared by the integration tests (host side). */
final class TestSupport {

    static final List<String> SERVER_FEATURES = List.of("runtime", "http", "engine", "rest", "shell");

    private TestSupport() {
    }

    static Path dist() {
        Path d = Path.of(System.getProperty("dpserve.dist", "../distribution/target/dpserve")).toAbsolutePath().normalize();
        if (!Files.isDirectory(d.resolve("bundle"))) throw new IllegalStateException("distribution not built at " + d);
        return d;
    }

    static Path work() throws IOException {
        Path w = Path.of(System.getProperty("dpserve.work", "target/work")).toAbsolutePath().normalize();
        Files.createDirectories(w);
        return w;
    }

    static Path fixture(String name) {
        return Path.of(System.getProperty("dpserve.fixtures", "../bundles/model/src/test/resources/fixtures")).resolve(name)
                .toAbsolutePath().normalize();
    }

    /** A tiny generated Llama checkpoint (deterministic), made once per build. */
    static synchronized Path tinyModel() throws IOException {
        Path dir = work().resolve("tiny-llama");
        if (Files.isRegularFile(dir.resolve("config.json"))) return dir;
        CheckpointGenerator.generate(CheckpointGenerator.Options.parse("--arch", "llama", "--out", dir.toString(), "--seed", "7",
                "--hidden", "64", "--layers", "2", "--heads", "4", "--kv-heads", "2", "--intermediate", "128", "--vocab", "512"));
        return dir;
    }

    record BundleJar(Path jar, int startOrder, boolean fragment) {
    }

    /** The jars of the given features, in feature order, as the launcher installs them. */
    static List<BundleJar> bundles(List<String> features) throws IOException {
        ObjectMapper om = new ObjectMapper();
        List<BundleJar> out = new ArrayList<>();
        for (String f : features) {
            JsonNode root = om.readTree(dist().resolve("features").resolve(f + ".json").toFile());
            for (JsonNode b : root.path("bundles")) {
                String[] gav = b.path("id").asText().split(":");
                Path jar = dist().resolve("bundle").resolve(gav[1] + "-" + gav[2] + ".jar");
                try (JarFile jf = new JarFile(jar.toFile())) {
                    boolean fragment = jf.getManifest().getMainAttributes().getValue("Fragment-Host") != null;
                    out.add(new BundleJar(jar, b.path("start-order").asInt(10), fragment));
                }
            }
        }
        return out;
    }

    /** A new cluster key file made by the distribution's {@code dpserve keygen --out FILE} (mode 600). */
    static Path keygen(String name) throws Exception {
        Path file = work().resolve("keys").resolve(name + "-" + System.nanoTime() + ".key");
        Files.createDirectories(file.getParent());
        Process p = new ProcessBuilder(dist().resolve("bin/dpserve").toString(), "keygen", "--out", file.toString())
                .redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        if (p.waitFor() != 0 || !Files.isRegularFile(file)) throw new IllegalStateException("dpserve keygen failed: " + out);
        return file;
    }

    /** Waits for a launcher's run file ({@code --run-file}) and parses it. */
    static JsonNode awaitRunFile(Path file, int seconds) throws Exception {
        long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(seconds);
        while (System.nanoTime() < deadline) {
            if (Files.isRegularFile(file)) return new ObjectMapper().readTree(file.toFile()); // written atomically
            Thread.sleep(200);
        }
        throw new AssertionError("no run file " + file + " after " + seconds + " s");
    }

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }
}
