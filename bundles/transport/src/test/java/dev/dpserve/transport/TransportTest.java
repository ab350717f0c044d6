// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.transport;

import dev.dpserve.api.engine.EngineUnavailableException;
import dev.dpserve.api.protocol.AbortRequests;
import dev.dpserve.api.protocol.CoordinatorStats;
import dev.dpserve.api.protocol.EngineInit;
import dev.dpserve.api.protocol.EngineOutputs;
import dev.dpserve.api.protocol.EngineReady;
import dev.dpserve.api.protocol.FirstRequest;
import dev.dpserve.api.protocol.MessageType;
import dev.dpserve.api.protocol.ProtocolMessage;
import dev.dpserve.api.protocol.RankLoad;
import dev.dpserve.api.protocol.RequestDelta;
import dev.dpserve.api.protocol.StartDpWave;
import dev.dpserve.transport.EngineHandshakeServer.ExpectedEngine;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.zeromq.SocketType;
import org.zeromq.ZContext;
import org.zeromq.ZMQ;

import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(60)
class TransportTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(20);
    private final ProtocolCodec codec = new ProtocolCodec(ProtocolLimits.defaults());

    @Test
    void twoEnginesHandshakeAndRequestsAreRoutedByRank() throws Exception {
        Engines engines = new Engines();
        try (FrontEndConnection frontEnd = new FrontEndConnection("127.0.0.1", null, codec);
             EngineHandshakeServer head = new EngineHandshakeServer("tcp://127.0.0.1:0", null, codec)) {
            EngineInit init = new EngineInit(2, List.of(frontEnd.requestEndpoint()), List.of(frontEnd.outputEndpoint()),
                    null, null, List.of());
            engines.start(head.endpoint(), 0, true, null);
            engines.start(head.endpoint(), 1, true, null);
            try {
                Map<Integer, EngineReady> ready = head.awaitEngines(
                        List.of(new ExpectedEngine(0, true), new ExpectedEngine(1, true)), hello -> init, TIMEOUT);
                assertEquals(Map.of(0, 100, 1, 101), Map.of(0, ready.get(0).numKvBlocks(), 1, ready.get(1).numKvBlocks()));
                frontEnd.awaitEngines(List.of(0, 1), TIMEOUT);

                Map<String, Integer> target = new HashMap<>();
                for (int i = 0; i < 10; i++) {
                    int rank = i % 3 == 0 ? 1 : 0;
                    frontEnd.send(rank, Messages.add("r-" + i, 0));
                    target.put("r-" + i, rank);
                }
                for (int i = 0; i < 10; i++) {
                    ProtocolMessage m = frontEnd.receiveOutput(TIMEOUT);
                    EngineOutputs out = assertInstanceOf(EngineOutputs.class, m);
                    RequestDelta delta = out.outputs().getFirst();
                    int rank = target.remove(delta.requestId());
                    assertEquals(rank, out.engineRank(), "answered by the rank it was sent to");
                    assertArrayEquals(new int[] {rank, 1, 2, 3, 999}, delta.newTokenIds());
                    assertEquals(List.of(delta.requestId()), out.finishedRequests());
                }
                assertTrue(target.isEmpty());
                assertNull(frontEnd.receiveOutput(Duration.ofMillis(50)));

                EngineUnavailableException e = assertThrows(EngineUnavailableException.class,
                        () -> frontEnd.send(7, Messages.add("r-x", 0)));
                assertTrue(e.getMessage().contains("DP rank 7 is not connected"), e.getMessage());
            } finally {
                stop(frontEnd, 0, 1);
            }
            engines.join();
        }
    }

    @Test
    void missingRankTimesOutNamingIt() throws Exception {
        Engines engines = new Engines();
        try (FrontEndConnection frontEnd = new FrontEndConnection("127.0.0.1", null, codec);
             EngineHandshakeServer head = new EngineHandshakeServer("tcp://127.0.0.1:0", null, codec)) {
            EngineInit init = new EngineInit(3, List.of(frontEnd.requestEndpoint()), List.of(frontEnd.outputEndpoint()),
                    null, null, List.of());
            engines.start(head.endpoint(), 0, true, null);
            try {
                HandshakeException e = assertThrows(HandshakeException.class, () -> head.awaitEngines(
                        List.of(new ExpectedEngine(0, true), new ExpectedEngine(1, false), new ExpectedEngine(2, false)),
                        hello -> init, Duration.ofSeconds(8))); // long enough for rank 0 on a loaded machine (a stalled connect heals in ~2 s)
                assertTrue(e.getMessage().contains("rank 1 (never connected), rank 2 (never connected)"), e.getMessage());
                assertTrue(!e.getMessage().contains("rank 0"), e.getMessage());
            } finally {
                stop(frontEnd, 0);
            }
            engines.join();
        }
    }

    @Test
    void headRejectsUnknownRanksAndMismatchedFlags() throws Exception {
        try (EngineHandshakeServer head = new EngineHandshakeServer("tcp://127.0.0.1:0", null, codec)) {
            var waiting = java.util.concurrent.CompletableFuture.supplyAsync(() -> {
                try {
                    return head.awaitEngines(List.of(new ExpectedEngine(0, true), new ExpectedEngine(1, false)), hello -> null, TIMEOUT);
                } catch (HandshakeException e) {
                    throw new java.util.concurrent.CompletionException(e);
                }
            });
            // A stray rank is refused, and the head keeps waiting.
            var unknown = new Engines().start(head.endpoint(), 5, true, null);
            ExecutionException failure = assertThrows(ExecutionException.class, () -> unknown.get(TIMEOUT.toSeconds(), java.util.concurrent.TimeUnit.SECONDS));
            assertMentions(failure.getCause(), "rejected DP rank 5: DP rank 5 is not part of this deployment");
            assertTrue(!waiting.isDone());
            // A known rank with the wrong flags is a deployment error: the head fails at once.
            new Engines().start(head.endpoint(), 1, true, null); // local=true where the head expects a remote engine
            failure = assertThrows(ExecutionException.class, () -> waiting.get(TIMEOUT.toSeconds(), java.util.concurrent.TimeUnit.SECONDS));
            assertMentions(failure.getCause(), "DP rank 1 says local=true but the head expects it on another node");
        }
    }

    @Test
    void engineWithoutHeadTimesOutClearly() {
        try (EngineHandshakeClient client = new EngineHandshakeClient("tcp://127.0.0.1:1", 0, null, codec)) {
            HandshakeException e = assertThrows(HandshakeException.class, () -> client.hello(true, false, Duration.ofMillis(700)));
            assertTrue(e.getMessage().contains("refused: wrong cluster key or unreachable head (no TCP connection could be made)"),
                    e.getMessage());
        }
    }

    @Test
    void coordinatorWavesStatsAndFirstRequest() throws Exception {
        Engines engines = new Engines();
        try (FrontEndConnection frontEnd = new FrontEndConnection("127.0.0.1", null, codec);
             CoordinatorSockets coordinator = new CoordinatorSockets("127.0.0.1", null, codec);
             CoordinatorClient stats = new CoordinatorClient(coordinator.frontEndPublishEndpoint(), null, codec);
             EngineHandshakeServer head = new EngineHandshakeServer("tcp://127.0.0.1:0", null, codec)) {
            EngineInit init = new EngineInit(2, List.of(frontEnd.requestEndpoint()), List.of(frontEnd.outputEndpoint()),
                    coordinator.engineControlEndpoint(), coordinator.engineOutputEndpoint(), List.of());
            engines.start(head.endpoint(), 0, true, null);
            engines.start(head.endpoint(), 1, true, null);
            try {
                // Engines block on the coordinator's READY before they send theirs (spec 2.3 step 5), so the
                // coordinator (its own process in a deployment) waits on another thread than the head.
                var subscribed = java.util.concurrent.CompletableFuture.runAsync(() -> {
                    try {
                        coordinator.awaitEngineSubscriptions(2, TIMEOUT);
                    } catch (HandshakeException e) {
                        throw new java.util.concurrent.CompletionException(e);
                    }
                });
                head.awaitEngines(List.of(new ExpectedEngine(0, true), new ExpectedEngine(1, true)), hello -> init, TIMEOUT);
                subscribed.get(TIMEOUT.toSeconds(), java.util.concurrent.TimeUnit.SECONDS);

                coordinator.publishToEngines(new StartDpWave(3, ProtocolMessage.NONE));
                Map<Integer, Integer> waves = new HashMap<>();
                for (int i = 0; i < 2; i++) {
                    EngineOutputs out = assertInstanceOf(EngineOutputs.class, coordinator.receive(TIMEOUT));
                    waves.put(out.engineRank(), out.stats().currentWave());
                }
                assertEquals(Map.of(0, 3, 1, 3), waves, "every engine got the wave start and reported to the coordinator");

                // Pub/sub has no delivery before the subscription arrives: publish until the front end sees one.
                CoordinatorStats published = new CoordinatorStats(List.of(new RankLoad(1, 2), new RankLoad(0, 0)), 3, true);
                CoordinatorStats seen = null;
                for (int i = 0; i < 100 && seen == null; i++) {
                    coordinator.publishToFrontEnds(published);
                    seen = stats.receiveLatest(Duration.ofMillis(100));
                }
                assertEquals(published, seen);

                stats.sendFirstRequest(new FirstRequest(1, 3));
                assertEquals(new FirstRequest(1, 3), coordinator.receive(TIMEOUT));
            } finally {
                stop(frontEnd, 0, 1);
            }
            engines.join();
        }
    }

    @Test
    void malformedFramesOnEveryBoundSocketAreDroppedAndLinksSurvive() throws Exception {
        Engines engines = new Engines();
        try (FrontEndConnection frontEnd = new FrontEndConnection("127.0.0.1", null, codec);
             CoordinatorSockets coordinator = new CoordinatorSockets("127.0.0.1", null, codec);
             EngineHandshakeServer head = new EngineHandshakeServer("tcp://127.0.0.1:0", null, codec);
             ZContext attacker = new ZContext()) {
            byte[][] junk = {{(byte) 0x7f, 1, 2}, {MessageType.OUTPUTS.code(), (byte) 0xff, 0}, {}, codec.encode(new AbortRequests(List.of("x")))};
            for (String endpoint : List.of(frontEnd.outputEndpoint(), coordinator.engineOutputEndpoint())) {
                ZMQ.Socket push = attacker.createSocket(SocketType.PUSH);
                push.connect(endpoint);
                for (byte[] j : junk) push.send(j, 0);
            }
            ZMQ.Socket dealer = attacker.createSocket(SocketType.DEALER);
            dealer.connect(head.endpoint());
            for (byte[] j : junk) dealer.send(j, 0);
            ZMQ.Socket router = attacker.createSocket(SocketType.DEALER);
            router.connect(frontEnd.requestEndpoint());
            router.send("not-empty".getBytes(), 0);
            ZMQ.Socket upstream = attacker.createSocket(SocketType.XSUB);
            upstream.connect(coordinator.frontEndPublishEndpoint());
            for (byte[] j : junk) if (j.length > 0) upstream.send(j, 0);

            assertNull(frontEnd.receiveOutput(Duration.ofMillis(500)));
            assertEquals(4, frontEnd.rejectedFrames(), "three junk frames and an ABORT, which does not belong on the output link");
            assertNull(coordinator.receive(Duration.ofMillis(300)));
            assertEquals(7, coordinator.rejectedFrames(), "4 on the engine output link, 3 upstream from the front-end link");

            // The same sockets still carry a normal session.
            EngineInit init = new EngineInit(1, List.of(frontEnd.requestEndpoint()), List.of(frontEnd.outputEndpoint()),
                    null, null, List.of());
            engines.start(head.endpoint(), 0, true, null);
            try {
                head.awaitEngines(List.of(new ExpectedEngine(0, true)), hello -> init, TIMEOUT);
                frontEnd.awaitEngines(List.of(0), TIMEOUT);
                frontEnd.send(0, Messages.add("after-junk", 0));
                EngineOutputs out = assertInstanceOf(EngineOutputs.class, frontEnd.receiveOutput(TIMEOUT));
                assertEquals("after-junk", out.outputs().getFirst().requestId());
                assertTrue(frontEnd.rejectedFrames() >= 5, "the identity-less junk on the request socket was counted too");
            } finally {
                stop(frontEnd, 0);
            }
            engines.join();
        }
    }

    private static void stop(FrontEndConnection frontEnd, int... ranks) {
        for (int rank : ranks) {
            try {
                frontEnd.send(rank, new AbortRequests(List.of(EchoEngine.STOP)));
            } catch (Exception e) {
                // not connected: its thread ends on its own receive timeout or handshake failure
            }
        }
    }

    static void assertMentions(Throwable e, String text) {
        assertNotNull(e);
        assertTrue(e.getMessage().contains(text), e.getMessage());
    }
}
