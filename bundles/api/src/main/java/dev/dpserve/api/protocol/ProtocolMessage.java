// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.protocol;

/**
 * A message of the dpserve wire protocol. The set is closed: a decoder maps each
 * {@link MessageType} tag to exactly one of these records and nothing else.
 */
public sealed interface ProtocolMessage
        permits EngineHello, EngineInit, HandshakeRejected, EngineReady, EngineInput, EngineOutputs, EngineDead,
                CoordinatorReady, CoordinatorStats, FirstRequest {

    /**
     * Bumped on any incompatible change of a record or tag. Engines send it in {@link EngineHello};
     * the head refuses a different value, so a mixed-version cluster fails at startup, not mid-request.
     * Version 2: {@link SchedulerStats} carries prefix-cache and preemption counters, {@link RequestDelta}
     * the queue time.
     */
    int VERSION = 2;

    /** Rank or wave "none" in fields where the wire format uses a sentinel instead of null. */
    int NONE = -1;
}
