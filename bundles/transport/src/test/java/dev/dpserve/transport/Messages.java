// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.transport;

import dev.dpserve.api.engine.FinishReason;
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
import dev.dpserve.api.protocol.ModelFacts;
import dev.dpserve.api.protocol.ProtocolMessage;
import dev.dpserve.api.protocol.RankLoad;
import dev.dpserve.api.protocol.RequestDelta;
import dev.dpserve.api.protocol.RequestSampling;
import dev.dpserve.api.protocol.SchedulerStats;
import dev.dpserve.api.protocol.StartDpWave;
import dev.dpserve.api.protocol.UtilityCall;
import dev.dpserve.api.protocol.UtilityResult;

import java.util.Arrays;
import java.util.List;

/** One sample of every message type, with nulls and sentinels where the records allow them. */
final class Messages {
    private Messages() {}

    static final ModelFacts FACTS = new ModelFacts("deepseek_v3", 4096, 1000, 16, true);

    static AddRequest add(String id, int clientIndex) {
        return new AddRequest(id, new int[] {1, 2, 3, 999},
                new RequestSampling(0.7, 0.9, 40, 0.05, 1234L, 16, 2, List.of(7, 9), false, 3),
                1_700_000_000_000_000L, clientIndex, 5);
    }

    static RequestDelta delta(String id, int token, boolean last) {
        return new RequestDelta(id, new int[] {token}, null, last ? FinishReason.STOP : null, last ? token : null, 4, 1, 0, null);
    }

    static List<ProtocolMessage> all() {
        RequestDelta withLogprobs = new RequestDelta("r-2", new int[] {5, 6},
                List.of(new DeltaLogprobs(5, -0.25f, 1, new int[] {5, 8}, new float[] {-0.25f, -2f}),
                        new DeltaLogprobs(6, Float.NEGATIVE_INFINITY, 3, new int[0], new float[0])),
                FinishReason.LENGTH, null, 10, 2, 8, null, 1_250_000L);
        RequestDelta failed = new RequestDelta("r-3", new int[0], null, FinishReason.ABORT, null, 3, 0, 0, "out of KV blocks");
        return List.of(
                EngineHello.of(3, false, true),
                new EngineInit(4, List.of("tcp://127.0.0.1:4001"), List.of("tcp://127.0.0.1:4002"),
                        "tcp://127.0.0.1:4003", "tcp://127.0.0.1:4004", List.of("tcp://127.0.0.1:4005")),
                new EngineInit(1, List.of("tcp://127.0.0.1:4001", "tcp://127.0.0.1:4011"),
                        List.of("tcp://127.0.0.1:4002", "tcp://127.0.0.1:4012"), null, null, List.of()),
                new HandshakeRejected("rank 7 is not part of this deployment"),
                new EngineReady(2, true, false, 12345, FACTS),
                add("r-1", 0),
                new AddRequest("r-9", new int[] {0}, new RequestSampling(0, 1, 0, 0, null, 1, 0, List.of(), true, -1), 0, 1, 0),
                new AbortRequests(List.of("r-1", "r-2")),
                new UtilityCall(0, 42L, "stats", List.of("a", "")),
                new StartDpWave(7, -1),
                new StartDpWave(8, 2),
                new EngineOutputs(1, List.of(delta("r-1", 17, false), withLogprobs, failed),
                        new SchedulerStats(2, 1, 31, 4, 0.5, 100, 200, 3, 1000, 640, 512, 2), List.of("r-2", "r-3"), -1, -1, null),
                EngineOutputs.ofStats(1, new SchedulerStats(0, 2, 17, 3, 0.25, 10, 20, 1, 99, 8, 4, 1,
                        new dev.dpserve.api.engine.WaveStats(1, 3, true, 17, 12, 40, 123_456_789L))),
                EngineOutputs.ofWaveComplete(0, 3),
                EngineOutputs.ofStartWave(2, 4),
                new EngineOutputs(0, List.of(), null, List.of(), -1, -1, new UtilityResult(42L, "{\"running\":1}", null)),
                new EngineOutputs(0, List.of(), null, List.of(), -1, -1, new UtilityResult(43L, null, "no such method")),
                new EngineDead(1, "OutOfMemoryError in forward"),
                new CoordinatorReady(4),
                new CoordinatorStats(List.of(new RankLoad(0, 1), new RankLoad(3, 2)), 5, true),
                new CoordinatorStats(null, 6, false),
                new FirstRequest(2, 5));
    }

    static String describe(byte[] frame) {
        return frame.length + " bytes " + Arrays.toString(Arrays.copyOf(frame, Math.min(frame.length, 16)));
    }
}
