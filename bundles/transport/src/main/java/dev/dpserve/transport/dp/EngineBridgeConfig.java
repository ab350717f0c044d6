// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.transport.dp;

import org.osgi.service.metatype.annotations.AttributeDefinition;
import org.osgi.service.metatype.annotations.ObjectClassDefinition;

/** Configuration of an engine process's link to its head (PID {@code dev.dpserve.transport.engine}), written by the launcher. */
@ObjectClassDefinition(name = "dpserve DP engine bridge", description = "Serves the in-process engine to a DP front end over ZeroMQ")
public @interface EngineBridgeConfig {

    @AttributeDefinition(description = "Global data-parallel rank of this engine")
    int dp_rank();

    @AttributeDefinition(description = "Address of the DP head (its handshake socket)")
    String data_parallel_address() default "127.0.0.1";

    @AttributeDefinition(description = "Handshake (rpc) port of the head")
    int data_parallel_rpc_port() default 29550;

    @AttributeDefinition(description = "This node's own address (--data-parallel-node-address): what the engine binds or"
            + " advertises, if anything; never the head's address on a headless node")
    String node_address() default "127.0.0.1";

    @AttributeDefinition(description = "True if the head's launcher started this engine; false on a headless node")
    boolean local() default true;

    @AttributeDefinition(description = "True if this engine runs on a headless node (no front end)")
    boolean headless() default false;

    @AttributeDefinition(description = "Seconds to wait for the head's reply to HELLO")
    int handshake_timeout_seconds() default 600;

    @AttributeDefinition(description = "Tokens per KV cache block (reported to the head)")
    int block_size() default 16;

    @AttributeDefinition(description = "True for models with expert layers (reported to the head)")
    boolean moe() default false;

    @AttributeDefinition(description = "Seconds a DP-group collective waits for the slowest rank before this rank gives up (MoE lockstep)")
    int collective_timeout_seconds() default 30;

    @AttributeDefinition(description = "Milliseconds between stats reports while idle (the front end's liveness signal)")
    int heartbeat_millis() default 1000;
}
