// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.launcher;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The flags of {@code dpserve serve}, with vLLM's names and defaults. Every flag of the seed's
 * commands parses; a flag whose feature is not built yet fails with {@link UsageException}
 * naming it, never silently ignored.
 */
final class ServeOptions {

    String model;               // positional MODEL_DIR, null = the default tiny model
    String host = "0.0.0.0";
    int port = 8000;
    String servedModelName;
    int maxModelLen;            // 0 = from the model
    long seed;
    int maxNumSeqs = 256;
    int maxNumBatchedTokens;    // 0 = engine default
    String dtype = "auto";
    String quantization = "none";
    boolean console;
    boolean trustRemoteCode;
    int dataParallelSize = 1;
    int dataParallelSizeLocal = -1;            // -1 = unset: equals dataParallelSize
    String dataParallelAddress = "127.0.0.1";
    int dataParallelRpcPort = 29550;
    int dataParallelStartupTimeout = 600;      // seconds
    int dataParallelStartRank = -1;            // -1 = unset: 0
    /** CurveZMQ cluster key file for every DP socket; null = plain sockets (loopback only). */
    String clusterKeyFile;
    /** This node's own address (dpserve extension); null = the head's address on the head, derived on a headless node. */
    String dataParallelNodeAddress;
    /** Where the launcher writes its run file (PIDs, ranks, bound endpoints) once ready; null = none. */
    String runFile;
    /** Hidden: the launcher's run directory, passed to the processes it starts. */
    String runDir;
    /** Engines only: this node's L engine processes join a head elsewhere; no front end, no HTTP. */
    boolean headless;
    /** Run the engine in its own process behind the ZMQ protocol even with DP = 1. */
    boolean separateEngineProcess;
    /** Hidden: "serve" (front end, or everything when DP = 1) or "engine" (one DP rank, spawned by the launcher). */
    String role = "serve";
    int engineRank = -1;                       // hidden, role engine only
    long parentPid = -1;                       // hidden: the launcher an engine process follows
    int[] coordinatorPorts = {0, 0, 0};        // hidden, role coordinator: engine control, engine output, front end
    int tensorParallelSize = 1;
    int blockSize = 16;
    boolean enablePrefixCaching = true;
    double gpuMemoryUtilization = 0.9;
    long deviceMemory;          // 0 = physical RAM / local ranks
    long kvCacheMemory;         // 0 = derived from the two above
    int longPrefillTokenThreshold;
    String scheduler = "";      // "" = highest-ranked policy (v1)
    String kernelBackend;       // null = best score per op
    /** ConfigAdmin properties for the prefill-first policy (PID dev.dpserve.scheduler.ascend). */
    final java.util.Map<String, Object> ascendSchedulerConfig = new java.util.LinkedHashMap<>();
    final List<String> notices = new ArrayList<>();

    /** A command-line error: message for the user, exit code 2. */
    static final class UsageException extends Exception {
        private static final long serialVersionUID = 1L;

        UsageException(String message) {
            super(message);
        }
    }

    private interface Handler {
        void apply(String value) throws UsageException;
    }

    private record Flag(boolean takesValue, Handler handler, String help, boolean hidden) {
    }

    private final Map<String, Flag> flags = new LinkedHashMap<>();

