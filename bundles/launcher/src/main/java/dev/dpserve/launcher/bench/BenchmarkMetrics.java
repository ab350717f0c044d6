// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.launcher.bench;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** vLLM's calculate_metrics and its printed result block (spec 8.5). Latencies are kept in seconds, reported in ms. */
final class BenchmarkMetrics {

    int completed;
    int failed;
    long totalInput;
    long totalOutput;
    int goodCompleted;
    double durationS;
    double maxOutputTokensPerS;
    int maxConcurrentRequests;
    final List<Integer> actualOutputLens = new ArrayList<>();
    /** Per metric (ttft, tpot, itl, e2el): the values in seconds. TPOT only for outputs > 1 token. */
    final Map<String, double[]> values = new LinkedHashMap<>();

    /**
     * @param outputs   one per request, in dataset order
     * @param retokenized output token counts for requests whose server sent no usage (index -> count), may be empty
     * @param goodput   SLOs in ms by metric (ttft, tpot, e2el); empty = no goodput
     */
    static BenchmarkMetrics calculate(List<RequestOutput> outputs, double durationS, Map<String, Double> goodput,
            Map<Integer, Integer> retokenized) {
        BenchmarkMetrics m = new BenchmarkMetrics();
        m.durationS = durationS;
        List<Double> ttfts = new ArrayList<>();
        List<Double> tpots = new ArrayList<>();
        List<Double> allTpots = new ArrayList<>();
        List<Double> itls = new ArrayList<>();
        List<Double> e2els = new ArrayList<>();
        for (int i = 0; i < outputs.size(); i++) {
            RequestOutput o = outputs.get(i);
            if (!o.success) {
                m.actualOutputLens.add(0);
                m.failed++;
                continue;
            }
            int outLen = o.outputTokens >= 0 ? o.outputTokens : retokenized.getOrDefault(i, 0);
            m.actualOutputLens.add(outLen);
            m.totalInput += o.promptLen;
            double tpot = 0;
            if (outLen > 1) {
                tpot = (o.latency - o.ttft) / (outLen - 1);
                tpots.add(tpot);
            }
            allTpots.add(tpot); // outputs of <= 1 token count as TPOT 0 for goodput, as in vLLM
            itls.addAll(o.itl);
            ttfts.add(o.ttft);
            e2els.add(o.latency);
            m.completed++;
        }
        for (int n : m.actualOutputLens) m.totalOutput += n;
        if (!goodput.isEmpty()) {
            for (int k = 0; k < ttfts.size(); k++) {
                boolean good = true;
                if (goodput.containsKey("ttft")) good &= goodput.get("ttft") / 1000.0 >= ttfts.get(k);
                if (goodput.containsKey("tpot")) good &= goodput.get("tpot") / 1000.0 >= allTpots.get(k);
                if (goodput.containsKey("e2el")) good &= goodput.get("e2el") / 1000.0 >= e2els.get(k);
                if (good) m.goodCompleted++;
            }
        }
        m.values.put("ttft", Stats.toArray(ttfts));
        m.values.put("tpot", Stats.toArray(tpots));
        m.values.put("itl", Stats.toArray(itls));
        m.values.put("e2el", Stats.toArray(e2els));
        m.peaks(outputs);
        return m;
    }

    /** Peak output chunks/s and peak concurrent requests over 1-s buckets from the first send, as vLLM computes them. */
    private void peaks(List<RequestOutput> outputs) {
        List<RequestOutput> ok = outputs.stream().filter(o -> o.success).toList();
        if (ok.isEmpty()) return;
        long min = Long.MAX_VALUE;
        double maxEnd = Double.NEGATIVE_INFINITY;
        for (RequestOutput o : ok) min = Math.min(min, o.startNanos);
        for (RequestOutput o : ok) maxEnd = Math.max(maxEnd, (o.startNanos - min) / 1e9 + o.latency);
        int buckets = (int) Math.ceil(maxEnd) + 1;
        double[] tokens = new double[buckets];
        int[] concurrent = new int[buckets];
        for (RequestOutput o : ok) {
            double start = (o.startNanos - min) / 1e9;
            double t = start + o.ttft;
            add(tokens, t);
            for (double gap : o.itl) {
                t += gap;
                add(tokens, t);
            }
            int from = (int) start;
            int to = Math.min(buckets - 1, (int) (start + o.latency));
            for (int s = from; s <= to; s++) concurrent[s]++;
        }
        for (double v : tokens) maxOutputTokensPerS = Math.max(maxOutputTokensPerS, v);
        for (int v : concurrent) maxConcurrentRequests = Math.max(maxConcurrentRequests, v);
    }

    private static void add(double[] buckets, double t) {
        int b = (int) t;
        if (b >= 0 && b < buckets.length) buckets[b]++;
    }

    double requestThroughput() {
        return completed / durationS;
    }

    double requestGoodput() {
        return goodCompleted / durationS;
    }

    double outputThroughput() {
        return totalOutput / durationS;
    }

    double totalTokenThroughput() {
        return (totalInput + totalOutput) / durationS;
    }

