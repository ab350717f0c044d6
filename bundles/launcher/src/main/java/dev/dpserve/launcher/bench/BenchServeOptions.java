// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.launcher.bench;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The flags of {@code dpserve bench serve}, with the names and defaults of {@code vllm bench serve}
 * (spec 8.5). Flags of vLLM that dpserve does not implement are unknown here: they fail with exit
 * code 2 and a hint, never silently ignored.
 */
final class BenchServeOptions {

    static final List<String> METRICS = List.of("ttft", "tpot", "itl", "e2el");

    String baseUrl;                       // null = http://host:port
    String host = "127.0.0.1";
    int port = 8000;
    String endpoint = "/v1/completions";
    String backend;                       // null = from the endpoint (vllm or openai-chat)
    String model;                         // a model directory or a served model name; null = the server's first model
    String servedModelName;
    String tokenizer;                     // a model directory; null = --model if it is one, else the server
    String datasetName = "random";
    int numPrompts = 1000;
    int randomInputLen = 1024;
    int randomOutputLen = 128;
    double randomRangeRatio = 0.0;
    int randomPrefixLen = 0;
    long seed = 0;
    double requestRate = Double.POSITIVE_INFINITY;
    double burstiness = 1.0;
    Integer maxConcurrency;               // null = unlimited
    boolean ignoreEos;
    boolean trustRemoteCode;
    List<String> percentileMetrics = List.of("ttft", "tpot", "itl");
    List<Double> metricPercentiles = List.of(99.0);
    final Map<String, Double> goodput = new LinkedHashMap<>();   // metric -> SLO in ms
    boolean saveResult;
    boolean saveDetailed;
    String resultDir;
    String resultFilename;
    String label;
    final Map<String, String> metadata = new LinkedHashMap<>();
    boolean disableTqdm;
    String rampUpStrategy;                // null, "linear" or "exponential"
    Double rampUpStartRps;
    Double rampUpEndRps;
    int readyCheckTimeoutSec = 0;

    private interface Handler {
        void apply(List<String> values) throws BenchUsageException;
    }

    /** arity: 0 = switch, 1 = one value, -1 = one or more values (argparse nargs="+"). */
    private record Flag(int arity, Handler handler, String help) {
    }

    private final Map<String, Flag> flags = new LinkedHashMap<>();

