// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.transport.dp;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Arrays;
import org.junit.jupiter.api.Test;

class LoadBalancerTest {

    @Test
    void burstWithoutStatsSpreadsEvenlyThanksToOptimisticIncrements() {
        LoadBalancer lb = new LoadBalancer(2);
        int[] counts = new int[2];
        for (int i = 0; i < 16; i++) counts[lb.pick(r -> true)]++;
        assertEquals("[8, 8]", Arrays.toString(counts));
    }

    @Test
    void picksTheLeastFourTimesWaitingPlusRunning() {
        LoadBalancer lb = new LoadBalancer(3);
        lb.update(0, 1, 0); // score 4
        lb.update(1, 0, 3); // score 3
        lb.update(2, 0, 5); // score 5
        assertEquals(1, lb.pick(r -> true));
        assertEquals(7, lb.score(1), "the pick counts as waiting at once");
        assertEquals(0, lb.pick(r -> true)); // 4 < 5 < 7
    }

    @Test
    void tiesRotateTheStartingRank() {
        LoadBalancer lb = new LoadBalancer(3);
        for (int i = 0; i < 6; i++) {
            int r = lb.pick(x -> true);
            lb.update(r, 0, 0); // the engine reports the request gone at once: every pick is a tie
            assertEquals(i % 3, r);
        }
    }

    @Test
    void aReportReplacesTheOptimisticCount() {
        LoadBalancer lb = new LoadBalancer(2);
        lb.pick(r -> true);
        lb.pick(r -> true);
        lb.pick(r -> true); // rank 0 twice, rank 1 once
        assertEquals(8, lb.score(0));
        lb.update(0, 0, 1);
        assertEquals(1, lb.score(0));
        assertEquals(0, lb.pick(r -> true));
    }

    @Test
    void skipsUnusableRanksAndReportsWhenNoneIsLeft() {
        LoadBalancer lb = new LoadBalancer(2);
        for (int i = 0; i < 4; i++) assertEquals(1, lb.pick(r -> r != 0));
        assertEquals(-1, lb.pick(r -> false));
        assertEquals(0, lb.score(0), "a failed pick counts nothing");
    }

    @Test
    void needsAtLeastOneRank() {
        assertThrows(IllegalArgumentException.class, () -> new LoadBalancer(0));
    }
}
