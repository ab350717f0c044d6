// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.launcher.bench;

import java.util.Arrays;
import java.util.List;

/** numpy's mean, population std (ddof 0), median and linear-interpolated percentile; 0 for no values (vLLM's {@code x or 0}). */
final class Stats {

    private Stats() {
    }

    static double mean(double[] v) {
        if (v.length == 0) return 0;
        double s = 0;
        for (double x : v) s += x;
        return s / v.length;
    }

    static double std(double[] v) {
        if (v.length == 0) return 0;
        double m = mean(v);
        double s = 0;
        for (double x : v) s += (x - m) * (x - m);
        return Math.sqrt(s / v.length);
    }

    static double median(double[] v) {
        return percentile(v, 50);
    }

    /** numpy.percentile(v, p), method "linear": the value at rank p/100·(n−1), interpolated. */
    static double percentile(double[] v, double p) {
        if (v.length == 0) return 0;
        double[] s = v.clone();
        Arrays.sort(s);
        double rank = p / 100.0 * (s.length - 1);
        int lo = (int) Math.floor(rank);
        int hi = Math.min(lo + 1, s.length - 1);
        double frac = rank - lo;
        return s[lo] + (s[hi] - s[lo]) * frac;
    }

    static double[] toArray(List<Double> values) {
        double[] a = new double[values.size()];
        for (int i = 0; i < a.length; i++) a[i] = values.get(i);
        return a;
    }
}
