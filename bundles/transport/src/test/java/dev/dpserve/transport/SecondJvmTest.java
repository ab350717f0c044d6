// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.transport;

import dev.dpserve.api.protocol.AbortRequests;
import dev.dpserve.api.protocol.EngineInit;
import dev.dpserve.api.protocol.EngineOutputs;
import dev.dpserve.api.protocol.EngineReady;
import dev.dpserve.transport.EngineHandshakeServer.ExpectedEngine;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A headless engine in a second JVM joins over tcp 127.0.0.1 and answers a request. */
@Timeout(60)
class SecondJvmTest {

    @Test
    void engineInAnotherProcessHandshakesAndEchoes() throws Exception {
        ProtocolCodec codec = new ProtocolCodec(ProtocolLimits.defaults());
        try (FrontEndConnection frontEnd = new FrontEndConnection("127.0.0.1", null, codec);
             EngineHandshakeServer head = new EngineHandshakeServer("tcp://127.0.0.1:0", null, codec)) {
            String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
            String classpath = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
            Process process = new ProcessBuilder(java, "-cp", classpath, EchoEngine.class.getName(), head.endpoint(), "1")
                    .redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.INHERIT)
                    .start();
            long pid = process.pid();
            try {
                EngineInit init = new EngineInit(2, List.of(frontEnd.requestEndpoint()), List.of(frontEnd.outputEndpoint()),
                        null, null, List.of());
                Map<Integer, EngineReady> ready = head.awaitEngines(List.of(new ExpectedEngine(1, false)), hello -> init,
                        Duration.ofSeconds(25));
                assertTrue(ready.get(1).headless());
                frontEnd.awaitEngines(List.of(1), Duration.ofSeconds(10));
                frontEnd.send(1, Messages.add("cross-process", 0));
                EngineOutputs out = assertInstanceOf(EngineOutputs.class, frontEnd.receiveOutput(Duration.ofSeconds(10)));
                assertEquals(1, out.engineRank());
                assertArrayEquals(new int[] {1, 1, 2, 3, 999}, out.outputs().getFirst().newTokenIds());
                frontEnd.send(1, new AbortRequests(List.of(EchoEngine.STOP)));
                assertTrue(process.waitFor(10, TimeUnit.SECONDS), "the engine process exits on request");
                assertEquals(0, process.exitValue());
            } finally {
                ProcessHandle.of(pid).ifPresent(p -> {
                    p.destroy();
                    try {
                        p.onExit().get(10, TimeUnit.SECONDS);
                    } catch (Exception e) {
                        p.destroyForcibly();
                    }
                });
            }
        }
    }
}
