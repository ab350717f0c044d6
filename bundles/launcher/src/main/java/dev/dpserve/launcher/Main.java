// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.launcher;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

/**
 * The {@code dpserve} command line. {@code bin/dpserve} runs it with the distribution home in the
 * system property {@code dpserve.home}.
 */
public final class Main {

    static final String VERSION = "0.1.0";
    /** Features every single-process server installs. */
    static final List<String> SERVER_FEATURES = List.of("runtime", "http", "engine", "rest", "shell");
    /** Features of a data-parallel front end: no in-process engine, the DP client of the transport feature instead. */
    static final List<String> FRONT_END_FEATURES = List.of("runtime", "http", "transport", "rest", "shell");
    /** Features of one DP engine process: the in-process engine and its bridge to the front end; no HTTP. */
    static final List<String> ENGINE_FEATURES = List.of("runtime", "engine", "transport");
    /** Features of the DP coordinator process (N > 1, head only): its sockets come from the transport. */
    static final List<String> COORDINATOR_FEATURES = List.of("runtime", "transport", "coordinator");
    private static final String ENGINE_SERVICE = "dev.dpserve.api.engine.InferenceEngine";

    private Main() {
    }

    public static void main(String[] args) {
        System.setProperty("java.util.logging.SimpleFormatter.format", "%1$tF %1$tT %4$s %3$s - %5$s%6$s%n");
        int code;
        try {
            code = run(Arrays.asList(args), System.out, System.err);
        } catch (ServeOptions.UsageException e) {
            System.err.println("dpserve: error: " + e.getMessage());
            code = 2;
        } catch (Exception e) {
            System.err.println("dpserve: " + e);
            code = 1;
        }
        if (code >= 0) System.exit(code);
    }

    /** Runs a command; returns the exit code, or -1 when a server keeps running in other threads. */
    static int run(List<String> args, PrintStream out, PrintStream err) throws Exception {
        if (args.isEmpty() || args.get(0).equals("--help") || args.get(0).equals("help")) {
            out.print(usage());
            return args.isEmpty() ? 2 : 0;
        }
        String command = args.get(0);
        List<String> rest = args.subList(1, args.size());
        return switch (command) {
            case "serve" -> serve(rest, out, err);
            case "make-model" -> ModelGenerator.run(rest, out, err);
            case "keygen" -> keygen(rest, out);
            case "bench" -> dev.dpserve.launcher.bench.BenchCommand.run(rest, out, err);
            case "version", "--version" -> {
                out.println("dpserve " + VERSION);
                yield 0;
            }
            default -> throw new ServeOptions.UsageException("unknown command '" + command + "'\n" + usage());
        };
    }

    static String usage() {
        return """
                usage: dpserve <command> [args]

                commands:
                  serve [MODEL_DIR] [flags]   serve a Hugging Face model (default: a tiny generated model) over
                                              an OpenAI-compatible API; 'dpserve serve --help' lists the flags
                  bench serve [flags]         load-test a running server with vLLM's `bench serve` options and
                                              metrics; 'dpserve bench serve --help' lists the flags
                  make-model --arch A --out D generate a tiny deterministic checkpoint (random weights)
                  keygen --out FILE           create a cluster key (CurveZMQ) for multi-node data parallel
                  version                     print the version
                """;
    }

