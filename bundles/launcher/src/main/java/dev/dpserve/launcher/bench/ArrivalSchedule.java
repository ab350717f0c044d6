// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.launcher.bench;

import java.util.random.RandomGenerator;

/**
 * Send times of vLLM's {@code get_request} (spec 8.5): gaps ~ Gamma(shape = burstiness,
 * scale = 1/(rate·burstiness)), so the mean gap is 1/rate; cumulated, then rescaled so the last
 * send is at exactly n/rate. An infinite rate sends everything at 0. With a ramp-up the rate
 * moves from start to end over the requests and no rescaling is done (as in vLLM).
 */
final class ArrivalSchedule {

    private ArrivalSchedule() {
    }

    /** Send offsets in seconds from the benchmark start, one per request, non-decreasing. */
    static double[] sendTimes(int n, double rate, double burstiness, RandomGenerator rng) {
        return sendTimes(n, rate, burstiness, null, 0, 0, rng);
    }

    static double[] sendTimes(int n, double rate, double burstiness, String rampUp, double startRps, double endRps,
            RandomGenerator rng) {
        double[] t = new double[n];
        for (int i = 0; i < n; i++) {
            double r = rampUp == null ? rate : rampRate(rampUp, startRps, endRps, i, n);
            double gap = Double.isInfinite(r) ? 0 : r <= 0 ? 0 : gamma(burstiness, 1.0 / (r * burstiness), rng);
            t[i] = (i == 0 ? 0 : t[i - 1]) + gap;
        }
        if (rampUp == null && n > 0 && t[n - 1] != 0 && !Double.isInfinite(rate)) {
            double factor = (n / rate) / t[n - 1];
            for (int i = 0; i < n; i++) t[i] *= factor;
            t[n - 1] = n / rate; // exact, not off by a rounding step
        }
        return t;
    }

    /** vLLM's _get_current_request_rate: progress = i / (n - 1). */
    static double rampRate(String strategy, double start, double end, int i, int n) {
        double progress = n <= 1 ? 0 : (double) i / (n - 1);
        return strategy.equals("exponential") ? start * Math.pow(end / start, progress) : start + (end - start) * progress;
    }

    /**
     * A Gamma(shape, scale) variate: Marsaglia and Tsang (2000) for shape ≥ 1, and the
     * U^(1/shape) boost for shape < 1.
     */
    static double gamma(double shape, double scale, RandomGenerator rng) {
        if (shape < 1) {
            double u = 1.0 - rng.nextDouble(); // (0, 1]
            return gamma(shape + 1, scale, rng) * Math.pow(u, 1.0 / shape);
        }
        double d = shape - 1.0 / 3.0;
        double c = 1.0 / Math.sqrt(9 * d);
        while (true) {
            double x;
            double v;
            do {
                x = rng.nextGaussian();
                v = 1 + c * x;
            } while (v <= 0);
            v = v * v * v;
            double u = 1.0 - rng.nextDouble();
            if (u < 1 - 0.0331 * x * x * x * x || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) {
                return d * v * scale;
            }
        }
    }
}
