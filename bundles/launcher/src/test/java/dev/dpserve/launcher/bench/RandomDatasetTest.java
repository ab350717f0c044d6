// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.launcher.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class RandomDatasetTest {

    /**
     * One character per id ('A' + id), one BOS on encode(add special). Ids ≥ 20 decode to two
     * characters that re-encode as two ids, so the decode/re-encode adjustment has work to do.
     */
    static final class FakeTokenizer implements BenchTokenizer {
        final int vocab;

        FakeTokenizer(int vocab) {
            this.vocab = vocab;
        }

        @Override
        public int[] encode(String text, boolean addSpecialTokens) {
            int[] ids = new int[text.length() + (addSpecialTokens ? 1 : 0)];
            int k = 0;
            if (addSpecialTokens) ids[k++] = 0;
            for (char c : text.toCharArray()) ids[k++] = c - 'A';
            return ids;
        }

        @Override
        public String decode(int[] ids) {
            StringBuilder sb = new StringBuilder();
            for (int id : ids) {
                if (id >= 20) sb.append((char) ('A' + id % 10)).append((char) ('A' + id % 10));
                else sb.append((char) ('A' + id));
            }
            return sb.toString();
        }

        @Override
        public int vocabSize() {
            return vocab;
        }

        @Override
        public int numSpecialTokensToAdd() {
            return 1;
        }

        @Override
        public String id() {
            return "fake";
        }
    }

    @Test
    void rangesFollowVllm() {
        // I' = 100 - 1 special token; [floor(99·0.75), ceil(99·1.25)]; output [max(1, floor(10·0.75)), ceil(10·1.25)]
        assertEquals(new RandomDataset.Ranges(74, 124, 7, 13), RandomDataset.ranges(100, 10, 0.25, 1));
        assertEquals(new RandomDataset.Ranges(99, 99, 10, 10), RandomDataset.ranges(100, 10, 0.0, 1));
        assertEquals(1, RandomDataset.ranges(100, 1, 0.9, 1).outputLow(), "output at least 1 token");
    }

    @Test
    void lengthsStayInTheirRanges() throws Exception {
        FakeTokenizer tok = new FakeTokenizer(20); // every id is one character: re-encoding is exact
        List<RandomDataset.SampleRequest> reqs = RandomDataset.sample(tok, 300, 41, 16, 0.5, 5, 7, 4, null);
        RandomDataset.Ranges r = RandomDataset.ranges(41, 16, 0.5, 1);
        assertEquals(300, reqs.size());
        boolean sawLow = false;
        boolean sawHigh = false;
        for (RandomDataset.SampleRequest q : reqs) {
            int own = q.promptLen() - 5;
            assertTrue(own >= r.inputLow() && own <= r.inputHigh(), "input " + own + " in " + r);
            assertTrue(q.expectedOutputLen() >= r.outputLow() && q.expectedOutputLen() <= r.outputHigh());
            assertEquals(q.promptLen(), q.prompt().length());
            sawLow |= own == r.inputLow();
            sawHigh |= own == r.inputHigh();
        }
        assertTrue(sawLow && sawHigh, "both ends are reachable (inclusive range)");
        String prefix = reqs.get(0).prompt().substring(0, 5);
        for (RandomDataset.SampleRequest q : reqs) assertTrue(q.prompt().startsWith(prefix), "shared random prefix");
    }

    @Test
    void tokensAreOffsetPlusIndexPlusArange() throws Exception {
        FakeTokenizer tok = new FakeTokenizer(20);
        List<RandomDataset.SampleRequest> reqs = RandomDataset.sample(tok, 5, 11, 4, 0.0, 0, 3, 1, null);
        for (RandomDataset.SampleRequest q : reqs) {
            int[] ids = tok.encode(q.prompt(), false);
            assertEquals(10, ids.length);
            for (int j = 1; j < ids.length; j++) assertEquals((ids[j - 1] + 1) % 20, ids[j], "consecutive ids mod vocab");
        }
    }

    @Test
    void sameSeedSameDatasetAtAnyParallelism() throws Exception {
        FakeTokenizer tok = new FakeTokenizer(40); // ids ≥ 20 re-encode longer: the adjustment draws random ids
        assertEquals(RandomDataset.sample(tok, 50, 30, 8, 0.3, 3, 11, 1, null),
                RandomDataset.sample(tok, 50, 30, 8, 0.3, 3, 11, 16, null));
        assertTrue(!RandomDataset.sample(tok, 50, 30, 8, 0.3, 3, 11, 1, null)
                .equals(RandomDataset.sample(tok, 50, 30, 8, 0.3, 3, 12, 1, null)));
    }

    @Test
    void reencodingIsAdjustedToTheTarget() throws Exception {
        FakeTokenizer tok = new FakeTokenizer(40);
        RandomDataset.Adjusted a = RandomDataset.decodeToTargetLen(tok, new int[] {25, 26, 27, 1}, 4, 40, new SplittableRandom(0));
        assertEquals(4, a.tokens().length, "truncated to the target");
        assertEquals(a.prompt().length() >= 4, true);
    }
}