    static String percentileWord(double p) {
        return p == Math.rint(p) ? Long.toString((long) p) : Double.toString(p);
    }

    private static final Map<String, String[]> NAMES = Map.of(
            "ttft", new String[] {"TTFT", "Time to First Token"},
            "tpot", new String[] {"TPOT", "Time per Output Token (excl. 1st token)"},
            "itl", new String[] {"ITL", "Inter-token Latency"},
            "e2el", new String[] {"E2EL", "End-to-end Latency"});

    /**
     * Prints vLLM's result block and fills {@code result} with the same keys vLLM's
     * benchmark() returns (the per-metric keys only for the selected metrics).
     */
    void report(PrintStream out, ObjectNode result, Integer maxConcurrency, double requestRate, Map<String, Double> goodput,
            List<String> selectedMetrics, List<Double> selectedPercentiles) {
        out.println(center(" Serving Benchmark Result ", '='));
        line(out, "Successful requests:", Integer.toString(completed));
        line(out, "Failed requests:", Integer.toString(failed));
        if (maxConcurrency != null) line(out, "Maximum request concurrency:", Integer.toString(maxConcurrency));
        if (!Double.isInfinite(requestRate)) line(out, "Request rate configured (RPS):", f2(requestRate));
        line(out, "Benchmark duration (s):", f2(durationS));
        line(out, "Total input tokens:", Long.toString(totalInput));
        line(out, "Total generated tokens:", Long.toString(totalOutput));
        line(out, "Request throughput (req/s):", f2(requestThroughput()));
        if (!goodput.isEmpty()) line(out, "Request goodput (req/s):", f2(requestGoodput()));
        line(out, "Output token throughput (tok/s):", f2(outputThroughput()));
        line(out, "Peak output token throughput (tok/s):", f2(maxOutputTokensPerS));
        line(out, "Peak concurrent requests:", f2(maxConcurrentRequests));
        line(out, "Total Token throughput (tok/s):", f2(totalTokenThroughput()));

        result.put("duration", durationS);
        result.put("completed", completed);
        result.put("failed", failed);
        result.put("total_input_tokens", totalInput);
        result.put("total_output_tokens", totalOutput);
        result.put("request_throughput", requestThroughput());
        if (goodput.isEmpty()) result.putNull("request_goodput");
        else result.put("request_goodput", requestGoodput());
        result.put("output_throughput", outputThroughput());
        result.put("total_token_throughput", totalTokenThroughput());
        result.put("max_output_tokens_per_s", maxOutputTokensPerS);
        result.put("max_concurrent_requests", maxConcurrentRequests);

        for (String metric : BenchServeOptions.METRICS) {
            if (!selectedMetrics.contains(metric)) continue;
            String[] names = NAMES.get(metric);
            double[] v = values.get(metric);
            out.println(center(names[1], '-'));
            double mean = Stats.mean(v) * 1000;
            double median = Stats.median(v) * 1000;
            double std = Stats.std(v) * 1000;
            line(out, "Mean " + names[0] + " (ms):", f2(mean));
            line(out, "Median " + names[0] + " (ms):", f2(median));
            line(out, "Std " + names[0] + " (ms):", f2(std));
            result.put("mean_" + metric + "_ms", mean);
            result.put("median_" + metric + "_ms", median);
            result.put("std_" + metric + "_ms", std);
            for (double p : selectedPercentiles) {
                String word = percentileWord(p);
                double value = Stats.percentile(v, p) * 1000;
                line(out, "P" + word + " " + names[0] + " (ms):", f2(value));
                result.put("p" + word + "_" + metric + "_ms", value);
            }
        }
        out.println("=".repeat(50));
    }

    /** The per-request lists vLLM keeps only with --save-detailed. */
    void putDetails(ObjectNode result, List<RequestOutput> outputs) {
        JsonNodeFactory f = JsonNodeFactory.instance;
        ArrayNode inputLens = result.putArray("input_lens");
        ArrayNode outputLens = result.putArray("output_lens");
        ArrayNode ttfts = result.putArray("ttfts");
        ArrayNode itls = result.putArray("itls");
        ArrayNode texts = result.putArray("generated_texts");
        ArrayNode errors = result.putArray("errors");
        for (int i = 0; i < outputs.size(); i++) {
            RequestOutput o = outputs.get(i);
            inputLens.add(o.promptLen);
            outputLens.add(actualOutputLens.get(i));
            ttfts.add(o.ttft);
            ArrayNode itl = f.arrayNode();
            for (double d : o.itl) itl.add(d);
            itls.add(itl);
            texts.add(o.generatedText.toString());
            errors.add(o.error);
        }
    }

    static String center(String s, char fill) {
        int total = 50 - s.length();
        if (total <= 0) return s;
        int left = total / 2;
        return String.valueOf(fill).repeat(left) + s + String.valueOf(fill).repeat(total - left);
    }

    private static void line(PrintStream out, String label, String value) {
        out.println(String.format(Locale.ROOT, "%-40s %-10s", label, value));
    }

    private static String f2(double v) {
        return String.format(Locale.ROOT, "%.2f", v);
    }
}
