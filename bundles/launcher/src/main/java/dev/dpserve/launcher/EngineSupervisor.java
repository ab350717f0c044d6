// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.launcher;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

/**
 * The engine processes a data-parallel launcher started, one per local DP rank, and on the head
 * the DP coordinator process (rank {@link #COORDINATOR}). Each child's
 * stdout and stderr go to the launcher's stderr, every line prefixed with {@code [dpR]}. A child
 * that exits while the launcher is not stopping is reported ("engine dp1 (pid X) exited with N");
 * the front end finds out on its own (ENGINE_DEAD or silence) and turns /health to 503.
 *
 * <p>{@link #signalAll()} then {@link #awaitAll} stop every child by its PID: SIGTERM, a grace
 * period, then SIGKILL, so that nothing outlives the launcher. Thread-safe.
 */
final class EngineSupervisor {

    /** One engine process; it reports its state in {@code engine-RANK.json} of the launcher's {@link RunDir}. */
    record Child(int rank, Process process) {
        long pid() { return process.pid(); }

        String stateFile() { return "engine-" + rank; }
    }

    private final PrintStream err;
    private final List<Child> children = new CopyOnWriteArrayList<>();
    private volatile boolean stopping;

    EngineSupervisor(PrintStream err) {
        this.err = err;
    }

    /** Starts the engine process of {@code rank}. */
    Child start(int rank, List<String> command) throws IOException {
        return start(rank, command, Map.of());
    }

    /** Starts the engine process of {@code rank} with {@code env} added to this process's environment. */
    Child start(int rank, List<String> command, Map<String, String> env) throws IOException {
        if (stopping) throw new IllegalStateException("the launcher is stopping");
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
        pb.environment().putAll(env);
        Process p = pb.start();
        Child child = new Child(rank, p);
        children.add(child);
        String prefix = "[" + label(rank) + "] ";
        Thread.ofPlatform().name("dp" + rank + "-log").daemon().start(() -> pump(child, prefix));
        p.onExit().thenAccept(done -> {
            if (!stopping) err.println("dpserve: " + (rank < 0 ? "" : "engine ") + label(rank) + " (pid " + done.pid() + ") exited with " + done.exitValue());
        });
        return child;
    }

    /** {@code dpR} for an engine, {@code coordinator} for the DP coordinator (started with rank {@value #COORDINATOR}). */
    static String label(int rank) {
        return rank == COORDINATOR ? "coordinator" : "dp" + rank;
    }

    /** The rank under which the DP coordinator process is supervised. */
    static final int COORDINATOR = -1;

    private void pump(Child child, String prefix) {
        try (BufferedReader in = new BufferedReader(new InputStreamReader(child.process().getInputStream(), StandardCharsets.UTF_8))) {
            for (String line; (line = in.readLine()) != null; ) {
                err.println(prefix + line);
            }
        } catch (IOException ignored) {
            // the child is gone; its exit is reported by onExit
        }
    }

    List<Child> children() { return List.copyOf(children); }

    /** True once {@link #signalAll()} ran. */
    boolean stopping() { return stopping; }

    /** True once every child has reported {@code "state": "ready"} (its rank joined the head) in {@code run}. */
    boolean allReady(RunDir run) {
        return !children.isEmpty() && children.stream().allMatch(c -> "ready".equals(run.state(c.stateFile())));
    }

    /** The first child (in rank order) that reported {@code "state": "failed"} in {@code run}, or null. */
    Child firstFailed(RunDir run) {
        return children.stream().filter(c -> "failed".equals(run.state(c.stateFile()))).findFirst().orElse(null);
    }

    /** Children that have exited, in rank order. */
    List<Child> exited() {
        return children.stream().filter(c -> !c.process().isAlive()).toList();
    }

    /** Sends SIGTERM to every child still running (by PID); from now on exits are expected, not reported. */
    void signalAll() {
        stopping = true;
        for (Child c : children) if (c.process().isAlive()) c.process().destroy();
    }

    /** Waits for every child up to {@code graceMillis} in total, then kills the rest (SIGKILL) and reaps them. */
    void awaitAll(long graceMillis) {
        signalAll();
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(graceMillis);
        for (Child c : children) {
            try {
                long left = Math.max(0, deadline - System.nanoTime());
                if (!c.process().waitFor(left, TimeUnit.NANOSECONDS)) {
                    err.println("dpserve: engine dp" + c.rank() + " (pid " + c.pid() + ") ignored SIGTERM; killing it");
                    c.process().destroyForcibly();
                    c.process().waitFor(10, TimeUnit.SECONDS);
                }
            } catch (InterruptedException e) {
                c.process().destroyForcibly();
                Thread.currentThread().interrupt();
            }
        }
    }
}
