// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.transport;

import dev.dpserve.api.protocol.AbortRequests;
import dev.dpserve.api.protocol.AddRequest;
import dev.dpserve.api.protocol.EngineInput;
import dev.dpserve.api.protocol.EngineOutputs;
import dev.dpserve.api.protocol.MessageType;
import dev.dpserve.api.protocol.ProtocolMessage;
import dev.dpserve.api.protocol.RequestDelta;
import dev.dpserve.api.protocol.RequestSampling;
import dev.dpserve.api.protocol.SchedulerStats;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

class ProtocolCodecTest {

    private final ProtocolCodec codec = new ProtocolCodec(ProtocolLimits.defaults());

    @Test
    void everyRecordRoundTrips() throws Exception {
        Set<MessageType> covered = EnumSet.noneOf(MessageType.class);
        for (ProtocolMessage m : Messages.all()) {
            byte[] frame = codec.encode(m);
            assertEquals(MessageType.of(m).code(), frame[0]);
            ProtocolMessage back = codec.decode(frame);
            assertEquals(m, back, () -> "round trip of " + m);
            assertArrayEquals(frame, codec.encode(back), "re-encoding is stable");
            covered.add(MessageType.of(m));
        }
        assertEquals(EnumSet.allOf(MessageType.class), covered, "a sample of every message type");
    }

    @Test
    void wireCarriesRecordComponentsOnlyAndNoClassNames() throws Exception {
        byte[] frame = codec.encode(Messages.add("r-1", 0));
        String text = new String(frame, StandardCharsets.ISO_8859_1);
        assertTrue(text.contains("promptTokenIds") && text.contains("currentWave"), text);
        assertTrue(!text.contains("promptLength") && !text.contains("dev.dpserve") && !text.contains("AddRequest"), text);
        byte[] out = codec.encode(EngineOutputs.ofDeltas(0, List.of(Messages.delta("r", 1, true)), List.of("r")));
        assertTrue(!new String(out, StandardCharsets.ISO_8859_1).contains("finished\""), "finished() is not a field");
    }

    @Test
    void version2CarriesPrefixCacheAndPreemptionCountersAndQueueTime() throws Exception {
        SchedulerStats stats = new SchedulerStats(1, 2, 3, 0, 0.25, 10, 20, 1, 5, 96, 64, 7);
        RequestDelta delta = new RequestDelta("r", new int[] {4}, null, null, null, 3, 1, 0, null, 42_000L);
        EngineOutputs back = codec.decode(codec.encode(new EngineOutputs(1, List.of(delta), stats, List.of(), -1, -1, null)),
                EngineOutputs.class);
        assertEquals(96, back.stats().prefixCacheQueries());
        assertEquals(64, back.stats().prefixCacheHits());
        assertEquals(7, back.stats().preemptions());
        assertEquals(42_000L, back.outputs().getFirst().queueNanos());
        assertEquals(42_000L, back.outputs().getFirst().toRequestOutput().queueNanos());
        assertEquals(2, ProtocolMessage.VERSION, "the wire change bumps the protocol version");
        // The counters travel as named CBOR fields of the stats map.
        byte[] v2 = codec.encode(EngineOutputs.ofStats(0, stats));
        String text = new String(v2, StandardCharsets.ISO_8859_1);
        assertTrue(text.contains("prefixCacheQueries") && text.contains("preemptions"), text);
    }

    @Test
    void tagsNeverLookLikeSubscriptions() {
        for (MessageType t : MessageType.values()) assertTrue((t.code() & 0xff) >= 0x10, t.name());
    }

    @Test
    void linkFiltersByExpectedType() throws Exception {
        byte[] abort = codec.encode(new AbortRequests(List.of("x")));
        assertEquals(new AbortRequests(List.of("x")), codec.decode(abort, EngineInput.class));
        ProtocolException e = assertThrows(ProtocolException.class, () -> codec.decode(abort, EngineOutputs.class));
        assertTrue(e.getMessage().contains("ABORT is not allowed here"), e.getMessage());
    }