    private static int serve(List<String> args, PrintStream out, PrintStream err) throws Exception {
        if (args.contains("--help") || args.contains("-h")) {
            out.print(new ServeOptions().help());
            return 0;
        }
        ServeOptions o = ServeOptions.parse(args);
        for (String n : o.notices) err.println("dpserve: " + n);
        Path keyFile = checkClusterKey(o);
        Path modelDir = o.model != null ? Path.of(o.model).toAbsolutePath().normalize() : ModelGenerator.defaultModel(err);
        String modelType = checkModelDir(modelDir);
        Path home = home();

        Map<String, Object> engine = engineConfig(o, modelDir, modelType);
        if (o.role.equals("engine")) return serveEngine(o, modelDir, engine, home, keyFile, err);
        if (o.role.equals("coordinator")) return serveCoordinator(o, home, keyFile, err);
        if (o.dataParallelSize > 1 || o.separateEngineProcess) {
            String nodeAddress = nodeAddress(o);
            RunDir run = RunDir.create();
            if (o.headless) return serveHeadless(args, o, modelDir, home, keyFile, nodeAddress, run, err);
            return serveDataParallel(args, o, modelDir, engine, home, keyFile, nodeAddress, run, err);
        }

        Map<String, Map<String, Object>> configs = new HashMap<>();
        configs.put("dev.dpserve.engine", engine);
        if (!o.ascendSchedulerConfig.isEmpty()) configs.put("dev.dpserve.scheduler.ascend", new HashMap<>(o.ascendSchedulerConfig));

        boolean console = console(o);
        FelixRuntime runtime = new FelixRuntime(home);
        Runtime.getRuntime().addShutdownHook(new Thread(runtime::stop, "dpserve-shutdown"));
        runtime.start(SERVER_FEATURES, httpProperties(o), configs, console);

        if (runtime.awaitService(ENGINE_SERVICE, 600_000) == null) {
            if (!running(runtime)) {
                return 0; // stopped (shell "stop 0" or SIGTERM) while the model was loading
            }
            err.println("dpserve: the engine did not come up within 600 s (see the log above); stopping");
            runtime.stop();
            return 1;
        }
        awaitEndpoints(o, runtime, err);
        err.println("dpserve: serving " + engine.get("served.model.name") + " on http://" + o.host + ":" + o.port
                + (console ? " (Gogo shell on this terminal: try dpserve:status)" : ""));
        runtime.framework().waitForStop(0);
        return 0;
    }

    /**
     * Waits until the REST endpoints answer (the JAX-RS whiteboard registers them shortly after the
     * engine service appears), so that "serving" is only printed once a client can be served. Gives
     * up after 120 s with a warning.
     */
    private static void awaitEndpoints(ServeOptions o, FelixRuntime runtime, PrintStream err) throws InterruptedException {
        String host = o.host == null || o.host.isBlank() || o.host.equals("0.0.0.0") || o.host.equals("::") ? "127.0.0.1" : o.host;
        java.net.URI uri = java.net.URI.create("http://" + (host.contains(":") ? "[" + host + "]" : host) + ":" + o.port + "/v1/models");
        long deadline = System.nanoTime() + 120_000_000_000L;
        while (running(runtime) && System.nanoTime() < deadline) {
            try {
                java.net.HttpURLConnection c = (java.net.HttpURLConnection) uri.toURL().openConnection();
                c.setConnectTimeout(1000);
                c.setReadTimeout(5000);
                int code = c.getResponseCode();
                c.getInputStream().close();
                c.disconnect();
                if (code == 200) return;
            } catch (java.io.IOException e) {
                // not up yet (404 throws here too)
            }
            Thread.sleep(100);
        }
        if (running(runtime)) err.println("dpserve: warning: " + uri + " did not answer 200 within 120 s");
    }

    private static Map<String, Object> engineConfig(ServeOptions o, Path modelDir, String modelType) {
        Map<String, Object> engine = new HashMap<>();
        engine.put("model", modelDir.toString());
        engine.put("served.model.name", o.servedModelName != null ? o.servedModelName : (o.model != null ? o.model : modelDir.toString()));
        engine.put("max.model.len", o.maxModelLen);
        engine.put("max.num.seqs", o.maxNumSeqs);
        engine.put("max.num.batched.tokens", o.maxNumBatchedTokens);
        engine.put("seed", o.seed);
        engine.put("dtype", o.dtype);
        engine.put("quantization", o.quantization);
        engine.put("architecture.target", "(dpserve.model.type=" + modelType + ")");
        engine.put("block.size", o.blockSize);
        engine.put("enable.prefix.caching", o.enablePrefixCaching);
        engine.put("gpu.memory.utilization", o.gpuMemoryUtilization);
        engine.put("device.memory", o.deviceMemory);
        engine.put("kv.cache.memory", o.kvCacheMemory);
        engine.put("long.prefill.token.threshold", o.longPrefillTokenThreshold);
        engine.put("scheduler", o.scheduler);
        engine.put("data.parallel.size.local", o.dataParallelSizeLocal);
        return engine;
    }