    ServeOptions() {
        value("--host", v -> host = v, "address to listen on (default 0.0.0.0)");
        value("--port", v -> port = intIn("--port", v, 1, 65535), "HTTP port (default 8000)");
        value("--served-model-name", v -> servedModelName = v, "name clients use as `model`");
        value("--max-model-len", v -> maxModelLen = intIn("--max-model-len", v, 1, Integer.MAX_VALUE), "prompt + output token limit");
        value("--seed", v -> seed = parseLong("--seed", v), "random seed (default 0)");
        value("--max-num-seqs", v -> maxNumSeqs = intIn("--max-num-seqs", v, 1, 1 << 20), "most sequences per step (default 256)");
        value("--max-num-batched-tokens", v -> maxNumBatchedTokens = intIn("--max-num-batched-tokens", v, 1, Integer.MAX_VALUE), "token budget per step");
        value("--dtype", this::setDtype, "auto, float32, bfloat16, float16 (half), float");
        flag("--trust-remote-code", () -> trustRemoteCode = true, "accepted (dpserve runs no model code from checkpoints)");
        flag("--console", () -> console = true, "Gogo shell on stdin");
        value("--data-parallel-size", v -> dataParallelSize = intIn("--data-parallel-size", v, 1, 1024),
                "DP ranks: one engine process each (default 1 = one process)");
        value("--data-parallel-size-local", v -> dataParallelSizeLocal = intIn("--data-parallel-size-local", v, 0, 1024),
                "DP ranks on this node (default: --data-parallel-size); the head waits for the others");
        value("--data-parallel-address", v -> dataParallelAddress = v, "address of the DP head (default 127.0.0.1)");
        value("--data-parallel-rpc-port", v -> dataParallelRpcPort = intIn("--data-parallel-rpc-port", v, 1, 65535),
                "DP handshake port on the head (default 29550)");
        value("--data-parallel-start-rank", v -> dataParallelStartRank = intIn("--data-parallel-start-rank", v, 0, 1023),
                "first DP rank on this node (default 0; needs --data-parallel-size-local)");
        flag("--separate-engine-process", () -> separateEngineProcess = true,
                "with --data-parallel-size 1: run the engine in its own process behind the ZMQ protocol (as with DP > 1)");
        flag("--headless", () -> headless = true, "engines only, no front end: they join the head at --data-parallel-address");
        value("--data-parallel-startup-timeout", v -> dataParallelStartupTimeout = intIn("--data-parallel-startup-timeout", v, 1, 86_400),
                "seconds to wait for every DP engine to load and join (default 600)");
        value("--cluster-key-file", v -> clusterKeyFile = v,
                "CurveZMQ cluster key (from `dpserve keygen --out FILE`) for every DP socket; the same file on every node."
                + " Required when a DP address is not loopback; with it, CURVE is used on loopback too");
        value("--data-parallel-node-address", v -> dataParallelNodeAddress = v,
                "this node's own address (dpserve extension): what its processes bind or advertise. Default: the head's"
                + " address on the head, the local address that reaches the head on a --headless node");
        value("--run-file", v -> runFile = v,
                "write a JSON run file (launcher and engine PIDs, ranks, bound ZeroMQ endpoints) once this node is ready");
        hidden("--run-dir", v -> runDir = v);
        hidden("--role", v -> {
            if (!v.equals("serve") && !v.equals("engine") && !v.equals("coordinator")) {
                throw new UsageException("argument --role: serve, engine or coordinator, got '" + v + "'");
            }
            role = v;
        });
        hidden("--engine-rank", v -> engineRank = intIn("--engine-rank", v, 0, 1023));
        hidden("--parent-pid", v -> parentPid = parseLong("--parent-pid", v));
        hidden("--coordinator-ports", v -> {
            String[] p = v.split(",");
            if (p.length != 3) throw new UsageException("argument --coordinator-ports: three comma-separated ports, got '" + v + "'");
            for (int i = 0; i < 3; i++) coordinatorPorts[i] = intIn("--coordinator-ports", p[i].strip(), 0, 65535);
        });
        value("--tensor-parallel-size", v -> {
            tensorParallelSize = intIn("--tensor-parallel-size", v, 1, 1024);
            if (tensorParallelSize > 1) throw notYet("--tensor-parallel-size " + v);
        }, "TP ranks per DP rank (only 1 for now)");
        flag("--enable-expert-parallel", () -> { throw notYet("--enable-expert-parallel"); }, "shard experts over DP x TP");
        value("--quantization", this::setQuantization,
                "none (default), or w8a8: int8 weights (per output channel, quantized at load) and int8 activations (per token)");
        flag("--no-enable-prefix-caching", () -> enablePrefixCaching = false, "disable prefix caching");
        flag("--enable-prefix-caching", () -> enablePrefixCaching = true, "share KV blocks of equal prompt prefixes (default on)");
        value("--gpu-memory-utilization", v -> gpuMemoryUtilization = fraction("--gpu-memory-utilization", v),
                "fraction of device memory for weights + KV cache (default 0.9)");
        value("--block-size", v -> blockSize = intIn("--block-size", v, 1, 4096), "tokens per KV cache block (default 16)");
        value("--kv-cache-memory", v -> kvCacheMemory = bytes("--kv-cache-memory", v), "KV cache size in bytes (e.g. 2GiB); overrides the fraction");
        value("--device-memory", v -> deviceMemory = bytes("--device-memory", v), "device memory on CPU (default: physical RAM / local ranks)");
        value("--long-prefill-token-threshold", v -> longPrefillTokenThreshold = intIn("--long-prefill-token-threshold", v, 0, Integer.MAX_VALUE),
                "most tokens of one request per step (0 = off)");
        value("--scheduler", v -> scheduler = v, "scheduling policy by name: v1 (default) or ascend");
        value("--kernel-backend", v -> kernelBackend = v,
                "pin a kernel backend by name (native, vector, java) for every op it supports; default: best score per op");
        value("--additional-config", this::setAdditionalConfig, "JSON with backend-specific settings");
    }

