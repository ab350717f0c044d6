// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.launcher;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The {@code dpserve} command line. {@code bin/dpserve} runs it with the distribution home in the
 * system property {@code dpserve.home}.
 */
public final class Main {

    static final String VERSION = "0.1.0";
    /** Features every single-process server installs. */
    static final List<String> SERVER_FEATURES = List.of("runtime", "http", "engine", "rest", "shell");

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
        Path modelDir = o.model != null ? Path.of(o.model).toAbsolutePath().normalize() : ModelGenerator.defaultModel(err);
        String modelType = checkModelDir(modelDir);
        Path home = home();

        Map<String, Object> engine = new HashMap<>();
        engine.put("model", modelDir.toString());
        engine.put("served.model.name", o.servedModelName != null ? o.servedModelName : (o.model != null ? o.model : modelDir.toString()));
        engine.put("max.model.len", o.maxModelLen);
        engine.put("max.num.seqs", o.maxNumSeqs);
        engine.put("max.num.batched.tokens", o.maxNumBatchedTokens);
        engine.put("seed", o.seed);
        engine.put("dtype", o.dtype);
        engine.put("architecture.target", "(dpserve.model.type=" + modelType + ")");
        engine.put("block.size", o.blockSize);
        engine.put("enable.prefix.caching", o.enablePrefixCaching);
        engine.put("gpu.memory.utilization", o.gpuMemoryUtilization);
        engine.put("device.memory", o.deviceMemory);
        engine.put("kv.cache.memory", o.kvCacheMemory);
        engine.put("long.prefill.token.threshold", o.longPrefillTokenThreshold);
        engine.put("scheduler", o.scheduler);
        Map<String, Map<String, Object>> configs = new HashMap<>();
        configs.put("dev.dpserve.engine", engine);
        if (!o.ascendSchedulerConfig.isEmpty()) configs.put("dev.dpserve.scheduler.ascend", new HashMap<>(o.ascendSchedulerConfig));

        Map<String, String> fw = new HashMap<>();
        fw.put("org.osgi.service.http.port", Integer.toString(o.port));
        fw.put("org.apache.felix.http.host", o.host);

        boolean console = o.console || (System.console() != null && System.console().isTerminal());
        FelixRuntime runtime = new FelixRuntime(home);
        Runtime.getRuntime().addShutdownHook(new Thread(runtime::stop, "dpserve-shutdown"));
        runtime.start(SERVER_FEATURES, fw, configs, console);

        if (runtime.awaitService("dev.dpserve.api.engine.InferenceEngine", 600_000) == null) {
            if ((runtime.framework().getState() & (org.osgi.framework.Bundle.ACTIVE | org.osgi.framework.Bundle.STARTING)) == 0) {
                return 0; // stopped (shell "stop 0" or SIGTERM) while the model was loading
            }
            err.println("dpserve: the engine did not come up within 600 s (see the log above); stopping");
            runtime.stop();
            return 1;
        }
        err.println("dpserve: serving " + engine.get("served.model.name") + " on http://" + o.host + ":" + o.port
                + (console ? " (Gogo shell on this terminal: try dpserve:status)" : ""));
        runtime.framework().waitForStop(0);
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