    @Test
    void rejectsOversizedFrames() throws Exception {
        ProtocolCodec small = new ProtocolCodec(ProtocolLimits.defaults().withFrameBytes(1024, 2048, 4096));
        byte[] big = new byte[2000];
        big[0] = MessageType.ABORT.code();
        ProtocolException e = assertThrows(ProtocolException.class, () -> small.decode(big));
        assertTrue(e.getMessage().contains("exceeds the limit of 1024"), e.getMessage());

        List<String> ids = new ArrayList<>();
        for (int i = 0; i < 200; i++) ids.add("request-" + i);
        e = assertThrows(ProtocolException.class, () -> small.encode(new AbortRequests(ids)));
        assertTrue(e.getMessage().contains("exceeds the limit"), e.getMessage());
        // The large codec accepts the frame the small one refuses.
        assertEquals(new AbortRequests(ids), codec.decode(codec.encode(new AbortRequests(ids))));
    }

    @Test
    void rejectsCollectionsBeyondTheirBounds() throws Exception {
        ProtocolCodec tight = new ProtocolCodec(ProtocolLimits.defaults().withMaxSequenceTokens(3));
        byte[] frame = codec.encode(Messages.add("r-1", 0)); // 4 prompt tokens
        ProtocolException e = assertThrows(ProtocolException.class, () -> tight.decode(frame));
        assertTrue(e.getMessage().contains("promptTokenIds has 4 entries, the limit is 3"), e.getMessage());

        AddRequest negative = new AddRequest("r", new int[] {1, -5}, Messages.add("r", 0).sampling(), 0, 0, 0);
        e = assertThrows(ProtocolException.class, () -> codec.encode(negative));
        assertTrue(e.getMessage().contains("negative token id -5"), e.getMessage());

        String longId = "x".repeat(2000);
        e = assertThrows(ProtocolException.class, () -> codec.encode(new AbortRequests(List.of(longId))));
        assertTrue(e.getMessage().contains("requestIds of 2000 chars"), e.getMessage());

        RequestDelta tooManyLogprobs = new RequestDelta("r", new int[0],
                List.of(new dev.dpserve.api.protocol.DeltaLogprobs(1, 0f, 1, new int[0], new float[0])), null, null, 1, 1, 0, null);
        e = assertThrows(ProtocolException.class, () -> codec.encode(EngineOutputs.ofDeltas(0, List.of(tooManyLogprobs), List.of())));
        assertTrue(e.getMessage().contains("1 logprobs for 0 tokens"), e.getMessage());
    }

    @Test
    void rejectsUnknownTagsAndEmptyFrames() {
        ProtocolException e = assertThrows(ProtocolException.class, () -> codec.decode(new byte[] {(byte) 0x7f, (byte) 0xa0}));
        assertTrue(e.getMessage().contains("unknown message tag 0x7f"), e.getMessage());
        assertThrows(ProtocolException.class, () -> codec.decode(new byte[0]));
        assertThrows(ProtocolException.class, () -> codec.decode(null));
        assertThrows(ProtocolException.class, () -> codec.decode(new byte[] {0x01}), "a subscription byte is no message");
    }

    @Test
    void rejectsBodiesThatDoNotFitTheRecord() throws Exception {
        byte[] abort = codec.encode(new AbortRequests(List.of("a")));
        byte[] asHello = abort.clone();
        asHello[0] = MessageType.HELLO.code();
        expectMalformed(asHello, "HELLO"); // unknown property requestIds, missing dpRank
        expectMalformed(new byte[] {MessageType.HELLO.code()}, "HELLO"); // no body
        expectMalformed(new byte[] {MessageType.HELLO.code(), (byte) 0xf6}, "HELLO"); // CBOR null
        expectMalformed(concat(abort, new byte[] {0x01}), "ABORT"); // trailing bytes
        // A record invariant (negative rank) fails like any other malformed body.
        byte[] hello = codec.encode(dev.dpserve.api.protocol.EngineHello.of(1, true, false));
        byte[] negative = replaceFirst(hello, new byte[] {'d', 'p', 'R', 'a', 'n', 'k', 0x01}, new byte[] {'d', 'p', 'R', 'a', 'n', 'k', 0x20});
        expectMalformed(negative, "HELLO");
        // A string where an int belongs is not coerced.
        byte[] wave = codec.encode(new dev.dpserve.api.protocol.FirstRequest(2, 5));
        byte[] stringWave = replaceFirst(wave, new byte[] {'w', 'a', 'v', 'e', 0x05}, new byte[] {'w', 'a', 'v', 'e', 0x61, '5'});
        expectMalformed(stringWave, "FIRST_REQUEST");
    }

