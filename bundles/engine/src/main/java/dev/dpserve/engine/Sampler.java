// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.engine;

import dev.dpserve.api.engine.SamplingParams;
import dev.dpserve.api.engine.TokenLogprobs;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Picks the next token from a row of logits with vLLM's sampling semantics: temperature below
 * 1e-5 is greedy; otherwise logits are divided by the temperature, then top-k, top-p and min-p
 * filter the candidates, and one token is drawn from the renormalised distribution.
 * Logprobs are of the raw logits (before temperature and filtering), as vLLM V1 reports them.
 *
 * <p>Stateless; the random stream belongs to the request so that outputs do not depend on how
 * requests are batched.
 */
final class Sampler {

    private Sampler() {
    }

    /** Returns the chosen token id. {@code logits} may be modified (it is the caller's scratch row). */
    static int sample(float[] logits, SamplingParams p, SplittableRandom random) {
        if (p.isGreedy()) {
            return argmax(logits);
        }
        int vocab = logits.length;
        float invT = (float) (1.0 / p.temperature());
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < vocab; i++) {
            logits[i] *= invT;
            if (logits[i] > max) max = logits[i];
        }
        // Work on the candidate set sorted by logit only when a filter needs the order.
        boolean needsOrder = (p.topK() > 0 && p.topK() < vocab) || p.topP() < 1.0;
        if (!needsOrder) {
            return drawFromAll(logits, max, p.minP(), random);
        }
        int[] order = sortedDescending(logits, p.topK() > 0 ? Math.min(p.topK(), vocab) : vocab);
        int n = order.length;
        double[] probs = new double[n];
        double sum = 0;
        for (int i = 0; i < n; i++) {
            probs[i] = Math.exp(logits[order[i]] - max);
            sum += probs[i];
        }
        if (p.minP() > 0) {
            // min_p first (vLLM applies it before top-k/top-p); top-p then sees the renormalised rest.
            double threshold = p.minP() * probs[0]; // probs[0] is the largest
            int keep = 1;
            while (keep < n && probs[keep] >= threshold) keep++;
            n = keep;
            sum = 0;
            for (int i = 0; i < n; i++) sum += probs[i];
        }
        if (p.topP() < 1.0) {
            // Keep the smallest prefix whose mass reaches top_p (always at least one token).
            double cum = 0;
            int keep = n;
            for (int i = 0; i < n; i++) {
                cum += probs[i] / sum;
                if (cum >= p.topP()) {
                    keep = i + 1;
                    break;
                }
            }
            n = keep;
            sum = 0;
            for (int i = 0; i < n; i++) sum += probs[i];
        }
        double u = random.nextDouble() * sum;
        double acc = 0;
        for (int i = 0; i < n; i++) {
            acc += probs[i];
            if (u < acc) return order[i];
        }
        return order[n - 1];
    }

    private static int drawFromAll(float[] logits, float max, double minP, SplittableRandom random) {
        int vocab = logits.length;
        double[] probs = new double[vocab];
        double sum = 0;
        double threshold = minP > 0 ? minP : 0; // relative to the top probability, which is exp(0) = 1
        for (int i = 0; i < vocab; i++) {
            double e = Math.exp(logits[i] - max);
            if (e < threshold) e = 0;
            probs[i] = e;
            sum += e;
        }
        double u = random.nextDouble() * sum;
        double acc = 0;
        int last = 0;
        for (int i = 0; i < vocab; i++) {
            if (probs[i] == 0) continue;
            acc += probs[i];
            last = i;
            if (u < acc) return i;
        }
        return last;
    }

    static int argmax(float[] logits) {
        int best = 0;
        float bestValue = logits[0];
        for (int i = 1; i < logits.length; i++) {
            if (logits[i] > bestValue) {
                bestValue = logits[i];
                best = i;
            }
        }
        return best;
    }

    /** Indices of the {@code k} largest values, largest first (ties: lower id first). */
    static int[] sortedDescending(float[] values, int k) {
        Integer[] idx = new Integer[values.length];
        for (int i = 0; i < idx.length; i++) idx[i] = i;
        if (k < values.length / 8) {
            // Partial selection through a small bounded heap is cheaper than sorting the vocabulary.
            java.util.PriorityQueue<Integer> heap = new java.util.PriorityQueue<>(k + 1, (a, b) -> {
                int c = Float.compare(values[a], values[b]);
                return c != 0 ? c : Integer.compare(b, a);
            });
            for (int i = 0; i < values.length; i++) {
                heap.add(i);
                if (heap.size() > k) heap.poll();
            }
            int[] out = new int[heap.size()];
            for (int i = out.length - 1; i >= 0; i--) out[i] = heap.poll();
            return out;
        }
        Arrays.sort(idx, (a, b) -> {
            int c = Float.compare(values[b], values[a]);
            return c != 0 ? c : Integer.compare(a, b);
        });
        int[] out = new int[k];
        for (int i = 0; i < k; i++) out[i] = idx[i];
        return out;
    }

    /** Log-softmax facts for {@code token} and the top {@code k} tokens of the raw logits. */
    static TokenLogprobs logprobs(float[] rawLogits, int token, int k) {
        float max = Float.NEGATIVE_INFINITY;
        for (float v : rawLogits) if (v > max) max = v;
        double sum = 0;
        for (float v : rawLogits) sum += Math.exp(v - max);
        float logZ = (float) (max + Math.log(sum));
        int rank = 1;
        float chosen = rawLogits[token];
        for (float v : rawLogits) if (v > chosen) rank++;
        int[] top = k > 0 ? sortedDescending(rawLogits, Math.min(k, rawLogits.length)) : new int[0];
        float[] topLp = new float[top.length];
        for (int i = 0; i < top.length; i++) topLp[i] = rawLogits[top[i]] - logZ;
        return new TokenLogprobs(token, chosen - logZ, rank, top, topLp);
    }
}