    BenchServeOptions() {
        one("--base-url", v -> baseUrl = stripSlash(v), "server URL (default http://HOST:PORT)");
        one("--host", v -> host = v, "server host when --base-url is not given (default 127.0.0.1)");
        one("--port", v -> port = intIn("--port", v, 1, 65535), "server port when --base-url is not given (default 8000)");
        one("--endpoint", v -> endpoint = v.startsWith("/") ? v : "/" + v,
                "API path: /v1/completions (default) or /v1/chat/completions");
        one("--backend", this::setBackend, "vllm or openai (completions), openai-chat (chat); default: from --endpoint");
        flags.put("--endpoint-type", flags.get("--backend"));
        one("--model", v -> model = v, "model directory (its tokenizer builds the prompts) or served model name;"
                + " default: the server's first model");
        one("--served-model-name", v -> servedModelName = v, "`model` sent in requests (default: --model)");
        one("--tokenizer", v -> tokenizer = v, "model directory with tokenizer.json (default: --model if it is a"
                + " directory, else the server's /tokenize and /detokenize)");
        flag("--trust-remote-code", () -> trustRemoteCode = true, "accepted (no code is loaded from model directories)");
        one("--dataset-name", this::setDatasetName, "only random (default)");
        one("--num-prompts", v -> numPrompts = intIn("--num-prompts", v, 1, Integer.MAX_VALUE), "requests to send (default 1000)");
        one("--random-input-len", v -> randomInputLen = intIn("--random-input-len", v, 0, Integer.MAX_VALUE),
                "input tokens per request, special tokens included (default 1024)");
        one("--random-output-len", v -> randomOutputLen = intIn("--random-output-len", v, 1, Integer.MAX_VALUE),
                "max_tokens per request (default 128)");
        one("--random-range-ratio", v -> {
            randomRangeRatio = parseDouble("--random-range-ratio", v);
            if (!(randomRangeRatio >= 0 && randomRangeRatio < 1)) {
                throw new BenchUsageException("argument --random-range-ratio: must be in [0, 1), got " + v);
            }
        }, "lengths are uniform in [L(1-r), L(1+r)] (default 0.0)");
        one("--random-prefix-len", v -> randomPrefixLen = intIn("--random-prefix-len", v, 0, Integer.MAX_VALUE),
                "random tokens shared by all prompts, before each one's own (default 0)");
        one("--seed", v -> seed = parseLong("--seed", v), "seed of the dataset and the arrival times (default 0)");
        one("--request-rate", v -> {
            requestRate = parseDouble("--request-rate", v);
            if (!(requestRate > 0)) throw new BenchUsageException("argument --request-rate: must be > 0 or inf, got " + v);
        }, "requests per second, Gamma-distributed arrivals; inf (default) sends all at once");
        one("--burstiness", v -> {
            burstiness = parseDouble("--burstiness", v);
            if (!(burstiness > 0) || Double.isInfinite(burstiness)) {
                throw new BenchUsageException("argument --burstiness: must be a positive number, got " + v);
            }
        }, "Gamma shape of the gaps: 1 Poisson (default), <1 burstier, >1 more uniform");
        one("--max-concurrency", v -> maxConcurrency = intIn("--max-concurrency", v, 1, Integer.MAX_VALUE),
                "most requests in flight (default unlimited)");
        one("--ramp-up-strategy", v -> {
            if (!v.equals("linear") && !v.equals("exponential")) {
                throw new BenchUsageException("argument --ramp-up-strategy: invalid choice '" + v + "' (choose from linear, exponential)");
            }
            rampUpStrategy = v;
        }, "linear or exponential ramp from --ramp-up-start-rps to --ramp-up-end-rps");
        one("--ramp-up-start-rps", v -> rampUpStartRps = parseDouble("--ramp-up-start-rps", v), "ramp-up start rate");
        one("--ramp-up-end-rps", v -> rampUpEndRps = parseDouble("--ramp-up-end-rps", v), "ramp-up end rate");
        flag("--ignore-eos", () -> ignoreEos = true, "send ignore_eos: every request generates exactly its max_tokens");
        one("--percentile-metrics", this::setPercentileMetrics, "comma-separated, of ttft,tpot,itl,e2el (default ttft,tpot,itl)");
        one("--metric-percentiles", this::setMetricPercentiles, "comma-separated percentiles (default 99)");
        many("--goodput", this::setGoodput, "SLOs as KEY:MS pairs (ttft, tpot, e2el); reports requests meeting all");
        flag("--save-result", () -> saveResult = true, "write the result as JSON");
        flag("--save-detailed", () -> saveDetailed = true, "also write per-request lists (lens, ttfts, itls, texts, errors)");
        one("--result-dir", v -> resultDir = v, "directory of the JSON result (default: current directory)");
        one("--result-filename", v -> resultFilename = v,
                "file name (default LABEL-RATEqps[-concurrencyN]-MODEL-yyyyMMdd-HHmmss.json)");
        one("--label", v -> label = v, "prefix of the default result file name (default: the backend)");
        many("--metadata", this::setMetadata, "KEY=VALUE pairs copied into the JSON result");
        flag("--disable-tqdm", () -> disableTqdm = true, "no progress bar");
        one("--ready-check-timeout-sec", v -> readyCheckTimeoutSec = intIn("--ready-check-timeout-sec", v, 0, Integer.MAX_VALUE),
                "wait this long for the server to answer (default 0: fail at once with exit 1)");
    }

    private void one(String name, ThrowingConsumer h, String help) {
        flags.put(name, new Flag(1, vs -> h.accept(vs.getFirst()), help));
    }

    private void many(String name, Handler h, String help) {
        flags.put(name, new Flag(-1, h, help));
    }

    private void flag(String name, Runnable r, String help) {
        flags.put(name, new Flag(0, vs -> r.run(), help));
    }

    private interface ThrowingConsumer {
        void accept(String value) throws BenchUsageException;
    }

