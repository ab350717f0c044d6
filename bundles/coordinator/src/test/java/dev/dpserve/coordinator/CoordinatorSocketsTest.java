// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.coordinator;

import dev.dpserve.api.protocol.CoordinatorStats;
import dev.dpserve.api.protocol.EngineInit;
import dev.dpserve.api.protocol.EngineInput;
import dev.dpserve.api.protocol.EngineOutputs;
import dev.dpserve.api.protocol.FirstRequest;
import dev.dpserve.api.protocol.RankLoad;
import dev.dpserve.api.protocol.SchedulerStats;
import dev.dpserve.api.protocol.StartDpWave;
import dev.dpserve.transport.CoordinatorClient;
import dev.dpserve.transport.EngineConnection;
import dev.dpserve.transport.FrontEndConnection;
import dev.dpserve.transport.ProtocolCodec;
import dev.dpserve.transport.ProtocolLimits;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.annotation.Annotation;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

/**
 * The coordinator component over real sockets on loopback, with two engines' connections and a
 * front end's client from the transport: READY after both subscribe, counts published to the front
 * end, FIRST_REQ → START_DP_WAVE, wave_complete → paused in the next wave, start_wave → restart.
 */
class CoordinatorSocketsTest {

    private final ProtocolCodec codec = new ProtocolCodec(ProtocolLimits.defaults());
    private final List<AutoCloseable> open = new ArrayList<>();
    private Coordinator coordinator;

    @AfterEach
    void close() throws Exception {
        for (AutoCloseable c : open.reversed()) c.close();
        if (coordinator != null) coordinator.deactivate();
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    private static CoordinatorConfig config(int n, int control, int output, int frontEnd) {
        return new CoordinatorConfig() {
            @Override public Class<? extends Annotation> annotationType() { return CoordinatorConfig.class; }
            @Override public int data_parallel_size() { return n; }
            @Override public String bind_address() { return "127.0.0.1"; }
            @Override public int engine_control_port() { return control; }
            @Override public int engine_output_port() { return output; }
            @Override public int front_end_port() { return frontEnd; }
            @Override public int startup_timeout_seconds() { return 30; }
        };
    }

    private static StartDpWave nextWave(EngineConnection engine) {
        EngineInput in = engine.receive(Duration.ofSeconds(10));
        assertNotNull(in, "no START_DP_WAVE for rank " + engine.dpRank());
        return (StartDpWave) in;
    }

    private static CoordinatorStats await(CoordinatorClient client, Predicate<CoordinatorStats> p, Runnable poke) {
        long deadline = System.nanoTime() + Duration.ofSeconds(15).toNanos();
        while (System.nanoTime() < deadline) {
            if (poke != null) poke.run();
            CoordinatorStats s = client.receiveLatest(Duration.ofMillis(300));
            if (s != null && p.test(s)) return s;
        }
        throw new AssertionError("no matching publication");
    }

    @Test
    void wavesAndCountsFlowThroughTheSockets() throws Exception {
        int control = freePort(), output = freePort(), publish = freePort();
        coordinator = new Coordinator(config(2, control, output, publish), null); // no BundleContext: no cluster key, no state file
        FrontEndConnection frontEnd = new FrontEndConnection("127.0.0.1", null, codec); // so the engines' sockets have peers
        open.add(frontEnd);
        EngineInit init = new EngineInit(2, List.of(frontEnd.requestEndpoint()), List.of(frontEnd.outputEndpoint()),
                "tcp://127.0.0.1:" + control, "tcp://127.0.0.1:" + output, List.of());
        EngineConnection e0 = new EngineConnection(0, init, null, codec);
        EngineConnection e1 = new EngineConnection(1, init, null, codec);
        open.add(e0);
        open.add(e1);
        e0.awaitCoordinatorReady(Duration.ofSeconds(20));
        e1.awaitCoordinatorReady(Duration.ofSeconds(20));
        CoordinatorClient client = new CoordinatorClient("tcp://127.0.0.1:" + publish, null, codec);
        open.add(client);

        // Counts reach the front end (repeated until its subscription is through: PUB/SUB drops earlier ones).
        CoordinatorStats counts = await(client, s -> s.counts() != null && s.counts().get(1).waiting() == 3, () -> {
            try {
                e1.sendToCoordinator(EngineOutputs.ofStats(1, new SchedulerStats(1, 3, 0, 0, 0, 0, 0, 0, 0)));
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        });
        assertEquals(List.of(new RankLoad(0, 0), new RankLoad(3, 1)), counts.counts());
        assertEquals(0, counts.currentWave());

        // FIRST_REQ for rank 1 while paused: every engine hears START_DP_WAVE(0, exclude 1); the front end hears "running".
        client.sendFirstRequest(new FirstRequest(1, 0));
        assertEquals(new StartDpWave(0, 1), nextWave(e0));
        assertEquals(new StartDpWave(0, 1), nextWave(e1));
        await(client, s -> s.counts() == null && s.enginesRunning() && s.currentWave() == 0, null);

        // Rank 0 reports the end of wave 0: paused in wave 1.
        e0.sendToCoordinator(EngineOutputs.ofWaveComplete(0, 0));
        await(client, s -> s.counts() == null && !s.enginesRunning() && s.currentWave() == 1, null);

        // A stale request reached paused rank 1: it asks for wave 1, the others are started without it.
        e1.sendToCoordinator(EngineOutputs.ofStartWave(1, 1));
        assertEquals(new StartDpWave(1, 1), nextWave(e0));
        await(client, s -> s.counts() == null && s.enginesRunning() && s.currentWave() == 1, null);
    }
}
