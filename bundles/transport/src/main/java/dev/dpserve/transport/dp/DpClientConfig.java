// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.transport.dp;

import org.osgi.service.metatype.annotations.AttributeDefinition;
import org.osgi.service.metatype.annotations.ObjectClassDefinition;

/** Configuration of the DP client (PID {@code dev.dpserve.transport.client}), written by the launcher of a DP > 1 front end. */
@ObjectClassDefinition(name = "dpserve DP client", description = "The front end's link to its data-parallel engine processes")
public @interface DpClientConfig {

    @AttributeDefinition(description = "Hugging Face model directory (the tokenizer is loaded from it)")
    String model();

    @AttributeDefinition(description = "Name clients use as `model`; empty = the model path")
    String served_model_name() default "";

    @AttributeDefinition(description = "Number of DP ranks (engine processes) to wait for")
    int data_parallel_size();

    @AttributeDefinition(description = "Ranks 0..L-1 are started by this launcher (local); the others must join from headless nodes. -1 = all")
    int data_parallel_size_local() default -1;

    @AttributeDefinition(description = "Address the handshake and request/output sockets bind; loopback only without a cluster key")
    String data_parallel_address() default "127.0.0.1";

    @AttributeDefinition(description = "Handshake (rpc) port")
    int data_parallel_rpc_port() default 29550;

    @AttributeDefinition(description = "Seconds to wait for every rank to load its model and report READY")
    int startup_timeout_seconds() default 600;

    @AttributeDefinition(description = "The coordinator's wave-control XPUB engines subscribe to; empty = no coordinator")
    String coordinator_engine_control_address() default "";

    @AttributeDefinition(description = "The coordinator's PULL engines push stats and wave events to")
    String coordinator_engine_output_address() default "";

    @AttributeDefinition(description = "The coordinator's XPUB this front end subscribes to (load counts, waves) and sends FIRST_REQ on")
    String coordinator_front_end_address() default "";

    @AttributeDefinition(description = "Port on data_parallel_address where DP rank 0 binds the group's collectives; 0 = pick a free one")
    int dp_group_port() default 0;

    @AttributeDefinition(description = "Seconds without any message after which a rank counts as dead (engines report at least every second)")
    int rank_silence_timeout_seconds() default 15;
}