    static BenchServeOptions parse(List<String> args) throws BenchUsageException {
        BenchServeOptions o = new BenchServeOptions();
        for (int i = 0; i < args.size(); i++) {
            String arg = args.get(i);
            if (!arg.startsWith("--")) {
                throw new BenchUsageException("unexpected argument '" + arg + "' (see dpserve bench serve --help)");
            }
            String name = arg;
            String inline = null;
            int eq = arg.indexOf('=');
            if (eq > 0) {
                name = arg.substring(0, eq);
                inline = arg.substring(eq + 1);
            }
            name = name.replace('_', '-');
            Flag f = o.flags.get(name);
            if (f == null) throw new BenchUsageException("unrecognized argument: " + name + o.hint(name));
            List<String> values = new ArrayList<>();
            if (f.arity() == 0) {
                if (inline != null) throw new BenchUsageException("argument " + name + ": takes no value");
            } else if (inline != null) {
                values.add(inline);
            } else {
                while (i + 1 < args.size() && !args.get(i + 1).startsWith("--")) {
                    values.add(args.get(++i));
                    if (f.arity() == 1) break;
                }
                if (values.isEmpty()) {
                    throw new BenchUsageException("argument " + name + ": expected " + (f.arity() == 1 ? "one value" : "at least one value"));
                }
            }
            f.handler().apply(values);
        }
        o.validate();
        return o;
    }

    private void validate() throws BenchUsageException {
        if (rampUpStrategy != null) {
            if (rampUpStartRps == null || rampUpEndRps == null) {
                throw new BenchUsageException("--ramp-up-strategy needs --ramp-up-start-rps and --ramp-up-end-rps");
            }
            if (rampUpStartRps < 0 || rampUpEndRps <= 0 || Double.isInfinite(rampUpEndRps) || Double.isInfinite(rampUpStartRps)) {
                throw new BenchUsageException("ramp-up rates must be finite, start >= 0 and end > 0");
            }
            if (rampUpStrategy.equals("exponential") && rampUpStartRps <= 0) {
                throw new BenchUsageException("--ramp-up-strategy exponential needs --ramp-up-start-rps > 0");
            }
            if (!Double.isInfinite(requestRate)) {
                throw new BenchUsageException("--ramp-up-strategy and --request-rate are exclusive");
            }
        } else if (rampUpStartRps != null || rampUpEndRps != null) {
            throw new BenchUsageException("--ramp-up-start-rps/--ramp-up-end-rps need --ramp-up-strategy");
        }
        String kind = requestKind();
        if (backend != null) {
            boolean chat = backend.equals("openai-chat");
            if (chat != kind.equals("chat")) {
                throw new BenchUsageException("--backend " + backend + " does not match --endpoint " + endpoint
                        + (chat ? " (the chat backend needs an endpoint ending in chat/completions)" : ""));
            }
        }
    }

    /** "completions" or "chat", from the endpoint path. */
    String requestKind() throws BenchUsageException {
        if (endpoint.endsWith("chat/completions")) return "chat";
        if (endpoint.endsWith("completions")) return "completions";
        throw new BenchUsageException("argument --endpoint: " + endpoint
                + " is not supported (use /v1/completions or /v1/chat/completions)");
    }

    /** The backend name vLLM writes as endpoint_type. */
    String endpointType() throws BenchUsageException {
        if (backend != null) return backend;
        return requestKind().equals("chat") ? "openai-chat" : "vllm";
    }

    String baseUrl() {
        return baseUrl != null ? baseUrl : "http://" + (host.contains(":") ? "[" + host + "]" : host) + ":" + port;
    }

    private void setBackend(String v) throws BenchUsageException {
        switch (v) {
            case "vllm", "openai", "openai-chat" -> backend = v;
            default -> throw new BenchUsageException("argument --backend: '" + v
                    + "' is not supported (choose from vllm, openai, openai-chat)");
        }
    }

    private void setDatasetName(String v) throws BenchUsageException {
        if (!v.equals("random")) {
            throw new BenchUsageException("argument --dataset-name: '" + v + "' is not supported by dpserve bench serve;"
                    + " only 'random' is (sharegpt, sonnet, hf, custom, burstgpt, ... need their data files)");
        }
        datasetName = v;
    }

