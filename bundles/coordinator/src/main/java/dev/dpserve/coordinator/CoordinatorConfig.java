// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.coordinator;

import org.osgi.service.metatype.annotations.AttributeDefinition;
import org.osgi.service.metatype.annotations.ObjectClassDefinition;

/** Configuration of the DP coordinator (PID {@code dev.dpserve.coordinator}), written by the head's launcher. */
@ObjectClassDefinition(name = "dpserve DP coordinator", description = "Load counts and request waves of a data-parallel group")
public @interface CoordinatorConfig {

    @AttributeDefinition(description = "Number of DP engines (N)")
    int data_parallel_size();

    @AttributeDefinition(description = "Address the coordinator's sockets bind (the head's DP address); loopback only without a cluster key")
    String bind_address() default "127.0.0.1";

    @AttributeDefinition(description = "Port of the wave-control XPUB engines subscribe to (0 = random)")
    int engine_control_port() default 0;

    @AttributeDefinition(description = "Port of the PULL engines push stats and wave events to (0 = random)")
    int engine_output_port() default 0;

    @AttributeDefinition(description = "Port of the XPUB front ends subscribe to (0 = random)")
    int front_end_port() default 0;

    @AttributeDefinition(description = "Seconds to wait for every engine to subscribe")
    int startup_timeout_seconds() default 600;
}
