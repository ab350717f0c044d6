// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.dpserve.api.model.CausalLm;
import dev.dpserve.api.model.CausalLm.BatchEntry;
import dev.dpserve.api.model.SequenceCache;
import dev.dpserve.model.Fixtures;
import dev.dpserve.tensor.VectorKernelBackend;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Batching, chunking and truncation must not change the logits of a sequence. */
class LlamaBatchingTest {

    private static final double TOLERANCE = 1e-5;
    private static final int DECODE_STEPS = 6;
    private static final int[][] PROMPTS = {
            {5, 17, 300, 42, 42, 7, 99, 100, 256, 3, 8, 15, 16, 23, 42, 511, 0, 77, 9},
            {0},
            {9, 8, 7, 6, 5, 4, 3, 2, 1, 400, 401, 402},
            {250, 251},
    };

    private static VectorKernelBackend kernels;
    private static CausalLm model;

    @BeforeAll
    static void load() {
        kernels = new VectorKernelBackend(2);
        model = Fixtures.load(Fixtures.dir("llama-tiny"), kernels, "auto");
    }

    @AfterAll
    static void close() {
        model.close();
        kernels.close();
    }

    /** Logits of prefill then greedy decode steps, one sequence per forward call. */
    private static List<float[]> alone(int[] prompt) {
        List<float[]> out = new ArrayList<>();
        try (SequenceCache cache = model.newSequence(prompt.length + DECODE_STEPS)) {
            float[] logits = model.forward(List.of(new BatchEntry(cache, prompt)))[0];
            out.add(logits);
            for (int s = 0; s < DECODE_STEPS; s++) {
                logits = model.forward(List.of(new BatchEntry(cache, new int[] {Fixtures.argmax(logits)})))[0];
                out.add(logits);
            }
        }
        return out;
    }

    @Test
    void mixedPrefillAndDecodeBatchEqualsEachSequenceAlone() {
        List<List<float[]>> expected = new ArrayList<>();
        for (int[] p : PROMPTS) expected.add(alone(p));

        // sequence i joins at step i, so most steps mix one prefill with decodes of the others
        List<List<float[]>> got = new ArrayList<>();
        SequenceCache[] caches = new SequenceCache[PROMPTS.length];
        int[] next = new int[PROMPTS.length];
        for (int step = 0; step < PROMPTS.length + DECODE_STEPS; step++) {
            List<BatchEntry> batch = new ArrayList<>();
            List<Integer> members = new ArrayList<>();
            for (int i = 0; i < PROMPTS.length; i++) {
                if (step == i) {
                    caches[i] = model.newSequence(PROMPTS[i].length + DECODE_STEPS);
                    got.add(new ArrayList<>());
                    batch.add(new BatchEntry(caches[i], PROMPTS[i]));
                    members.add(i);
                } else if (step > i && step - i <= DECODE_STEPS) {
                    batch.add(new BatchEntry(caches[i], new int[] {next[i]}));
                    members.add(i);
                }
            }
            float[][] logits = model.forward(batch);
            assertEquals(batch.size(), logits.length);
            for (int b = 0; b < logits.length; b++) {
                int i = members.get(b);
                got.get(i).add(logits[b]);
                next[i] = Fixtures.argmax(logits[b]);
            }
        }
        for (SequenceCache c : caches) c.close();
        for (int i = 0; i < PROMPTS.length; i++) {
            assertEquals(expected.get(i).size(), got.get(i).size());
            for (int s = 0; s < expected.get(i).size(); s++) assertClose(expected.get(i).get(s), got.get(i).get(s), "seq " + i + " step " + s);
        }
    }

    @Test
    void chunkedPrefillEqualsPrefillAtOnce() {
        int[] prompt = PROMPTS[0];
        List<float[]> expected = alone(prompt);
        try (SequenceCache cache = model.newSequence(prompt.length + DECODE_STEPS)) {
            float[] logits = null;
            int[] chunks = {5, 1, 9, 4};
            for (int at = 0, c = 0; at < prompt.length; at += chunks[c++]) {
                logits = model.forward(List.of(new BatchEntry(cache, Arrays.copyOfRange(prompt, at, at + chunks[c]))))[0];
            }
            assertClose(expected.get(0), logits, "after chunked prefill");
            logits = model.forward(List.of(new BatchEntry(cache, new int[] {Fixtures.argmax(logits)})))[0];
            assertClose(expected.get(1), logits, "first decode after chunked prefill");
        }
    }

    @Test
    void truncateAndRecomputeGivesTheSameLogits() {
        int[] prompt = PROMPTS[2];
        try (SequenceCache cache = model.newSequence(prompt.length)) {
            float[] first = model.forward(List.of(new BatchEntry(cache, prompt)))[0];
            cache.truncate(5);
            assertEquals(5, cache.length());
            float[] again = model.forward(List.of(new BatchEntry(cache, Arrays.copyOfRange(prompt, 5, prompt.length))))[0];
            assertClose(first, again, "recompute after truncate");
        }
    }

    @Test
    void rejectsInvalidBatches() {
        try (SequenceCache cache = model.newSequence(4)) {
            assertThrows(IllegalArgumentException.class, () -> model.forward(List.of(new BatchEntry(cache, new int[5]))));
            assertThrows(IllegalArgumentException.class, () -> model.forward(List.of(new BatchEntry(cache, new int[0]))));
            assertThrows(IllegalArgumentException.class, () -> model.forward(List.of(new BatchEntry(cache, new int[] {512}))));
            assertThrows(IllegalArgumentException.class,
                    () -> model.forward(List.of(new BatchEntry(cache, new int[] {1}), new BatchEntry(cache, new int[] {2}))));
            assertEquals(0, cache.length());
        }
    }

    private static void assertClose(float[] expected, float[] actual, String what) {
        assertEquals(expected.length, actual.length, what);
        for (int i = 0; i < expected.length; i++) assertEquals(expected[i], actual[i], TOLERANCE, what + " logit " + i);
    }
}