    private void setPercentileMetrics(String v) throws BenchUsageException {
        List<String> out = new ArrayList<>();
        for (String m : v.split(",")) {
            String t = m.trim();
            if (!METRICS.contains(t)) {
                throw new BenchUsageException("argument --percentile-metrics: unknown metric '" + t + "' (choose from ttft, tpot, itl, e2el)");
            }
            out.add(t);
        }
        percentileMetrics = List.copyOf(out);
    }

    private void setMetricPercentiles(String v) throws BenchUsageException {
        List<Double> out = new ArrayList<>();
        for (String p : v.split(",")) {
            double d = parseDouble("--metric-percentiles", p.trim());
            if (!(d >= 0 && d <= 100)) throw new BenchUsageException("argument --metric-percentiles: " + p + " is not in [0, 100]");
            out.add(d);
        }
        metricPercentiles = List.copyOf(out);
    }

    private void setGoodput(List<String> pairs) throws BenchUsageException {
        for (String pair : pairs) {
            int colon = pair.indexOf(':');
            if (colon <= 0) throw new BenchUsageException("argument --goodput: expected KEY:VALUE, got '" + pair + "'");
            String key = pair.substring(0, colon).trim();
            if (!key.equals("ttft") && !key.equals("tpot") && !key.equals("e2el")) {
                throw new BenchUsageException("argument --goodput: invalid metric '" + key + "' (choose from ttft, tpot, e2el)");
            }
            double ms = parseDouble("--goodput " + key, pair.substring(colon + 1).trim());
            if (!(ms >= 0)) throw new BenchUsageException("argument --goodput: SLO for " + key + " must be non-negative, got " + ms);
            goodput.put(key, ms);
        }
    }

    private void setMetadata(List<String> pairs) throws BenchUsageException {
        for (String pair : pairs) {
            int eq = pair.indexOf('=');
            if (eq <= 0) throw new BenchUsageException("argument --metadata: expected KEY=VALUE, got '" + pair + "'");
            metadata.put(pair.substring(0, eq), pair.substring(eq + 1));
        }
    }

    private String hint(String name) {
        return dev.dpserve.launcher.FlagHints.hint(name, flags.keySet(), "dpserve bench serve");
    }

    String help() {
        StringBuilder sb = new StringBuilder("""
                usage: dpserve bench serve [flags]

                Load generator with the options and metrics of `vllm bench serve`: streams requests to an
                OpenAI-compatible server and reports throughput and TTFT/TPOT/ITL/E2EL latencies.
                The random dataset is deterministic for a --seed, but drawn with java.util.SplittableRandom,
                not numpy: the same seed gives other prompts and arrival times than vLLM does.

                flags:
                """);
        flags.forEach((k, f) -> sb.append(String.format(Locale.ROOT, "  %-28s %s%n",
                k + (f.arity() == 1 ? " V" : f.arity() < 0 ? " V [V ...]" : ""), f.help())));
        return sb.toString();
    }

    private static String stripSlash(String v) {
        String s = v;
        while (s.endsWith("/")) s = s.substring(0, s.length() - 1);
        return s;
    }

    private static double parseDouble(String flag, String v) throws BenchUsageException {
        String t = v.trim().toLowerCase(Locale.ROOT);
        if (t.equals("inf") || t.equals("+inf") || t.equals("infinity")) return Double.POSITIVE_INFINITY;
        try {
            double d = Double.parseDouble(t);
            if (Double.isNaN(d)) throw new NumberFormatException();
            return d;
        } catch (NumberFormatException e) {
            throw new BenchUsageException("argument " + flag + ": invalid float value: '" + v + "'");
        }
    }

    private static int intIn(String flag, String v, int min, int max) throws BenchUsageException {
        long n = parseLong(flag, v);
        if (n < min || n > max) throw new BenchUsageException("argument " + flag + ": " + v + " is out of range [" + min + ", " + max + "]");
        return (int) n;
    }

    private static long parseLong(String flag, String v) throws BenchUsageException {
        try {
            return Long.parseLong(v.trim());
        } catch (NumberFormatException e) {
            throw new BenchUsageException("argument " + flag + ": invalid int value: '" + v + "'");
        }
    }

}
