// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.dpserve.api.model.CausalLm;
import dev.dpserve.api.model.CausalLm.BatchEntry;
import dev.dpserve.api.model.KvCacheLayout;
import dev.dpserve.model.Fixtures;
import dev.dpserve.model.PagedSequences;
import dev.dpserve.tensor.VectorKernelBackend;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Batching, chunking, paging, prefix sharing and recompute must not change the logits of a sequence. */
class LlamaBatchingTest {

    private static final double TOLERANCE = 1e-5;
    private static final int DECODE_STEPS = 6;
    private static final int BLOCK_SIZE = 4;
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

    private static PagedSequences pages() {
        return new PagedSequences(model, 64, BLOCK_SIZE);
    }

    /** Logits of prefill then greedy decode steps, one sequence per forward call. */
    private static List<float[]> alone(int[] prompt) {
        List<float[]> out = new ArrayList<>();
        PagedSequences.Seq seq = pages().newSequence();
        float[] logits = seq.forward(prompt);
        out.add(logits);
        for (int s = 0; s < DECODE_STEPS; s++) {
            logits = seq.forward(new int[] {Fixtures.argmax(logits)});
            out.add(logits);
        }
        return out;
    }

    @Test
    void layoutIsDenseKeysAndValues() {
        KvCacheLayout layout = model.kvCacheLayout();
        assertEquals(KvCacheLayout.DENSE, layout.kind());
        assertEquals(model.info().numLayers(), layout.numLayers());
        assertEquals(model.info().kvBytesPerToken(), layout.bytesPerToken());
    }

    @Test
    void mixedPrefillAndDecodeBatchEqualsEachSequenceAlone() {
        List<List<float[]>> expected = new ArrayList<>();
        for (int[] p : PROMPTS) expected.add(alone(p));

        List<List<float[]>> got = pages().staggered(PROMPTS, DECODE_STEPS);
        for (int i = 0; i < PROMPTS.length; i++) {
            assertEquals(expected.get(i).size(), got.get(i).size());
            for (int s = 0; s < expected.get(i).size(); s++) assertClose(expected.get(i).get(s), got.get(i).get(s), "seq " + i + " step " + s);
        }
    }

    @Test
    void chunkedPrefillEqualsPrefillAtOnce() {
        int[] prompt = PROMPTS[0];
        List<float[]> expected = alone(prompt);
        PagedSequences.Seq seq = pages().newSequence();
        float[] logits = null;
        int[] chunks = {5, 1, 9, 4};
        for (int at = 0, c = 0; at < prompt.length; at += chunks[c++]) {
            logits = seq.forward(Arrays.copyOfRange(prompt, at, at + chunks[c]));
        }
        assertClose(expected.get(0), logits, "after chunked prefill");
        logits = seq.forward(new int[] {Fixtures.argmax(logits)});
        assertClose(expected.get(1), logits, "first decode after chunked prefill");
    }

    @Test
    void chunksWithoutLogitsSkipTheHeadAndChangeNothing() {
        int[] prompt = PROMPTS[2];
        float[] expected = alone(prompt).get(0);
        PagedSequences.Seq seq = pages().newSequence();
        BatchEntry first = seq.entry(Arrays.copyOfRange(prompt, 0, 7), false);
        assertNull(model.forward(List.of(first))[0]);
        seq.advance(7);
        assertClose(expected, seq.forward(Arrays.copyOfRange(prompt, 7, prompt.length)), "after a logit-less chunk");
    }

    @Test
    void recomputeFromAnEarlierPositionGivesTheSameLogits() {
        int[] prompt = PROMPTS[2];
        PagedSequences.Seq seq = pages().newSequence();
        float[] first = seq.forward(prompt);
        seq.truncate(5);
        float[] again = seq.forward(Arrays.copyOfRange(prompt, 5, prompt.length));
        assertClose(first, again, "recompute after truncate");
    }

    @Test
    void sharedPrefixBlocksAreReadNotRecomputed() {
        int[] prompt = PROMPTS[0]; // 19 tokens: 4 full blocks and 3 more
        float[] expected = alone(prompt).get(0);
        PagedSequences pages = pages();
        PagedSequences.Seq owner = pages.newSequence();
        owner.forward(Arrays.copyOfRange(prompt, 0, 16));
        PagedSequences.Seq sharer = pages.newSequence();
        owner.shareBlocksWith(sharer, 4);
        assertClose(expected, sharer.forward(Arrays.copyOfRange(prompt, 16, prompt.length)), "suffix over shared blocks");
    }

    @Test
    void rejectsInvalidBatches() {
        PagedSequences.Seq seq = pages().newSequence();
        BatchEntry ok = seq.entry(new int[] {1});
        assertThrows(IllegalArgumentException.class, () -> model.forward(List.of(new BatchEntry(ok.blockTable(), 0, new int[5], true))));
        assertThrows(IllegalArgumentException.class, () -> model.forward(List.of(new BatchEntry(ok.blockTable(), 0, new int[0], true))));
        assertThrows(IllegalArgumentException.class, () -> model.forward(List.of(new BatchEntry(ok.blockTable(), 0, new int[] {512}, true))));
        assertThrows(IllegalArgumentException.class, () -> model.forward(List.of(new BatchEntry(new int[] {64}, 0, new int[] {1}, true))));
        assertThrows(IllegalArgumentException.class, () -> model.forward(List.of(ok, ok)), "the same slot written twice");
        assertThrows(IllegalArgumentException.class, () -> model.forward(List.of(new BatchEntry(new int[] {7}, 2, new int[] {1}, true))),
                "reads of a block never written");
    }

    private static void assertClose(float[] expected, float[] actual, String what) {
        assertEquals(expected.length, actual.length, what);
        for (int i = 0; i < expected.length; i++) assertEquals(expected[i], actual[i], TOLERANCE, what + " logit " + i);
    }
}
