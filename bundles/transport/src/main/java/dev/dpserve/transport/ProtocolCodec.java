// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.transport;

import com.fasterxml.jackson.annotation.JsonAutoDetect.Visibility;
import com.fasterxml.jackson.annotation.PropertyAccessor;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.MapperFeature;
import com.fasterxml.jackson.databind.ObjectReader;
import com.fasterxml.jackson.databind.ObjectWriter;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.dataformat.cbor.CBORFactory;
import com.fasterxml.jackson.dataformat.cbor.databind.CBORMapper;
import dev.dpserve.api.protocol.AbortRequests;
import dev.dpserve.api.protocol.AddRequest;
import dev.dpserve.api.protocol.CoordinatorReady;
import dev.dpserve.api.protocol.CoordinatorStats;
import dev.dpserve.api.protocol.DeltaLogprobs;
import dev.dpserve.api.protocol.EngineDead;
import dev.dpserve.api.protocol.EngineHello;
import dev.dpserve.api.protocol.EngineInit;
import dev.dpserve.api.protocol.EngineOutputs;
import dev.dpserve.api.protocol.EngineReady;
import dev.dpserve.api.protocol.FirstRequest;
import dev.dpserve.api.protocol.HandshakeRejected;
import dev.dpserve.api.protocol.MessageType;
import dev.dpserve.api.protocol.ProtocolMessage;
import dev.dpserve.api.protocol.RequestDelta;
import dev.dpserve.api.protocol.StartDpWave;
import dev.dpserve.api.protocol.UtilityCall;
import dev.dpserve.api.protocol.UtilityResult;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/**
 * Encodes protocol records as {@code [tag byte][CBOR map]} frames and decodes them back, bounded
 * by {@link ProtocolLimits}.
 *
 * <p>Safety: the record class is chosen by the tag through {@link MessageType}'s fixed table, never
 * by anything in the body; Jackson runs without default typing, with strict binding (unknown,
 * missing or duplicate properties, coercions and trailing bytes are errors) and with stream
 * constraints on nesting and string length. Every failure surfaces as {@link ProtocolException}.
 *
 * <p>Thread-safe; one instance can serve all sockets of a process.
 */
public final class ProtocolCodec {

    private final ProtocolLimits limits;
    private final Map<MessageType, ObjectReader> readers = new EnumMap<>(MessageType.class);
    private final ObjectWriter writer;

