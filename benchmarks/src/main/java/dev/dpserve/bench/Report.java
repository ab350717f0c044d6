// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.dpserve.tensor.MachineProbe;
import java.io.File;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Turns a JMH JSON result file of {@link MachineLimitsBench}, {@link GemmBench} and
 * {@link Int8GemmBench} into Markdown tables: peaks in GFLOP/s, bandwidth in GB/s, GEMMs in ms,
 * GFLOP/s, ratio to the 2-thread AVX2 FMA peak and, at batch 1, ratio of weight bytes/s to the
 * 2-thread streaming bandwidth. Every figure is the median of the measurement iterations (with
 * their range). Usage: {@code java -cp benchmarks.jar dev.dpserve.bench.Report result.json [vectorLanes]}.
 */
public final class Report {

    private record Row(String name, Map<String, String> params, double median, double min, double max, String unit) {
    }

    private Report() {
    }

    public static void main(String[] args) throws IOException {
        if (args.length < 1) {
            System.err.println("usage: Report result.json [preferred vector lanes, default 16]");
            System.exit(2);
        }
        int lanes = args.length > 1 ? Integer.parseInt(args[1]) : 16;
        JsonNode root = new ObjectMapper().readTree(new File(args[0]));
        List<Row> rows = new ArrayList<>();
        for (JsonNode r : root) {
            String bench = r.path("benchmark").asText();
            String name = bench.substring(bench.lastIndexOf('.', bench.lastIndexOf('.') - 1) + 1);
            Map<String, String> params = new HashMap<>();
            r.path("params").fields().forEachRemaining(e -> params.put(e.getKey(), e.getValue().asText()));
            List<Double> raw = new ArrayList<>();
            for (JsonNode fork : r.path("primaryMetric").path("rawData")) for (JsonNode v : fork) raw.add(v.asDouble());
            raw.sort(Double::compare);
            if (raw.isEmpty()) continue;
            rows.add(new Row(name, params, median(raw), raw.getFirst(), raw.getLast(),
                    r.path("primaryMetric").path("scoreUnit").asText()));
        }

        Map<String, double[]> peak = new HashMap<>();
        Map<String, double[]> stream = new HashMap<>();
        System.out.println("| machine limit | median | range |");
        System.out.println("|---|---|---|");
        for (Row r : rows) {
            if (!r.name().startsWith("MachineLimitsBench.")) continue;
            String m = r.name().substring("MachineLimitsBench.".length());
            if (m.startsWith("peak")) {
                double flopsPerOp = MachineLimitsBench.FMA_ITERATIONS * (double) (m.contains("Avx512") ? MachineProbe.FLOPS_PER_ITERATION_512
                        : m.contains("Preferred") ? 12 * lanes * 2 : MachineProbe.FLOPS_PER_ITERATION);
                double[] g = {r.median() * flopsPerOp / 1e9, r.min() * flopsPerOp / 1e9, r.max() * flopsPerOp / 1e9};
                peak.put(m, g);
                System.out.printf("| %s | %.1f GFLOP/s | %.1f–%.1f |%n", m, g[0], g[1], g[2]);
            } else {
                double bytesPerOp = MachineLimitsBench.STREAM_BYTES;
                double[] g = {r.median() * bytesPerOp / 1e9, r.min() * bytesPerOp / 1e9, r.max() * bytesPerOp / 1e9};
                stream.put(m, g);
                System.out.printf("| %s | %.1f GB/s | %.1f–%.1f |%n", m, g[0], g[1], g[2]);
            }
        }
        double peak2 = peak.getOrDefault("peakFmaNativeAvx2T2", new double[] {Double.NaN})[0];
        double peak512 = peak.getOrDefault("peakFmaNativeAvx512T2", new double[] {Double.NaN})[0];
        double bw2 = stream.getOrDefault("streamNativeT2", new double[] {Double.NaN})[0];
        System.out.println();
        System.out.printf("GEMM %dx%d weights; peak = native AVX2 FMA with 2 threads (%.1f GFLOP/s; AVX-512: %.1f); "
                + "bandwidth = native stream with 2 threads (%.1f GB/s)%n%n", GemmBench.M, GemmBench.K, peak2, peak512, bw2);
        System.out.println("| backend | weights | batch | ms/op (median, range) | GFLOP/s | % of AVX2 / AVX-512 peak | weight GB/s | % of bandwidth |");
        System.out.println("|---|---|---|---|---|---|---|---|");
        Map<String, Double> nativeF32 = new HashMap<>();
        for (Row r : rows) {
            if (r.name().startsWith("GemmBench.") && "native".equals(r.params().get("backend")) && "F32".equals(r.params().get("dtype"))) {
                nativeF32.put(r.params().get("batch"), gflops(r));
            }
        }
        for (Row r : rows) {
            if (!r.name().startsWith("GemmBench.") && !r.name().startsWith("Int8GemmBench.")) continue;
            int batch = Integer.parseInt(r.params().get("batch"));
            String dtype = r.params().get("dtype");
            double ms = toMillis(r.median(), r.unit());
            double gflops = gflops(r);
            int elem = switch (dtype) {
                case "F32" -> 4;
                case "BF16", "F16" -> 2;
                default -> 1;
            };
            double gbs = (double) GemmBench.M * GemmBench.K * elem / (ms / 1e3) / 1e9;
            // int8 multiply-adds are not FMAs: compare them with the native F32 GEMM instead
            String vsPeak = dtype.equals("I8")
                    ? String.format("%.2f× native F32", gflops / nativeF32.getOrDefault(r.params().get("batch"), Double.NaN))
                    : String.format("%.0f%% / %.0f%%", 100 * gflops / peak2, 100 * gflops / peak512);
            System.out.printf("| %s | %s | %d | %.3f (%.3f–%.3f) | %.1f | %s | %.1f | %s |%n", r.params().get("backend"),
                    dtype, batch, ms, toMillis(r.min(), r.unit()), toMillis(r.max(), r.unit()), gflops, vsPeak, gbs,
                    batch == 1 ? String.format("%.0f%%", 100 * gbs / bw2) : "");
        }
    }

    /** GFLOP/s (2 operations per multiply-add) of a GEMM row's median. */
    private static double gflops(Row r) {
        double ms = toMillis(r.median(), r.unit());
        return 2.0 * Integer.parseInt(r.params().get("batch")) * GemmBench.M * GemmBench.K / (ms / 1e3) / 1e9;
    }

    private static double toMillis(double v, String unit) {
        return switch (unit) {
            case "ms/op" -> v;
            case "us/op" -> v / 1e3;
            case "s/op" -> v * 1e3;
            case "ns/op" -> v / 1e6;
            default -> throw new IllegalArgumentException("unit " + unit);
        };
    }

    /** The median of {@code values} (the middle one, or the mean of the middle two); the list is not changed. */
    static double median(List<Double> values) {
        List<Double> s = new ArrayList<>(values);
        s.sort(Double::compare);
        int n = s.size();
        return n % 2 == 1 ? s.get(n / 2) : (s.get(n / 2 - 1) + s.get(n / 2)) / 2;
    }
}
