// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.protocol;

/** Request counts of one DP rank as last reported to the coordinator. */
public record RankLoad(int waiting, int running) {
    public RankLoad {
        if (waiting < 0 || running < 0) throw new IllegalArgumentException("counts must be >= 0");
    }

    /** The load-balancing score of spec 3.3: lower is better. */
    public long score() { return 4L * waiting + running; }
}