    private void value(String name, Handler h, String help) {
        flags.put(name, new Flag(true, h, help, false));
    }

    /** Internal flags the launcher passes to the engine processes it spawns; not in --help. */
    private void hidden(String name, Handler h) {
        flags.put(name, new Flag(true, h, "", true));
    }

    private void flag(String name, ThrowingRunnable r, String help) {
        flags.put(name, new Flag(false, v -> r.run(), help, false));
    }

    private interface ThrowingRunnable {
        void run() throws UsageException;
    }

    static ServeOptions parse(List<String> args) throws UsageException {
        ServeOptions o = new ServeOptions();
        Iterator<String> it = args.iterator();
        while (it.hasNext()) {
            String arg = it.next();
            if (!arg.startsWith("--")) {
                if (o.model != null) throw new UsageException("unexpected argument '" + arg + "': only one MODEL_DIR may be given");
                o.model = arg;
                continue;
            }
            String name = arg;
            String value = null;
            int eq = arg.indexOf('=');
            if (eq > 0) {
                name = arg.substring(0, eq);
                value = arg.substring(eq + 1);
            }
            name = name.replace('_', '-');
            Flag f = o.flags.get(name);
            if (f == null) {
                throw new UsageException("unrecognized argument: " + name + o.hint(name));
            }
            if (f.takesValue()) {
                if (value == null) {
                    if (!it.hasNext()) throw new UsageException("argument " + name + ": expected one value");
                    value = it.next();
                }
            } else if (value != null) {
                throw new UsageException("argument " + name + ": takes no value");
            }
            f.handler().apply(value);
        }
        o.checkDataParallel();
        return o;
    }

    /** Cross-flag rules of data parallelism, as vLLM checks them, plus what this version supports. */
    private void checkDataParallel() throws UsageException {
        boolean localGiven = dataParallelSizeLocal >= 0;
        if (dataParallelStartRank >= 0 && !localGiven) {
            throw new UsageException("--data-parallel-start-rank requires --data-parallel-size-local");
        }
        if (!localGiven) dataParallelSizeLocal = dataParallelSize;
        if (dataParallelStartRank < 0) dataParallelStartRank = 0;
        if (dataParallelSizeLocal > dataParallelSize) {
            throw new UsageException("--data-parallel-size-local " + dataParallelSizeLocal + " exceeds --data-parallel-size " + dataParallelSize);
        }
        if (dataParallelStartRank + dataParallelSizeLocal > dataParallelSize) {
            throw new UsageException("--data-parallel-start-rank " + dataParallelStartRank + " + --data-parallel-size-local "
                    + dataParallelSizeLocal + " exceeds --data-parallel-size " + dataParallelSize);
        }
        if (headless) {
            if (dataParallelSizeLocal == 0) throw new UsageException("--headless requires --data-parallel-size-local > 0 (engines to run)");
            // A DP = 1 head runs its engine in-process: nothing to join.
            if (dataParallelSize == 1) throw new UsageException("--headless needs --data-parallel-size > 1");
        } else {
            if (dataParallelStartRank != 0) {
                throw notYet("--data-parallel-start-rank " + dataParallelStartRank + " without --headless (the head runs ranks 0.."
                        + (dataParallelSizeLocal - 1) + "; other nodes must be --headless)");
            }
            if (dataParallelSize == 1 && dataParallelSizeLocal != 1) {
                throw notYet("--data-parallel-size-local " + dataParallelSizeLocal + " with --data-parallel-size 1");
            }
        }
        if (role.equals("engine")) {
            if (engineRank < 0) throw new UsageException("--role engine needs --engine-rank");
            if (engineRank < dataParallelStartRank || engineRank >= dataParallelStartRank + dataParallelSizeLocal) {
                throw new UsageException("--engine-rank " + engineRank + " is not a rank of this node");
            }
        }
        if (dataParallelSize > 1) {
            // Issue 5's rule: anything beyond loopback only with CurveZMQ and the cluster key.
            requireKeyBeyondLoopback("--data-parallel-address", dataParallelAddress);
            if (dataParallelNodeAddress != null) requireKeyBeyondLoopback("--data-parallel-node-address", dataParallelNodeAddress);
            if (!headless && dataParallelNodeAddress != null && !sameAddress(dataParallelNodeAddress, dataParallelAddress)) {
                throw new UsageException("--data-parallel-node-address " + dataParallelNodeAddress + " on the head must equal"
                        + " --data-parallel-address " + dataParallelAddress + " (the head binds its DP sockets there)");
            }
        } else {
            if (clusterKeyFile != null) notices.add("--cluster-key-file: no effect with --data-parallel-size 1 (no inter-process sockets)");
            if (dataParallelNodeAddress != null) notices.add("--data-parallel-node-address: no effect with --data-parallel-size 1");
            if (runFile != null) notices.add("--run-file: written in data-parallel mode only (--data-parallel-size > 1)");
        }
    }

