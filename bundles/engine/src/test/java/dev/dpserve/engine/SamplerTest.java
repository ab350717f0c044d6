// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dpserve.api.engine.SamplingParams;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** Sampling distributions checked against probabilities computed independently in the test. */
class SamplerTest {

    private static final float[] LOGITS = {2.0f, 1.0f, 0.5f, 0.0f, -1.0f, -3.0f};

    private static SamplingParams params(double t, double topP, int topK, double minP) {
        return new SamplingParams(t, topP, topK, minP, 1L, 1, 0, Set.of(), false, -1);
    }

    private static double[] frequencies(SamplingParams p, int draws) {
        SplittableRandom r = new SplittableRandom(42);
        double[] f = new double[LOGITS.length];
        for (int i = 0; i < draws; i++) f[Sampler.sample(LOGITS.clone(), p, r)]++;
        for (int i = 0; i < f.length; i++) f[i] /= draws;
        return f;
    }

    /** softmax(logits / t) restricted to {@code keep}, renormalised. */
    private static double[] expected(double t, boolean[] keep) {
        double[] e = new double[LOGITS.length];
        double sum = 0;
        for (int i = 0; i < e.length; i++) {
            if (keep[i]) {
                e[i] = Math.exp(LOGITS[i] / t);
                sum += e[i];
            }
        }
        for (int i = 0; i < e.length; i++) e[i] /= sum;
        return e;
    }

    private static void assertClose(double[] want, double[] got) {
        for (int i = 0; i < want.length; i++) assertEquals(want[i], got[i], 0.01, "token " + i);
    }

    @Test
    void greedyIsArgmax() {
        assertEquals(0, Sampler.sample(LOGITS.clone(), SamplingParams.greedy(1), new SplittableRandom(1)));
        assertEquals(2, Sampler.argmax(new float[] {0, 1, 5, 5}));
    }

    @Test
    void temperatureSamplingFollowsTheSoftmax() {
        boolean[] all = {true, true, true, true, true, true};
        assertClose(expected(1.0, all), frequencies(params(1.0, 1, 0, 0), 200_000));
        assertClose(expected(0.5, all), frequencies(params(0.5, 1, 0, 0), 200_000));
    }

    @Test
    void topKKeepsTheKMostLikely() {
        assertClose(expected(1.0, new boolean[] {true, true, true, false, false, false}), frequencies(params(1.0, 1, 3, 0), 200_000));
        assertEquals(0, Sampler.sample(LOGITS.clone(), params(1.0, 1, 1, 0), new SplittableRandom(3)));
    }

    @Test
    void topPKeepsTheSmallestPrefixReachingP() {
        // softmax(LOGITS): 0.5745, 0.2114, 0.1282, 0.0778, 0.0286, 0.0039; cumulative 0.5745, 0.7859, 0.9141
        assertClose(expected(1.0, new boolean[] {true, true, false, false, false, false}), frequencies(params(1.0, 0.75, 0, 0), 200_000));
        assertClose(expected(1.0, new boolean[] {true, true, true, false, false, false}), frequencies(params(1.0, 0.8, 0, 0), 200_000));
    }

    @Test
    void minPDropsTokensBelowAFractionOfTheTop() {
        // p_max = 0.5745; min_p 0.2 keeps p >= 0.1149: tokens 0, 1, 2.
        assertClose(expected(1.0, new boolean[] {true, true, true, false, false, false}), frequencies(params(1.0, 1, 0, 0.2), 200_000));
        // With top-k too, the same set.
        assertClose(expected(1.0, new boolean[] {true, true, true, false, false, false}), frequencies(params(1.0, 1, 4, 0.2), 200_000));
    }

    @Test
    void sameSeedSameTokens() {
        SamplingParams p = params(1.0, 0.95, 0, 0);
        SplittableRandom a = new SplittableRandom(7);
        SplittableRandom b = new SplittableRandom(7);
        for (int i = 0; i < 100; i++) assertEquals(Sampler.sample(LOGITS.clone(), p, a), Sampler.sample(LOGITS.clone(), p, b));
    }

    @Test
    void logprobsMatchALogSoftmax() {
        double z = 0;
        for (float v : LOGITS) z += Math.exp(v);
        var lp = Sampler.logprobs(LOGITS, 2, 3);
        assertEquals(LOGITS[2] - Math.log(z), lp.logprob(), 1e-6);
        assertEquals(3, lp.rank());
        assertEquals(0, lp.topIds()[0]);
        assertTrue(lp.topLogprobs()[0] > lp.topLogprobs()[1]);
    }
}