    private static Map<String, String> httpProperties(ServeOptions o) {
        Map<String, String> fw = new HashMap<>();
        fw.put("org.osgi.service.http.port", Integer.toString(o.port));
        fw.put("org.apache.felix.http.host", o.host);
        fw.putAll(kernelProperties(o));
        return fw;
    }

    /** {@code --kernel-backend NAME}: the model bundle's kernel registry pins that backend from the start. */
    private static Map<String, String> kernelProperties(ServeOptions o) {
        return o.kernelBackend == null ? Map.of() : Map.of("dpserve.kernel.backend", o.kernelBackend);
    }

    private static boolean console(ServeOptions o) {
        return o.console || (System.console() != null && System.console().isTerminal());
    }

    private static boolean running(FelixRuntime runtime) {
        return (runtime.framework().getState() & (org.osgi.framework.Bundle.ACTIVE | org.osgi.framework.Bundle.STARTING)) != 0;
    }

    /**
     * DP > 1 on this node: this process is the front end (HTTP, tokenizer, the DP client that binds
     * the handshake socket) and starts one engine process per rank with the same command line plus
     * the hidden engine flags. The engines connect and retry until the front end binds, so the order
     * does not matter. Stopping the launcher stops every engine by PID.
     */
    private static int serveDataParallel(List<String> args, ServeOptions o, Path modelDir, Map<String, Object> engine,
                                         Path home, Path keyFile, String nodeAddress, RunDir run, PrintStream err) throws Exception {
        int n = o.dataParallelSize;
        Map<String, Object> client = new HashMap<>();
        client.put("model", modelDir.toString());
        client.put("served.model.name", engine.get("served.model.name"));
        client.put("data.parallel.size", n);
        client.put("data.parallel.size.local", o.dataParallelSizeLocal);
        client.put("data.parallel.address", o.dataParallelAddress);
        client.put("data.parallel.rpc.port", o.dataParallelRpcPort);
        client.put("startup.timeout.seconds", o.dataParallelStartupTimeout);
        // The coordinator process (N > 1) binds ports chosen here, so the front end can hand them to the engines.
        // So is the DP group's port (rank 0 binds it): all chosen together, so none collide.
        int[] coordinatorPorts = n > 1 ? freePorts(o.dataParallelAddress, 4, Set.of(o.dataParallelRpcPort, o.port)) : null;
        if (n > 1) {
            client.put("dp.group.port", coordinatorPorts[3]);
            client.put("coordinator.engine.control.address", tcp(o.dataParallelAddress, coordinatorPorts[0]));
            client.put("coordinator.engine.output.address", tcp(o.dataParallelAddress, coordinatorPorts[1]));
            client.put("coordinator.front.end.address", tcp(o.dataParallelAddress, coordinatorPorts[2]));
        }
        Map<String, Map<String, Object>> configs = new HashMap<>();
        configs.put("dev.dpserve.transport.client", client);

        EngineSupervisor engines = new EngineSupervisor(err);
        FelixRuntime runtime = new FelixRuntime(home);
        // Engines get SIGTERM first, so they stop while the front end does; then both are waited for.
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            engines.signalAll();
            runtime.stop();
            engines.awaitAll(30_000);
            run.delete();
            deleteRunFile(o);
        }, "dpserve-shutdown"));
        if (n > 1) startCoordinator(engines, args, o, modelDir, home, coordinatorPorts, run, err);
        startEngines(engines, args, o, modelDir, home, nodeAddress, run, err);
        int local = o.dataParallelSizeLocal;
        if (n == 1) err.println("dpserve: the engine runs in its own process behind the ZMQ protocol (--separate-engine-process)");
        else err.println("dpserve: data parallel size " + n + (local == n ? " on this node" : ": ranks 0.." + (local - 1)
                + " on this node, ranks " + local + ".." + (n - 1) + " must join from --headless nodes at "
                + o.dataParallelAddress + ":" + o.dataParallelRpcPort)
                + (isMoe(modelDir) ? ": MoE model, the ranks step in lockstep (request waves, dummy batches)"
                        : ": dense model, every rank runs independently"));

        boolean console = console(o);
        Map<String, String> fw = httpProperties(o);
        fw.putAll(launchProperties(keyFile, run));
        runtime.start(FRONT_END_FEATURES, fw, configs, console);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(o.dataParallelStartupTimeout + 30L);
        while (runtime.awaitService(ENGINE_SERVICE, 1000) == null) {
            if (!running(runtime)) return 0; // stopped while the engines were loading
            if ("failed".equals(run.state("frontend"))) {
                // The front end's DP startup reports in its state file (see the transport's LaunchContext).
                err.println("dpserve: data-parallel startup failed: " + run.error("frontend") + "; stopping");
                return 1;
            }
            if ("failed".equals(run.state("coordinator"))) {
                err.println("dpserve: data-parallel startup failed: " + run.error("coordinator") + "; stopping");
                return 1;
            }
            List<EngineSupervisor.Child> dead = engines.exited();
            if (!dead.isEmpty()) {
                EngineSupervisor.Child c = dead.getFirst();
                String label = EngineSupervisor.label(c.rank());
                err.println("dpserve: " + label + " (pid " + c.pid() + ") exited with " + c.process().exitValue()
                        + " during startup (see its [" + label + "] lines above); stopping");
                return 1;
            }
            if (System.nanoTime() > deadline) {
                err.println("dpserve: the DP engines did not all join within " + o.dataParallelStartupTimeout
                        + " s (--data-parallel-startup-timeout; see the log above); stopping");
                return 1;
            }
        }
        awaitEndpoints(o, runtime, err);
        err.println("dpserve: serving " + engine.get("served.model.name") + " on http://" + o.host + ":" + o.port
                + " with " + n + " data-parallel engines (local pids "
                + engines.children().stream().map(c -> Long.toString(c.pid())).collect(Collectors.joining(", "))
                + (o.dataParallelSizeLocal < n ? "; " + (n - o.dataParallelSizeLocal) + " from headless nodes" : "") + ")"
                + (keyFile != null ? "; DP sockets use CurveZMQ with the cluster key" : "")
                + (console ? " (Gogo shell on this terminal: try dpserve:status)" : ""));
        writeRunFile(o, "head", nodeAddress, keyFile, engines, run, err);
        runtime.framework().waitForStop(0);
        return 0;
    }

    /**
     * The JVM options of one of {@code localEngines} engine processes on a node of {@code cores}
     * processors: each gets its share of the cores ({@code -XX:ActiveProcessorCount}, at least 1), so
     * that its kernel pool (sized to the processors it sees) does not oversubscribe the node, as
     * vLLM's CPU backend gives each DP rank its own cores. Options already set by the user come after
     * and so win, an ActiveProcessorCount included.
     */
    static String engineJavaOpts(int cores, int localEngines, String userOpts) {
        int share = Math.max(1, cores / Math.max(1, localEngines));
        String own = "-XX:ActiveProcessorCount=" + share;
        return userOpts == null || userOpts.isBlank() ? own : own + " " + userOpts.strip();
    }

    /** Starts this node's engine processes, ranks S..S+L-1: the same command line plus the hidden engine flags. */
    private static void startEngines(EngineSupervisor engines, List<String> args, ServeOptions o, Path modelDir, Path home,
                                     String nodeAddress, RunDir run, PrintStream err) throws IOException {
        List<String> base = new ArrayList<>();
        base.add(home.resolve("bin/dpserve").toString());
        base.add("serve");
        if (o.model == null) base.add(modelDir.toString()); // the generated default model, made once, here
        for (String a : args) if (!a.equals("--console")) base.add(a);
        // Resolved once here, so every child agrees; the last occurrence of a flag wins.
        base.addAll(List.of("--data-parallel-node-address", nodeAddress, "--run-dir", run.path().toString()));
        long self = ProcessHandle.current().pid();
        Map<String, String> env = Map.of("DPSERVE_JAVA_OPTS", engineJavaOpts(Runtime.getRuntime().availableProcessors(),
                o.dataParallelSizeLocal, System.getenv("DPSERVE_JAVA_OPTS")));
        for (int rank = o.dataParallelStartRank; rank < o.dataParallelStartRank + o.dataParallelSizeLocal; rank++) {
            List<String> cmd = new ArrayList<>(base);
            cmd.addAll(List.of("--role", "engine", "--engine-rank", Integer.toString(rank), "--parent-pid", Long.toString(self)));
            EngineSupervisor.Child c = engines.start(rank, cmd, env);
            err.println("dpserve: started engine dp" + rank + " (pid " + c.pid() + ")");
        }
    }

    /** Starts the DP coordinator process: the same command line plus the hidden coordinator flags. */
    private static void startCoordinator(EngineSupervisor engines, List<String> args, ServeOptions o, Path modelDir, Path home,
                                         int[] ports, RunDir run, PrintStream err) throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add(home.resolve("bin/dpserve").toString());
        cmd.add("serve");
        if (o.model == null) cmd.add(modelDir.toString());
        for (String a : args) if (!a.equals("--console")) cmd.add(a);
        cmd.addAll(List.of("--run-dir", run.path().toString()));
        cmd.addAll(List.of("--role", "coordinator", "--coordinator-ports", ports[0] + "," + ports[1] + "," + ports[2],
                "--parent-pid", Long.toString(ProcessHandle.current().pid())));
        EngineSupervisor.Child c = engines.start(EngineSupervisor.COORDINATOR, cmd);
        err.println("dpserve: started the DP coordinator (pid " + c.pid() + ")");
    }

    /**
     * The DP coordinator (head, N > 1): its own JVM with the runtime, transport and coordinator
     * features; it binds the ports its launcher chose on the DP address. Like an engine, it exits
     * when its launcher disappears.
     */
    private static int serveCoordinator(ServeOptions o, Path home, Path keyFile, PrintStream err) throws Exception {
        Map<String, Object> coordinator = new HashMap<>();
        coordinator.put("data.parallel.size", o.dataParallelSize);
        coordinator.put("bind.address", o.dataParallelAddress);
        coordinator.put("engine.control.port", o.coordinatorPorts[0]);
        coordinator.put("engine.output.port", o.coordinatorPorts[1]);
        coordinator.put("front.end.port", o.coordinatorPorts[2]);
        coordinator.put("startup.timeout.seconds", o.dataParallelStartupTimeout);
        followParent(o, "coordinator", err);
        FelixRuntime runtime = new FelixRuntime(home);
        Runtime.getRuntime().addShutdownHook(new Thread(runtime::stop, "dpserve-shutdown"));
        runtime.start(COORDINATOR_FEATURES, launchProperties(keyFile, o.runDir == null ? null : RunDir.of(Path.of(o.runDir))),
                Map.of("dev.dpserve.coordinator", coordinator), false);
        err.println("dpserve: DP coordinator started (pid " + ProcessHandle.current().pid() + ")");
        runtime.framework().waitForStop(0);
        return 0;
    }

    private static void followParent(ServeOptions o, String who, PrintStream err) {
        if (o.parentPid <= 0) return;
        var parent = ProcessHandle.of(o.parentPid);
        if (parent.isEmpty()) {
            err.println("dpserve: " + who + ": launcher " + o.parentPid + " is gone; not starting");
            System.exit(1);
        }
        parent.get().onExit().thenRun(() -> {
            err.println("dpserve: " + who + ": launcher " + o.parentPid + " exited; stopping");
            System.exit(0);
        });
    }

    /**
     * {@code n} ports free on {@code host} now (the child binds them moments later), none of them in
     * {@code reserved}: ports this deployment binds later itself (the rpc and HTTP ports), which may
     * well be free at this moment.
     */
    static int[] freePorts(String host, int n, Set<Integer> reserved) throws IOException {
        java.net.InetAddress address = java.net.InetAddress.getByName(host);
        List<java.net.ServerSocket> open = new ArrayList<>();
        try {
            int[] ports = new int[n];
            for (int i = 0; i < n; ) {
                java.net.ServerSocket s = new java.net.ServerSocket(0, 1, address);
                open.add(s); // held open until all are chosen, so they differ from each other
                if (!reserved.contains(s.getLocalPort())) ports[i++] = s.getLocalPort();
            }
            return ports;
        } finally {
            for (java.net.ServerSocket s : open) s.close();
        }
    }

    static String tcp(String host, int port) {
        return "tcp://" + (host.contains(":") && !host.startsWith("[") ? "[" + host + "]" : host) + ":" + port;
    }

    /**
     * {@code --headless}: no front end and no OSGi framework here, only this node's engine
     * processes (ranks S..S+L-1), which join the head at the DP address as remote, headless ranks.
     * The launcher supervises them: it announces when all have joined, and if one exits (it failed
     * to join, or died later) it stops the others and exits 1. SIGTERM stops every engine by PID.
     */
    private static int serveHeadless(List<String> args, ServeOptions o, Path modelDir, Path home, Path keyFile,
                                     String nodeAddress, RunDir run, PrintStream err) throws Exception {
        EngineSupervisor engines = new EngineSupervisor(err);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            engines.awaitAll(30_000);
            run.delete();
            deleteRunFile(o);
        }, "dpserve-shutdown"));
        startEngines(engines, args, o, modelDir, home, nodeAddress, run, err);
        String head = o.dataParallelAddress + ":" + o.dataParallelRpcPort;
        int first = o.dataParallelStartRank;
        int last = first + o.dataParallelSizeLocal - 1;
        err.println("dpserve: headless node " + nodeAddress + ": engines dp" + first + "..dp" + last + " of " + o.dataParallelSize
                + " joining the head at " + head + (keyFile != null ? " with the cluster key (CurveZMQ)" : ""));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(o.dataParallelStartupTimeout + 30L);
        boolean joined = false;
        while (true) {
            // SIGTERM: the shutdown hook stops the engines; their exits are expected then.
            while (engines.stopping()) Thread.sleep(1000);
            // Engines report in their state files (see the transport's LaunchContext); an exit without one is a crash.
            EngineSupervisor.Child failed = joined ? null : engines.firstFailed(run);
            if (failed != null) {
                err.println("dpserve: headless node: engine dp" + failed.rank() + " (pid " + failed.pid() + ") could not join the head at "
                        + head + ": " + run.error(failed.stateFile()) + "; stopping the other engines");
                engines.awaitAll(30_000);
                return 1;
            }
            List<EngineSupervisor.Child> dead = engines.exited();
            if (!dead.isEmpty()) {
                EngineSupervisor.Child c = dead.getFirst();
                String error = run.error(c.stateFile());
                err.println("dpserve: engine dp" + c.rank() + " (pid " + c.pid() + ") exited with " + c.process().exitValue()
                        + (joined ? "" : " before joining the head at " + head) + (error != null ? ": " + error : "")
                        + " (see its [dp" + c.rank() + "] lines above); stopping the other engines");
                engines.awaitAll(30_000);
                return 1;
            }
            if (!joined && engines.allReady(run)) {
                joined = true;
                err.println("dpserve: headless node: engines dp" + first + "..dp" + last + " joined the head at " + head + " (pids "
                        + engines.children().stream().map(c -> Long.toString(c.pid())).collect(Collectors.joining(", ")) + ")");
                writeRunFile(o, "headless", nodeAddress, keyFile, engines, run, err);
            }
            if (!joined && System.nanoTime() > deadline) {
                err.println("dpserve: the engines did not join the head at " + head + " within " + o.dataParallelStartupTimeout
                        + " s (--data-parallel-startup-timeout; is the head running?); stopping");
                engines.awaitAll(30_000);
                return 1;
            }
            Thread.sleep(250);
        }
    }

    /**
     * {@code --cluster-key-file}: loaded and checked before anything starts, so that a missing,
     * unreadable, world-readable or malformed file is a CLI error (exit 2), not a child failure.
     *
     * @return the absolute path, or null without the flag
     */
    static Path checkClusterKey(ServeOptions o) throws ServeOptions.UsageException {
        if (o.clusterKeyFile == null) return null;
        Path file = Path.of(o.clusterKeyFile).toAbsolutePath().normalize();
        try {
            dev.dpserve.transport.ClusterKeys.load(file);
        } catch (IOException e) {
            throw new ServeOptions.UsageException("argument --cluster-key-file: " + e.getMessage());
        }
        return file;
    }

    /**
     * This node's own address: {@code --data-parallel-node-address}, else the head's address on
     * the head, else (headless) the local address the OS would use to reach the head. It must be
     * an address of this machine (checked by binding a throwaway socket on it).
     */
    static String nodeAddress(ServeOptions o) throws ServeOptions.UsageException {
        String address = o.dataParallelNodeAddress;
        if (address == null && !o.headless) address = o.dataParallelAddress;
        if (address == null) {
            try (java.net.DatagramSocket probe = new java.net.DatagramSocket()) {
                probe.connect(new java.net.InetSocketAddress(o.dataParallelAddress, o.dataParallelRpcPort));
                address = probe.getLocalAddress().getHostAddress(); // no packet is sent: connect only picks a route
            } catch (IOException | RuntimeException e) {
                throw new ServeOptions.UsageException("cannot find this node's address towards the head " + o.dataParallelAddress
                        + " (" + e.getMessage() + "); pass --data-parallel-node-address");
            }
        }
        try (java.net.ServerSocket s = new java.net.ServerSocket(0, 1, java.net.InetAddress.getByName(address))) {
            return address;
        } catch (IOException e) {
            throw new ServeOptions.UsageException("argument --data-parallel-node-address: " + address
                    + " is not an address of this machine (" + e.getMessage() + ")");
        }
    }

    /** Framework properties every process of the deployment gets (read by the transport's LaunchContext). */
    static Map<String, String> launchProperties(Path keyFile, RunDir run) {
        Map<String, String> p = new HashMap<>();
        if (keyFile != null) p.put(dev.dpserve.transport.LaunchContext.CLUSTER_KEY_FILE, keyFile.toString());
        if (run != null) p.put(dev.dpserve.transport.LaunchContext.RUN_DIR, run.path().toString());
        return p;
    }

    /** The run file describes running processes: it goes when they do. */
    private static void deleteRunFile(ServeOptions o) {
        if (o.runFile == null) return;
        try {
            Files.deleteIfExists(Path.of(o.runFile));
        } catch (IOException ignored) {
            // best effort at exit
        }
    }

    /**
     * {@code --run-file FILE}: once this node is ready, a JSON document with the launcher's PID,
     * its role, each local rank's PID and every ZeroMQ endpoint a process of this node bound (from
     * the processes' state files). Written atomically; a failure to write it is reported, not fatal.
     * Deleted when the launcher exits.
     */
    private static void writeRunFile(ServeOptions o, String role, String nodeAddress, Path keyFile, EngineSupervisor engines,
                                     RunDir run, PrintStream err) {
        if (o.runFile == null) return;
        com.fasterxml.jackson.databind.node.ObjectNode root = RunDir.JSON.createObjectNode();
        root.put("role", role);
        root.put("pid", ProcessHandle.current().pid());
        root.put("dataParallelSize", o.dataParallelSize);
        root.put("head", o.dataParallelAddress + ":" + o.dataParallelRpcPort);
        root.put("nodeAddress", nodeAddress);
        root.put("curve", keyFile != null);
        if (role.equals("head")) root.put("http", "http://" + o.host + ":" + o.port);
        com.fasterxml.jackson.databind.node.ArrayNode ranks = root.putArray("engines");
        for (EngineSupervisor.Child c : engines.children()) {
            if (c.rank() == EngineSupervisor.COORDINATOR) root.putObject("coordinator").put("pid", c.pid());
            else ranks.addObject().put("rank", c.rank()).put("pid", c.pid());
        }
        root.set("bound", run.boundEndpoints());
        try {
            RunDir.writeAtomically(Path.of(o.runFile), root);
        } catch (IOException e) {
            err.println("dpserve: cannot write the run file " + o.runFile + ": " + e);
        }
    }

    /**
     * One DP rank, started by a launcher: the in-process engine plus the transport bridge that
     * handshakes with the front end at {@code --data-parallel-address:--data-parallel-rpc-port}.
     * It follows its launcher: if that process disappears (even by SIGKILL), the engine exits.
     */
    private static int serveEngine(ServeOptions o, Path modelDir, Map<String, Object> engine, Path home, Path keyFile,
                                   PrintStream err) throws Exception {
        int rank = o.engineRank;
        Map<String, Object> bridge = new HashMap<>();
        bridge.put("dp.rank", rank);
        bridge.put("data.parallel.address", o.dataParallelAddress);
        bridge.put("data.parallel.rpc.port", o.dataParallelRpcPort);
        bridge.put("node.address", o.dataParallelNodeAddress != null ? o.dataParallelNodeAddress : o.dataParallelAddress);
        bridge.put("handshake.timeout.seconds", o.dataParallelStartupTimeout);
        bridge.put("local", !o.headless);
        bridge.put("headless", o.headless);
        bridge.put("block.size", o.blockSize);
        bridge.put("moe", isMoe(modelDir));
        Map<String, Map<String, Object>> configs = new HashMap<>();
        configs.put("dev.dpserve.engine", engine);
        configs.put("dev.dpserve.transport.engine", bridge);
        if (!o.ascendSchedulerConfig.isEmpty()) configs.put("dev.dpserve.scheduler.ascend", new HashMap<>(o.ascendSchedulerConfig));

        if (o.parentPid > 0) {
            var parent = ProcessHandle.of(o.parentPid);
            if (parent.isEmpty()) {
                err.println("dpserve: engine dp" + rank + ": launcher " + o.parentPid + " is gone; not starting");
                return 1;
            }
            parent.get().onExit().thenRun(() -> {
                err.println("dpserve: engine dp" + rank + ": launcher " + o.parentPid + " exited; stopping");
                System.exit(0);
            });
        }
        FelixRuntime runtime = new FelixRuntime(home);
        java.util.concurrent.atomic.AtomicBoolean signalled = new java.util.concurrent.atomic.AtomicBoolean();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            signalled.set(true);
            runtime.stop();
        }, "dpserve-shutdown"));
        Map<String, String> fw = new HashMap<>(launchProperties(keyFile, o.runDir == null ? null : RunDir.of(Path.of(o.runDir))));
        fw.putAll(kernelProperties(o));
        runtime.start(ENGINE_FEATURES, fw, configs, false);
        err.println("dpserve: engine dp" + rank + " started (pid " + ProcessHandle.current().pid() + ")");
        runtime.framework().waitForStop(0);
        // Stopped from inside (the bridge could not join its head) rather than by a signal: a failure.
        return signalled.get() ? 0 : 1;
    }

    /** True if config.json describes expert layers (DeepSeek's n_routed_experts, Mixtral/Qwen's expert counts). */
    static boolean isMoe(Path modelDir) throws IOException {
        JsonNode c = new ObjectMapper().readTree(modelDir.resolve("config.json").toFile());
        for (String key : List.of("n_routed_experts", "num_experts", "num_local_experts")) {
            if (c.path(key).asInt(0) > 0) return true;
        }
        return false;
    }

    /** {@code dpserve keygen --out FILE}: a new cluster key file (mode 600); never overwrites one. */
    static int keygen(List<String> args, PrintStream out) throws ServeOptions.UsageException, IOException {
        if (args.size() != 2 || !args.get(0).equals("--out")) {
            throw new ServeOptions.UsageException("usage: dpserve keygen --out FILE");
        }
        Path file = Path.of(args.get(1));
        if (Files.exists(file)) throw new ServeOptions.UsageException(file + " exists: dpserve keygen never replaces a cluster key");
        dev.dpserve.transport.ClusterKeys keys = dev.dpserve.transport.ClusterKeys.generate(file);
        out.println("wrote " + file + " (public key " + keys.publicKeyZ85() + "); copy it to every node, keep it mode 600");
        return 0;
    }

    /** Checks that the directory looks like a Hugging Face model and returns its model_type. */
    static String checkModelDir(Path dir) throws ServeOptions.UsageException, IOException {
        if (!Files.isDirectory(dir)) throw new ServeOptions.UsageException("model directory " + dir + " does not exist");
        Path config = dir.resolve("config.json");
        if (!Files.isRegularFile(config)) {
            throw new ServeOptions.UsageException(dir + " has no config.json (expected a Hugging Face model directory)");
        }
        JsonNode node = new ObjectMapper().readTree(config.toFile());
        String type = node.path("model_type").asText("");
        if (type.isEmpty()) throw new ServeOptions.UsageException(config + " has no model_type");
        if (!type.matches("[A-Za-z0-9_.-]+")) throw new ServeOptions.UsageException("invalid model_type '" + type + "' in " + config);
        if (!Files.isRegularFile(dir.resolve("tokenizer.json"))) {
            throw new ServeOptions.UsageException(dir + " has no tokenizer.json");
        }
        return type;
    }

    static Path home() {
        String h = System.getProperty("dpserve.home");
        if (h == null) throw new IllegalStateException("dpserve.home is not set: start dpserve with bin/dpserve");
        return Path.of(h).toAbsolutePath().normalize();
    }
}
