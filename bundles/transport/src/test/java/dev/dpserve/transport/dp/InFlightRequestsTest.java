// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.transport.dp;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dpserve.api.engine.OutputListener;
import java.util.List;
import org.junit.jupiter.api.Test;

class InFlightRequestsTest {

    private final OutputListener listener = out -> { };

    @Test
    void abortRoutingFollowsTheRequestUntilItFinishes() {
        InFlightRequests m = new InFlightRequests();
        assertTrue(m.add("a", 1, listener));
        assertTrue(m.add("b", 0, listener));
        assertEquals(1, m.rankOf("a"));
        assertEquals(0, m.rankOf("b"));
        assertSame(listener, m.remove("a").listener()); // finished
        assertEquals(-1, m.rankOf("a"), "an abort after the finish goes nowhere");
        assertNull(m.remove("a"));
        assertEquals(1, m.size());
    }

    @Test
    void aDuplicateIdIsRefusedAndKeepsTheFirstRoute() {
        InFlightRequests m = new InFlightRequests();
        assertTrue(m.add("a", 1, listener));
        assertFalse(m.add("a", 0, listener));
        assertEquals(1, m.rankOf("a"));
    }

    @Test
    void aDeadRankTakesOnlyItsOwnRequests() {
        InFlightRequests m = new InFlightRequests();
        m.add("a", 0, listener);
        m.add("b", 1, listener);
        m.add("c", 1, listener);
        List<String> gone = m.removeRank(1).stream().map(InFlightRequests.Entry::requestId).sorted().toList();
        assertEquals(List.of("b", "c"), gone);
        assertEquals(0, m.rankOf("a"));
        assertEquals(List.of("a"), m.removeAll().stream().map(InFlightRequests.Entry::requestId).toList());
        assertEquals(0, m.size());
    }
}
