// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.transport;

import dev.dpserve.api.protocol.AbortRequests;
import dev.dpserve.api.protocol.EngineInit;
import dev.dpserve.api.protocol.EngineOutputs;
import dev.dpserve.transport.EngineHandshakeServer.ExpectedEngine;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Timeout(60)
class CurveTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(20);
    // A refusal is recognised from the dropped connection within about a second; the timeout only bounds a hang.
    private static final Duration REFUSAL_TIMEOUT = Duration.ofSeconds(15);
    private static final String DROPPED = "refused: wrong cluster key or unreachable head (the head accepted TCP and dropped the connection";
    private final ProtocolCodec codec = new ProtocolCodec(ProtocolLimits.defaults());
    private final ClusterKeys cluster = ClusterKeys.random();

    @Test
    void rightKeyConnectsEndToEnd() throws Exception {
        Engines engines = new Engines();
        try (FrontEndConnection frontEnd = new FrontEndConnection("127.0.0.1", cluster, codec);
             EngineHandshakeServer head = new EngineHandshakeServer("tcp://127.0.0.1:0", cluster, codec)) {
            EngineInit init = new EngineInit(1, List.of(frontEnd.requestEndpoint()), List.of(frontEnd.outputEndpoint()),
                    null, null, List.of());
            engines.start(head.endpoint(), 0, true, cluster);
            try {
                head.awaitEngines(List.of(new ExpectedEngine(0, true)), hello -> init, TIMEOUT);
                frontEnd.awaitEngines(List.of(0), TIMEOUT);
                frontEnd.send(0, Messages.add("secure", 0));
                EngineOutputs out = assertInstanceOf(EngineOutputs.class, frontEnd.receiveOutput(TIMEOUT));
                assertEquals("secure", out.outputs().getFirst().requestId());
                assertTrue(head.refusedPeers().isEmpty() && frontEnd.refusedPeers().isEmpty());
            } finally {
                frontEnd.send(0, new AbortRequests(List.of(EchoEngine.STOP)));
            }
            engines.join();
        }
    }

    @Test
    void wrongKeyIsRefusedOnBothSides() {
        try (EngineHandshakeServer head = new EngineHandshakeServer("tcp://127.0.0.1:0", cluster, codec);
             EngineHandshakeClient intruder = new EngineHandshakeClient(head.endpoint(), 0, ClusterKeys.random(), codec)) {
            HandshakeException e = assertThrows(HandshakeException.class, () -> intruder.hello(true, false, REFUSAL_TIMEOUT));
            assertTrue(e.getMessage().contains(DROPPED), e.getMessage());
            assertTrue(!head.refusedPeers().isEmpty(), "the head logged the refusal");
            assertTrue(head.refusedPeers().getFirst().contains("the peer uses a different cluster key"), head.refusedPeers().toString());
            assertTrue(head.refusedPeers().getFirst().startsWith("refused a connection from 127.0.0.1:"), "names the peer: "
                    + head.refusedPeers());
            assertTrue(head.refusedPeers().getFirst().contains("ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC"), head.refusedPeers().toString());
        }
    }

    @Test
    void missingKeyIsRefused() {
        try (EngineHandshakeServer head = new EngineHandshakeServer("tcp://127.0.0.1:0", cluster, codec);
             EngineHandshakeClient plain = new EngineHandshakeClient(head.endpoint(), 0, null, codec)) {
            HandshakeException e = assertThrows(HandshakeException.class, () -> plain.hello(true, false, REFUSAL_TIMEOUT));
            assertTrue(e.getMessage().contains(DROPPED), e.getMessage());
            // JeroMQ drops a mechanism mismatch without a handshake-failure event: the head only sees a
            // disconnect, and reports the rank as never connected when its startup times out.
        }
    }
}