    private void requireKeyBeyondLoopback(String flag, String address) throws UsageException {
        boolean loopback;
        try {
            loopback = true;
            for (java.net.InetAddress a : java.net.InetAddress.getAllByName(address)) loopback &= a.isLoopbackAddress();
        } catch (java.net.UnknownHostException e) {
            throw new UsageException("argument " + flag + ": unknown host '" + address + "'");
        }
        if (!loopback && clusterKeyFile == null) {
            throw new UsageException(flag + " " + address + " is not a loopback address: data parallelism beyond loopback"
                    + " requires --cluster-key-file FILE (create it once with `dpserve keygen --out FILE`, copy it to every"
                    + " node, and pass it to every dpserve serve of the deployment)");
        }
    }

    private static boolean sameAddress(String a, String b) throws UsageException {
        try {
            return java.net.InetAddress.getByName(a).equals(java.net.InetAddress.getByName(b));
        } catch (java.net.UnknownHostException e) {
            throw new UsageException("unknown host: " + e.getMessage());
        }
    }

    private String hint(String name) {
        List<String> visible = flags.entrySet().stream().filter(e -> !e.getValue().hidden()).map(Map.Entry::getKey).toList();
        return FlagHints.hint(name, visible, "dpserve serve");
    }

    String help() {
        StringBuilder sb = new StringBuilder("usage: dpserve serve [MODEL_DIR] [flags]\n\n"
                + "MODEL_DIR is a Hugging Face model directory; without it, a tiny generated model is served.\n\nflags:\n");
        flags.forEach((k, f) -> { if (!f.hidden()) sb.append(String.format("  %-30s %s%n", k + (f.takesValue() ? " V" : ""), f.help())); });
        return sb.toString();
    }

    private void setQuantization(String v) throws UsageException {
        quantization = switch (v) {
            case "none", "w8a8" -> v;
            case "ascend" -> throw new UsageException("--quantization ascend: not supported yet in this dpserve version"
                    + " (vllm-ascend's pre-quantized W8A8 checkpoints are not read; --quantization w8a8 quantizes a float"
                    + " checkpoint at load)");
            default -> throw new UsageException("argument --quantization: invalid choice '" + v + "' (choose from none, w8a8)");
        };
    }

    private void setDtype(String v) throws UsageException {
        dtype = switch (v) {
            case "auto", "float32", "bfloat16", "float16" -> v;
            case "float" -> "float32";
            case "half" -> "float16";
            default -> throw new UsageException("argument --dtype: invalid choice '" + v
                    + "' (choose from auto, float32, float, bfloat16, float16, half)");
        };
    }

