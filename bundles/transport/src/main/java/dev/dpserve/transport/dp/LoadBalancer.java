// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.transport.dp;

import java.util.function.IntPredicate;

/**
 * Picks the DP rank for a new request (spec 3.3): the least {@code 4·waiting + running} among the
 * usable ranks, scanning from a start index that rotates with every pick so that ties do not all
 * land on rank 0. The counts come from each rank's latest reported stats; every pick adds one to
 * the chosen rank's waiting count at once, because stats arrive only with the next output batch
 * and a burst between two reports would otherwise pile onto the same rank. A report replaces the
 * rank's counts, optimistic increments included (it is newer than them, or close enough).
 *
 * <p>Thread-safe.
 */
final class LoadBalancer {

    private final int[] waiting;
    private final int[] running;
    private int nextStart;

    LoadBalancer(int ranks) {
        if (ranks < 1) throw new IllegalArgumentException("ranks must be >= 1, got " + ranks);
        this.waiting = new int[ranks];
        this.running = new int[ranks];
    }

    int ranks() { return waiting.length; }

    /**
     * Chooses a rank and counts the request as waiting there.
     *
     * @param usable false for ranks that must not get requests (dead ones)
     * @return the rank, or -1 if no rank is usable
     */
    synchronized int pick(IntPredicate usable) {
        int n = waiting.length;
        int start = nextStart;
        nextStart = (nextStart + 1) % n;
        int best = -1;
        long bestScore = Long.MAX_VALUE;
        for (int i = 0; i < n; i++) {
            int rank = (start + i) % n;
            if (!usable.test(rank)) continue;
            long score = score(rank);
            if (score < bestScore) { // strict: ties go to the first rank in rotated order
                best = rank;
                bestScore = score;
            }
        }
        if (best >= 0) waiting[best]++;
        return best;
    }

    /** A rank's reported counts. */
    synchronized void update(int rank, int waitingCount, int runningCount) {
        waiting[rank] = Math.max(0, waitingCount);
        running[rank] = Math.max(0, runningCount);
    }

    /** The current score of {@code rank}, optimistic increments included. */
    synchronized long score(int rank) {
        return 4L * waiting[rank] + running[rank];
    }
}