    @Test
    void randomBytesNeverThrowAnythingButProtocolException() throws Exception {
        Random random = new Random(20240501);
        List<byte[]> valid = new ArrayList<>();
        for (ProtocolMessage m : Messages.all()) valid.add(codec.encode(m));
        MessageType[] types = MessageType.values();
        int accepted = 0;
        for (int i = 0; i < 30_000; i++) {
            byte[] frame;
            switch (i % 4) {
                case 0 -> { // pure noise
                    frame = new byte[random.nextInt(64)];
                    random.nextBytes(frame);
                }
                case 1 -> { // a valid tag followed by noise
                    frame = new byte[1 + random.nextInt(128)];
                    random.nextBytes(frame);
                    frame[0] = types[random.nextInt(types.length)].code();
                }
                case 2 -> { // a valid frame truncated
                    byte[] v = valid.get(random.nextInt(valid.size()));
                    frame = Arrays.copyOf(v, random.nextInt(v.length));
                }
                default -> { // a valid frame with a few bytes flipped
                    frame = valid.get(random.nextInt(valid.size())).clone();
                    for (int k = 0; k < 1 + random.nextInt(3); k++) frame[random.nextInt(frame.length)] ^= (byte) (1 + random.nextInt(255));
                }
            }
            try {
                codec.decode(frame);
                accepted++;
            } catch (ProtocolException expected) {
                // the only allowed failure
            } catch (Throwable t) {
                fail("decode threw " + t + " for " + HexFormat.of().formatHex(frame), t);
            }
        }
        assertTrue(accepted < 30_000 / 4, "most mutations are rejected (accepted " + accepted + ")");
    }

    @Test
    void deeplyNestedInputIsBounded() {
        byte[] frame = new byte[1 + 5000];
        frame[0] = MessageType.INIT.code();
        Arrays.fill(frame, 1, frame.length, (byte) 0x81); // arrays of one array of one array ...
        assertThrows(ProtocolException.class, () -> codec.decode(frame));
    }

    @Test
    void samplingConvertsBothWays() {
        var params = new dev.dpserve.api.engine.SamplingParams(0.5, 0.8, 5, 0.1, 3L, 20, 1, Set.of(9, 3), true, 2);
        RequestSampling wire = RequestSampling.of(params);
        assertEquals(List.of(3, 9), wire.stopTokenIds());
        assertEquals(params, wire.toSamplingParams());
        var request = new dev.dpserve.api.engine.EngineRequest("r", new int[] {4, 5}, params, System.nanoTime() - 5_000_000);
        AddRequest add = AddRequest.of(request, 1, 2);
        var back = add.toEngineRequest();
        assertArrayEquals(request.promptTokenIds(), back.promptTokenIds());
        assertEquals(params, back.sampling());
        long ageNanos = System.nanoTime() - back.arrivalNanos();
        assertTrue(ageNanos >= 4_000_000 && ageNanos < 5_000_000_000L, "arrival age survives: " + ageNanos);
    }

    private void expectMalformed(byte[] frame, String type) {
        ProtocolException e = assertThrows(ProtocolException.class, () -> codec.decode(frame), () -> Messages.describe(frame));
        assertTrue(e.getMessage().startsWith("malformed " + type), e.getMessage());
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] r = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }

    private static byte[] replaceFirst(byte[] in, byte[] find, byte[] with) {
        outer:
        for (int i = 0; i + find.length <= in.length; i++) {
            for (int j = 0; j < find.length; j++) if (in[i + j] != find[j]) continue outer;
            byte[] r = new byte[in.length - find.length + with.length];
            System.arraycopy(in, 0, r, 0, i);
            System.arraycopy(with, 0, r, i, with.length);
            System.arraycopy(in, i + find.length, r, i + with.length, in.length - i - find.length);
            return r;
        }
        throw new AssertionError("pattern not found in " + HexFormat.of().formatHex(in));
    }
}