    public ProtocolCodec(ProtocolLimits limits) {
        this.limits = limits;
        CBORFactory factory = CBORFactory.builder()
                .streamReadConstraints(StreamReadConstraints.builder()
                        .maxNestingDepth(16)          // the deepest record is 5 levels
                        .maxStringLength(limits.maxTextChars())
                        .maxNumberLength(64)
                        .maxDocumentLength(limits.maxFrameBytes())
                        .build())
                .build();
        CBORMapper mapper = CBORMapper.builder(factory)
                // Record components only: a helper such as promptLength() or finished() must never become a wire field.
                .visibility(PropertyAccessor.GETTER, Visibility.NONE)
                .visibility(PropertyAccessor.IS_GETTER, Visibility.NONE)
                .visibility(PropertyAccessor.FIELD, Visibility.ANY)
                .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES,
                        DeserializationFeature.FAIL_ON_MISSING_CREATOR_PROPERTIES, DeserializationFeature.FAIL_ON_TRAILING_TOKENS,
                        DeserializationFeature.FAIL_ON_NUMBERS_FOR_ENUMS, DeserializationFeature.FAIL_ON_INVALID_SUBTYPE)
                .disable(DeserializationFeature.ACCEPT_FLOAT_AS_INT, DeserializationFeature.ACCEPT_SINGLE_VALUE_AS_ARRAY,
                        DeserializationFeature.ACCEPT_EMPTY_STRING_AS_NULL_OBJECT)
                .disable(MapperFeature.ALLOW_COERCION_OF_SCALARS)
                .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
                .disable(SerializationFeature.FAIL_ON_EMPTY_BEANS)
                .build();
        for (MessageType t : MessageType.values()) readers.put(t, mapper.readerFor(t.messageClass()));
        this.writer = mapper.writer();
    }

    public ProtocolLimits limits() { return limits; }

    /** The largest frame accepted for messages of this type. */
    public int maxFrameBytes(MessageType type) {
        return switch (type) {
            case ADD -> limits.maxRequestFrameBytes();
            case OUTPUTS -> limits.maxOutputFrameBytes();
            default -> limits.maxControlFrameBytes();
        };
    }

    /**
     * @throws ProtocolException if the message breaks a limit (the receiver would reject it) or
     *                           cannot be encoded
     */
    public byte[] encode(ProtocolMessage message) throws ProtocolException {
        MessageType type = MessageType.of(message);
        validate(message);
        ByteArrayOutputStream out = new ByteArrayOutputStream(256);
        out.write(type.code());
        try {
            writer.writeValue(out, message);
        } catch (IOException | RuntimeException e) {
            throw new ProtocolException("cannot encode " + type + ": " + firstLine(e), e);
        }
        if (out.size() > maxFrameBytes(type)) {
            throw new ProtocolException(type + " frame of " + out.size() + " bytes exceeds the limit of " + maxFrameBytes(type));
        }
        return out.toByteArray();
    }

    /** Decodes any message type. */
    public ProtocolMessage decode(byte[] frame) throws ProtocolException {
        return decode(frame, ProtocolMessage.class);
    }

    /**
     * Decodes a frame that must hold a message of {@code expected} (a record or a sealed
     * sub-interface such as {@link dev.dpserve.api.protocol.EngineInput}); other types are rejected
     * before their body is parsed, so a link only ever yields what it is meant to carry.
     */
    public <T extends ProtocolMessage> T decode(byte[] frame, Class<T> expected) throws ProtocolException {
        if (frame == null || frame.length == 0) throw new ProtocolException("empty frame");
        MessageType type = MessageType.ofCode(frame[0]);
        if (type == null) throw new ProtocolException(String.format("unknown message tag 0x%02x (%d bytes)", frame[0] & 0xff, frame.length));
        if (!expected.isAssignableFrom(type.messageClass())) {
            throw new ProtocolException(type + " is not allowed here (expected " + expected.getSimpleName() + ")");
        }
        int max = maxFrameBytes(type);
        if (frame.length > max) throw new ProtocolException(type + " frame of " + frame.length + " bytes exceeds the limit of " + max);
        Object value;
        try {
            value = readers.get(type).readValue(frame, 1, frame.length - 1);
        } catch (IOException | RuntimeException e) {
            throw new ProtocolException("malformed " + type + " frame (" + frame.length + " bytes): " + firstLine(e), e);
        }
        if (!(value instanceof ProtocolMessage m)) throw new ProtocolException("malformed " + type + " frame: no body");
        validate(m);
        return expected.cast(m);
    }

    /** Bounds that records cannot check themselves because they depend on configuration. */
    private void validate(ProtocolMessage message) throws ProtocolException {
        switch (message) {
            case EngineHello h -> rank(h.dpRank(), "dpRank");
            case EngineInit i -> {
                rank(i.dataParallelSize() - 1, "dataParallelSize");
                ids(i.requestAddresses(), limits.maxRanks(), "requestAddresses");
                ids(i.outputAddresses(), limits.maxRanks(), "outputAddresses");
                ids(i.dpGroupEndpoints(), limits.maxRanks(), "dpGroupEndpoints");
                if (i.coordinatorInputAddress() != null) id(i.coordinatorInputAddress(), "coordinatorInputAddress");
                if (i.coordinatorOutputAddress() != null) id(i.coordinatorOutputAddress(), "coordinatorOutputAddress");
            }
            case HandshakeRejected r -> text(r.reason(), "reason");
            case EngineReady r -> {
                rank(r.dpRank(), "dpRank");
                id(r.model().modelType(), "modelType");
            }
            case AddRequest a -> {
                id(a.requestId(), "requestId");
                tokens(a.promptTokenIds(), "promptTokenIds");
                count(a.sampling().stopTokenIds().size(), limits.maxBatchEntries(), "stopTokenIds");
                for (int t : a.sampling().stopTokenIds()) if (t < 0) throw new ProtocolException("negative stop token id " + t);
                count(a.sampling().logprobs(), limits.maxTopLogprobs(), "logprobs");
                rank(a.clientIndex(), "clientIndex");
            }
            case AbortRequests a -> ids(a.requestIds(), limits.maxBatchEntries(), "requestIds");
            case UtilityCall u -> {
                rank(u.clientIndex(), "clientIndex");
                id(u.method(), "method");
                count(u.args().size(), limits.maxRanks(), "args");
                for (String s : u.args()) text(s, "args");
            }
            case StartDpWave s -> rank(s.excludeRank(), "excludeRank");
            case EngineOutputs o -> {
                rank(o.engineRank(), "engineRank");
                count(o.outputs().size(), limits.maxBatchEntries(), "outputs");
                for (RequestDelta d : o.outputs()) delta(d);
                ids(o.finishedRequests(), limits.maxBatchEntries(), "finishedRequests");
                UtilityResult u = o.utilityResult();
                if (u != null) {
                    if (u.result() != null) text(u.result(), "result");
                    if (u.error() != null) text(u.error(), "error");
                }
            }
            case EngineDead d -> {
                rank(d.engineRank(), "engineRank");
                text(d.reason(), "reason");
            }
            case CoordinatorReady r -> rank(r.engines() - 1, "engines");
            case CoordinatorStats s -> {
                if (s.counts() != null) count(s.counts().size(), limits.maxRanks(), "counts");
            }
            case FirstRequest f -> rank(f.targetRank(), "targetRank");
        }
    }

    private void delta(RequestDelta d) throws ProtocolException {
        id(d.requestId(), "requestId");
        int[] tokens = d.newTokenIds();
        tokens(tokens, "newTokenIds");
        if (d.logprobs() != null) {
            if (d.logprobs().size() > tokens.length) {
                throw new ProtocolException("request " + d.requestId() + ": " + d.logprobs().size() + " logprobs for " + tokens.length + " tokens");
            }
            for (DeltaLogprobs l : d.logprobs()) count(l.topIds().length, limits.maxTopLogprobs(), "topIds");
        }
        if (d.error() != null) text(d.error(), "error");
    }

    private void tokens(int[] ids, String what) throws ProtocolException {
        count(ids.length, limits.maxSequenceTokens(), what);
        for (int t : ids) if (t < 0) throw new ProtocolException("negative token id " + t + " in " + what);
    }

    private void rank(int rank, String what) throws ProtocolException {
        if (rank >= limits.maxRanks()) throw new ProtocolException(what + " " + rank + " is beyond the limit of " + limits.maxRanks() + " ranks");
    }

    private static void count(int n, int max, String what) throws ProtocolException {
        if (n > max) throw new ProtocolException(what + " has " + n + " entries, the limit is " + max);
    }

    private void ids(List<String> ids, int max, String what) throws ProtocolException {
        count(ids.size(), max, what);
        for (String s : ids) id(s, what);
    }

    private void id(String s, String what) throws ProtocolException {
        if (s.length() > limits.maxIdChars()) throw new ProtocolException(what + " of " + s.length() + " chars exceeds " + limits.maxIdChars());
    }

    private void text(String s, String what) throws ProtocolException {
        if (s.length() > limits.maxTextChars()) throw new ProtocolException(what + " of " + s.length() + " chars exceeds " + limits.maxTextChars());
    }

    private static String firstLine(Throwable e) {
        String m = String.valueOf(e.getMessage());
        int nl = m.indexOf('\n');
        return e.getClass().getSimpleName() + ": " + (nl < 0 ? m : m.substring(0, nl));
    }
}
