// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.scheduler;

import org.osgi.annotation.versioning.ConsumerType;

/**
 * A scheduling policy, registered as a DS service with the {@link #NAME} property. The engine
 * picks one at every step boundary: the service whose name matches its {@code scheduler}
 * configuration, or else the one with the highest {@code service.ranking}. With none present,
 * requests wait.
 *
 * <p>A policy keeps no per-request state between steps: whatever it needs is in the context, so
 * a policy that replaces another mid-flight continues where the other stopped. It must be safe to
 * call from any one thread at a time (the engine loop of each engine calls it).
 */
@ConsumerType
public interface SchedulingPolicy {

    /** Service property (String): the policy's name, e.g. "v1" or "ascend". */
    String NAME = "dpserve.scheduler.name";

    /**
     * Decides one step: calls {@link SchedulerContext#schedule}, {@link SchedulerContext#admit},
     * {@link SchedulerContext#preempt} and {@link SchedulerContext#finishIgnored} on {@code ctx}.
     * Called on the engine loop thread, once per step, only while some request is waiting or
     * running; the context is valid only during this call. Scheduling nothing is allowed (the
     * engine then waits a little and asks again). A runtime exception ends the step's scheduling:
     * what was scheduled before it still runs.
     */
    void schedule(SchedulerContext ctx);
}
