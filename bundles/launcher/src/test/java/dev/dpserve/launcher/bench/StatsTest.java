// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.launcher.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class StatsTest {

    @Test
    void matchesNaiveComputations() {
        SplittableRandom rng = new SplittableRandom(5);
        for (int n : new int[] {1, 2, 3, 10, 101, 1000}) {
            double[] v = new double[n];
            for (int i = 0; i < n; i++) v[i] = rng.nextDouble() * 100;
            double[] sorted = v.clone();
            Arrays.sort(sorted);

            double sum = 0;
            for (double x : v) sum += x;
            double mean = sum / n;
            double ss = 0;
            for (double x : v) ss += (x - mean) * (x - mean);
            double median = n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;

            assertEquals(mean, Stats.mean(v), 1e-9);
            assertEquals(Math.sqrt(ss / n), Stats.std(v), 1e-9, "population std (numpy ddof=0)");
            assertEquals(median, Stats.median(v), 1e-9);
            for (double p : new double[] {0, 25, 50, 90, 99, 99.9, 100}) {
                assertEquals(naivePercentile(sorted, p), Stats.percentile(v, p), 1e-9, "p" + p + " of " + n);
            }
        }
    }

    @Test
    void knownNumpyValues() {
        double[] v = {1, 2, 3, 4};
        assertEquals(2.5, Stats.median(v));
        assertEquals(3.97, Stats.percentile(v, 99), 1e-12);  // numpy.percentile([1,2,3,4], 99)
        assertEquals(1.75, Stats.percentile(v, 25), 1e-12);
        assertEquals(Math.sqrt(1.25), Stats.std(v), 1e-12);
    }

    @Test
    void emptyIsZero() {
        assertEquals(0, Stats.mean(new double[0]));
        assertEquals(0, Stats.std(new double[0]));
        assertEquals(0, Stats.median(new double[0]));
        assertEquals(0, Stats.percentile(new double[0], 99));
    }

    /** The textbook definition numpy's "linear" method implements: the value at position p/100·(n−1), interpolated. */
    private static double naivePercentile(double[] sorted, double p) {
        double pos = p / 100 * (sorted.length - 1);
        int below = (int) pos;
        if (below == sorted.length - 1) return sorted[below];
        return sorted[below] * (1 - (pos - below)) + sorted[below + 1] * (pos - below);
    }
}
