// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.launcher.bench;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class ArrivalScheduleTest {

    @Test
    void gammaGapsHaveMeanOneOverRate() {
        for (double burstiness : new double[] {1.0, 0.5, 2.0}) {
            double rate = 8;
            SplittableRandom rng = new SplittableRandom(42);
            int n = 200_000;
            double sum = 0;
            double sumSq = 0;
            for (int i = 0; i < n; i++) {
                double g = ArrivalSchedule.gamma(burstiness, 1 / (rate * burstiness), rng);
                assertTrue(g >= 0);
                sum += g;
                sumSq += g * g;
            }
            double mean = sum / n;
            double var = sumSq / n - mean * mean;
            assertEquals(1 / rate, mean, 0.01 / rate, "mean gap, burstiness " + burstiness);
            // Gamma(k, θ) has variance kθ² = 1/(r²·b): burstier (smaller b) means more spread.
            assertEquals(1 / (rate * rate * burstiness), var, 0.05 / (rate * rate * burstiness), "gap variance, burstiness " + burstiness);
        }
    }

    @Test
    void scheduleIsRescaledToEndAtNOverRate() {
        for (double burstiness : new double[] {1.0, 0.5}) {
            double[] t = ArrivalSchedule.sendTimes(1000, 20, burstiness, new SplittableRandom(1));
            assertEquals(1000 / 20.0, t[999], 0.0, "last send exactly n/rate");
            for (int i = 1; i < t.length; i++) assertTrue(t[i] >= t[i - 1]);
            assertTrue(t[0] > 0, "the first request also waits one gap, as in vLLM");
            double meanGap = t[999] / 1000;
            assertEquals(1 / 20.0, meanGap, 1e-12);
        }
        double[] one = ArrivalSchedule.sendTimes(1, 4, 1.0, new SplittableRandom(3));
        assertEquals(0.25, one[0], 0.0);
    }

    @Test
    void infiniteRateSendsAllAtZero() {
        assertArrayEquals(new double[50], ArrivalSchedule.sendTimes(50, Double.POSITIVE_INFINITY, 1.0, new SplittableRandom(0)));
    }

    @Test
    void sameSeedSameSchedule() {
        assertArrayEquals(ArrivalSchedule.sendTimes(100, 5, 0.5, new SplittableRandom(9)),
                ArrivalSchedule.sendTimes(100, 5, 0.5, new SplittableRandom(9)));
    }

    @Test
    void rampUpRates() {
        assertEquals(1.0, ArrivalSchedule.rampRate("linear", 1, 11, 0, 11), 1e-12);
        assertEquals(6.0, ArrivalSchedule.rampRate("linear", 1, 11, 5, 11), 1e-12);
        assertEquals(11.0, ArrivalSchedule.rampRate("linear", 1, 11, 10, 11), 1e-12);
        assertEquals(10.0, ArrivalSchedule.rampRate("exponential", 1, 100, 5, 11), 1e-9);
        double[] t = ArrivalSchedule.sendTimes(100, Double.POSITIVE_INFINITY, 1.0, "linear", 1, 20, new SplittableRandom(0));
        assertTrue(t[99] > 0 && t[99] != 100 / 20.0, "no rescaling with a ramp-up");
    }
}
