// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.protocol;

import java.util.Objects;

/**
 * The one-byte tag that starts every frame, and the record it announces. Codes are part of the
 * protocol: never renumber, only add. All codes are at least 0x10 (0x00 and 0x01 are ZeroMQ's
 * unsubscribe/subscribe markers on XPUB/XSUB links).
 */
public enum MessageType {
    HELLO(0x10, EngineHello.class),
    INIT(0x11, EngineInit.class),
    REJECTED(0x12, HandshakeRejected.class),
    READY(0x13, EngineReady.class),
    ADD(0x20, AddRequest.class),
    ABORT(0x21, AbortRequests.class),
    UTILITY(0x22, UtilityCall.class),
    START_DP_WAVE(0x23, StartDpWave.class),
    OUTPUTS(0x30, EngineOutputs.class),
    ENGINE_DEAD(0x31, EngineDead.class),
    COORDINATOR_READY(0x40, CoordinatorReady.class),
    COORDINATOR_STATS(0x41, CoordinatorStats.class),
    FIRST_REQUEST(0x42, FirstRequest.class);

    private static final MessageType[] BY_CODE = new MessageType[256];

    static {
        for (MessageType t : values()) {
            if (BY_CODE[t.code] != null) throw new AssertionError("duplicate tag " + t.code);
            BY_CODE[t.code] = t;
        }
    }

    private final int code;
    private final Class<? extends ProtocolMessage> messageClass;

    MessageType(int code, Class<? extends ProtocolMessage> messageClass) {
        this.code = code;
        this.messageClass = messageClass;
    }

    /** The tag byte, 0x10..0xff. */
    public byte code() { return (byte) code; }

    public Class<? extends ProtocolMessage> messageClass() { return messageClass; }

    /** The type of a tag byte, or null if the tag is unknown. */
    public static MessageType ofCode(byte tag) { return BY_CODE[tag & 0xff]; }

    /** The type of a message. */
    public static MessageType of(ProtocolMessage message) {
        Objects.requireNonNull(message, "message");
        return switch (message) {
            case EngineHello m -> HELLO;
            case EngineInit m -> INIT;
            case HandshakeRejected m -> REJECTED;
            case EngineReady m -> READY;
            case AddRequest m -> ADD;
            case AbortRequests m -> ABORT;
            case UtilityCall m -> UTILITY;
            case StartDpWave m -> START_DP_WAVE;
            case EngineOutputs m -> OUTPUTS;
            case EngineDead m -> ENGINE_DEAD;
            case CoordinatorReady m -> COORDINATOR_READY;
            case CoordinatorStats m -> COORDINATOR_STATS;
            case FirstRequest m -> FIRST_REQUEST;
        };
    }
}
