// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.itests;

import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.File;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The built distribution's {@code bin/dpserve serve} running as a real process on loopback.
 * {@link #close()} stops it by PID (SIGTERM, then a forced kill after 60 s, which fails the test).
 */
final class ServerProcess implements AutoCloseable {

    final Process process;
    final Path log;
    final String base;
    final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    private ServerProcess(Process process, Path log, String base) {
        this.process = process;
        this.log = log;
        this.base = base;
    }

    /** Starts {@code dpserve serve MODEL --host 127.0.0.1 --port P --served-model-name NAME extra...} and waits until ready. */
    static ServerProcess start(Path model, String servedName, String logName, String... extra) throws Exception {
        return start(false, model, servedName, logName, extra);
    }

    /**
     * As {@link #start(Path, String, String, String...)}; with {@code console} the server gets
     * {@code --console} and a pipe on stdin, so a test can type Gogo commands ({@link #type}).
     */
    static ServerProcess start(boolean console, Path model, String servedName, String logName, String... extra) throws Exception {
        int port = TestSupport.freePort();
        Path log = TestSupport.work().resolve(logName);
        List<String> cmd = new ArrayList<>(List.of(TestSupport.dist().resolve("bin/dpserve").toString(), "serve", model.toString(),
                "--host", "127.0.0.1", "--port", Integer.toString(port), "--served-model-name", servedName));
        cmd.addAll(List.of(extra));
        if (console) cmd.add("--console");
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().put("DPSERVE_CACHE_DIR", TestSupport.work().resolve("cache").toString());
        pb.redirectErrorStream(true).redirectOutput(log.toFile());
        if (!console) pb.redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
        ServerProcess s = new ServerProcess(pb.start(), log, "http://127.0.0.1:" + port);
        String ready = "dpserve: serving " + servedName + " on http://127.0.0.1:" + port;
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(180);
        while (System.nanoTime() < deadline) {
            if (!s.process.isAlive()) fail("server exited with " + s.process.exitValue() + ":\n" + Files.readString(log));
            try {
                // Ready means both: the API answers and the launcher has announced it.
                if (s.get("/v1/models").statusCode() == 200 && Files.readString(log).contains(ready)) return s;
            } catch (IOException notYet) {
                // not listening yet
            }
            Thread.sleep(300);
        }
        s.close();
        fail("server did not come up in 180 s:\n" + Files.readString(log));
        return null;
    }

    /**
     * Starts {@code dpserve serve MODEL extra...} for a launcher without HTTP (a {@code --headless}
     * node) and returns at once: its readiness is a log line ({@link #awaitLog}), or the head's.
     */
    static ServerProcess startHeadless(Path model, String logName, String... extra) throws Exception {
        Path log = TestSupport.work().resolve(logName);
        List<String> cmd = new ArrayList<>(List.of(TestSupport.dist().resolve("bin/dpserve").toString(), "serve", model.toString()));
        cmd.addAll(List.of(extra));
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().put("DPSERVE_CACHE_DIR", TestSupport.work().resolve("cache").toString());
        pb.redirectErrorStream(true).redirectOutput(log.toFile()).redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
        return new ServerProcess(pb.start(), log, null);
    }

    /**
     * Starts a head ({@code dpserve serve MODEL --host 127.0.0.1 --port P extra...}) and returns at
     * once, for heads that are expected to fail ({@link #awaitExit}) or whose readiness is awaited later.
     */
    static ServerProcess startNoWait(Path model, String logName, String... extra) throws Exception {
        int port = TestSupport.freePort();
        List<String> args = new ArrayList<>(List.of("--host", "127.0.0.1", "--port", Integer.toString(port)));
        args.addAll(List.of(extra));
        ServerProcess s = startHeadless(model, logName, args.toArray(String[]::new));
        return new ServerProcess(s.process, s.log, "http://127.0.0.1:" + port);
    }

    /** Waits until the API answers and the launcher announced it is serving; fails if the process exits first. */
    void awaitServing(String servedName, int seconds) throws Exception {
        String ready = "dpserve: serving " + servedName + " on " + base;
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (System.nanoTime() < deadline) {
            if (!process.isAlive()) fail("server exited with " + process.exitValue() + ":\n" + Files.readString(log));
            try {
                if (get("/v1/models").statusCode() == 200 && Files.readString(log).contains(ready)) return;
            } catch (IOException notYet) {
                // not listening yet
            }
            Thread.sleep(300);
        }
        fail("server did not come up in " + seconds + " s:\n" + Files.readString(log));
    }

    /** Waits for the process to exit by itself and returns its status; fails after {@code seconds}. */
    int awaitExit(int seconds) throws Exception {
        if (!process.waitFor(seconds, TimeUnit.SECONDS)) {
            fail("process " + process.pid() + " still running after " + seconds + " s:\n" + Files.readString(log));
        }
        return process.exitValue();
    }

    /** Waits until the log contains {@code text}; fails if the process exits first or after {@code seconds}. */
    void awaitLog(String text, int seconds) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (System.nanoTime() < deadline) {
            String out = Files.readString(log);
            if (out.contains(text)) return;
            if (!process.isAlive()) fail("process exited with " + process.exitValue() + " before logging '" + text + "':\n" + out);
            Thread.sleep(300);
        }
        fail("no '" + text + "' in " + seconds + " s:\n" + Files.readString(log));
    }

    /** Types one line into the console of a server started with {@code console}. */
    void type(String line) throws IOException {
        process.getOutputStream().write((line + "\n").getBytes(java.nio.charset.StandardCharsets.UTF_8));
        process.getOutputStream().flush();
    }

    HttpResponse<String> get(String path) throws IOException, InterruptedException {
        return http.send(HttpRequest.newBuilder(URI.create(base + path)).timeout(Duration.ofSeconds(30)).GET().build(),
                HttpResponse.BodyHandlers.ofString());
    }

    HttpResponse<String> post(String path, String json) throws IOException, InterruptedException {
        return http.send(HttpRequest.newBuilder(URI.create(base + path)).header("Content-Type", "application/json")
                .timeout(Duration.ofSeconds(120)).POST(HttpRequest.BodyPublishers.ofString(json)).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    @Override
    public void close() throws Exception {
        long pid = process.pid();
        ProcessHandle.of(pid).ifPresent(ProcessHandle::destroy); // SIGTERM to exactly this PID
        if (!process.waitFor(60, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            fail("server " + pid + " ignored SIGTERM for 60 s");
        }
        String out = Files.readString(log);
        // 143 = terminated by SIGTERM after the shutdown hooks ran (the JVM's exit status for it).
        assertTrue("exit status " + process.exitValue() + "\n" + out, process.exitValue() == 0 || process.exitValue() == 143);
        assertFalse("no uncaught exceptions in the log:\n" + out, out.contains("Exception in thread"));
    }
}
