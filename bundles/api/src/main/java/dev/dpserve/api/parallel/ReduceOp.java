// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.parallel;

/** How an all-reduce combines the ranks' values, element by element. */
public enum ReduceOp {
    /** The sum (wraps around on overflow, like Java's {@code long} arithmetic). */
    SUM,
    /** The largest value. */
    MAX,
    /** The smallest value. */
    MIN;

    /** Combines two values. */
    public long apply(long a, long b) {
        return switch (this) {
            case SUM -> a + b;
            case MAX -> Math.max(a, b);
            case MIN -> Math.min(a, b);
        };
    }
}
