// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.transport;

import dev.dpserve.api.engine.FinishReason;
import dev.dpserve.api.protocol.AbortRequests;
import dev.dpserve.api.protocol.AddRequest;
import dev.dpserve.api.protocol.EngineInit;
import dev.dpserve.api.protocol.EngineInput;
import dev.dpserve.api.protocol.EngineOutputs;
import dev.dpserve.api.protocol.EngineReady;
import dev.dpserve.api.protocol.RequestDelta;
import dev.dpserve.api.protocol.SchedulerStats;
import dev.dpserve.api.protocol.StartDpWave;

import java.time.Duration;
import java.util.List;

/**
 * A stand-in engine for transport tests: handshakes, then answers each ADD with one finished delta
 * whose tokens are {@code [rank, prompt...]}, reports each wave start to the coordinator, and
 * stops on an abort of {@value #STOP}. Runs in a thread or, via {@link #main}, in its own JVM.
 */
final class EchoEngine {
    static final String STOP = "__stop__";

    private EchoEngine() {}

    static void serve(String headEndpoint, int rank, boolean local, ClusterKeys keys) throws Exception {
        ProtocolCodec codec = new ProtocolCodec(ProtocolLimits.defaults());
        Duration timeout = Duration.ofSeconds(25);
        try (EngineHandshakeClient handshake = new EngineHandshakeClient(headEndpoint, rank, keys, codec)) {
            EngineInit init = handshake.hello(local, !local, timeout);
            try (EngineConnection connection = new EngineConnection(rank, init, keys, codec)) {
                connection.awaitCoordinatorReady(timeout);
                handshake.ready(new EngineReady(rank, local, !local, 100 + rank, Messages.FACTS));
                while (true) {
                    EngineInput input = connection.receive(Duration.ofSeconds(60));
                    switch (input) {
                        case null -> { return; } // the test is gone
                        case AddRequest add -> {
                            int[] prompt = add.promptTokenIds();
                            int[] echo = new int[prompt.length + 1];
                            echo[0] = rank;
                            System.arraycopy(prompt, 0, echo, 1, prompt.length);
                            RequestDelta delta = new RequestDelta(add.requestId(), echo, null, FinishReason.STOP, null,
                                    prompt.length, echo.length, 0, null);
                            connection.send(add.clientIndex(), EngineOutputs.ofDeltas(rank, List.of(delta), List.of(add.requestId())));
                        }
                        case AbortRequests abort -> {
                            if (abort.requestIds().contains(STOP)) return;
                        }
                        case StartDpWave wave -> connection.sendToCoordinator(
                                EngineOutputs.ofStats(rank, new SchedulerStats(0, 0, 0, wave.wave(), 0, 0, 0, 0, 0)));
                        default -> { }
                    }
                }
            }
        }
    }

    /** {@code EchoEngine <head endpoint> <rank>}: a remote (headless) engine in a second JVM. */
    public static void main(String[] args) throws Exception {
        serve(args[0], Integer.parseInt(args[1]), false, null);
    }
}
