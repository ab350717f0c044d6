// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.parallel;

import org.osgi.annotation.versioning.ConsumerType;

/**
 * What a lockstep engine tells the DP coordinator (spec 4.2 step 7, 4.3). Called on the engine
 * loop thread; implementations only enqueue.
 */
@ConsumerType
public interface WaveEvents {

    /** Rank 0 only: the whole group finished {@code wave} and paused. */
    void waveComplete(int wave);

    /** A stale-wave request reached this paused engine: the coordinator must restart everyone at {@code wave}. */
    void startWave(int wave);
}