    private void setAdditionalConfig(String json) throws UsageException {
        JsonNode node;
        try {
            node = new ObjectMapper().readTree(json);
        } catch (Exception e) {
            throw new UsageException("argument --additional-config: not valid JSON: " + e.getMessage());
        }
        if (node == null || !node.isObject()) throw new UsageException("argument --additional-config: must be a JSON object");
        for (Iterator<String> it = node.fieldNames(); it.hasNext(); ) {
            String key = it.next();
            JsonNode v = node.get(key);
            switch (key) {
                case "ascend_scheduler_config" -> setAscendSchedulerConfig(v);
                case "torchair_graph_config" -> notices.add("--additional-config torchair_graph_config: accepted, no meaning on this backend (no graph compilation)");
                default -> notices.add("--additional-config " + key + ": unknown key, ignored");
            }
        }
    }

    /** vllm-ascend's ascend_scheduler_config: enabled selects the prefill-first policy; its keys configure it. */
    private void setAscendSchedulerConfig(JsonNode v) throws UsageException {
        if (!v.isObject()) throw new UsageException("--additional-config ascend_scheduler_config must be a JSON object");
        if (!v.path("enabled").asBoolean(false)) return;
        for (Iterator<String> it = v.fieldNames(); it.hasNext(); ) {
            String key = it.next();
            JsonNode value = v.get(key);
            switch (key) {
                case "enabled" -> { }
                case "enable_chunked_prefill" -> {
                    // vllm-ascend falls back to the upstream V1 scheduler entirely.
                    if (value.asBoolean(false)) {
                        notices.add("ascend_scheduler_config.enable_chunked_prefill=true: using the V1 scheduler, as vllm-ascend does");
                        return;
                    }
                }
                case "policy" -> {
                    if (!value.asText().equals("fcfs")) throw new UsageException("ascend_scheduler_config.policy: only \"fcfs\" is supported, got " + value);
                }
                case "max_long_partial_prefills" -> ascendSchedulerConfig.put("max.long.partial.prefills", value.asInt());
                case "long_prefill_token_threshold" -> ascendSchedulerConfig.put("long.prefill.token.threshold", value.asInt());
                default -> notices.add("--additional-config ascend_scheduler_config." + key + ": no meaning here, ignored");
            }
        }
        scheduler = "ascend";
    }

    private static double fraction(String flag, String v) throws UsageException {
        try {
            double d = Double.parseDouble(v.trim());
            if (!(d > 0 && d <= 1)) throw new UsageException("argument " + flag + ": must be in (0, 1], got " + v);
            return d;
        } catch (NumberFormatException e) {
            throw new UsageException("argument " + flag + ": invalid float value: '" + v + "'");
        }
    }

    /** Bytes with an optional unit: 123, 512MiB, 2GiB, 2GB, 1.5G. */
    static long bytes(String flag, String v) throws UsageException {
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("(?i)\\s*([0-9]+(?:\\.[0-9]+)?)\\s*(|b|k|kb|kib|m|mb|mib|g|gb|gib|t|tb|tib)\\s*").matcher(v);
        if (!m.matches()) throw new UsageException("argument " + flag + ": invalid size '" + v + "' (examples: 2GiB, 512MiB, 1073741824)");
        double n = Double.parseDouble(m.group(1));
        String unit = m.group(2).toLowerCase(java.util.Locale.ROOT);
        boolean binary = unit.endsWith("ib") || unit.length() == 1;
        double base = binary ? 1024 : 1000;
        int power = unit.isEmpty() || unit.equals("b") ? 0 : "kmgt".indexOf(unit.charAt(0)) + 1;
        return (long) (n * Math.pow(base, power));
    }

    private static UsageException notYet(String what) {
        return new UsageException(what + ": not supported yet in this dpserve version");
    }

    private static int intIn(String flag, String v, int min, int max) throws UsageException {
        long n = parseLong(flag, v);
        if (n < min || n > max) throw new UsageException("argument " + flag + ": " + v + " is out of range [" + min + ", " + max + "]");
        return (int) n;
    }

    private static long parseLong(String flag, String v) throws UsageException {
        try {
            return Long.parseLong(v.trim());
        } catch (NumberFormatException e) {
            throw new UsageException("argument " + flag + ": invalid int value: '" + v + "'");
        }
    }


}
