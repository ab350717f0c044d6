// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.parallel;

import dev.dpserve.api.parallel.Communicator;
import dev.dpserve.api.parallel.GroupSpec;

import java.io.IOException;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/** Test helper (engine tests): a real JeroMQ group of {@code size} ranks on loopback, joined in parallel. */
public final class TestGroups {
    private TestGroups() {}

    public static List<Communicator> loopback(int size, Duration timeout) throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        String endpoint = "tcp://127.0.0.1:" + port;
        List<CompletableFuture<Communicator>> fs = new ArrayList<>();
        for (int r = 0; r < size; r++) {
            GroupSpec spec = new GroupSpec(r, size, List.of(endpoint), timeout, Duration.ofSeconds(20));
            fs.add(CompletableFuture.supplyAsync(() -> new ZmqCommunicatorFactory().join(spec), x -> Thread.ofPlatform().start(x)));
        }
        List<Communicator> out = new ArrayList<>();
        for (CompletableFuture<Communicator> f : fs) out.add(f.get(30, TimeUnit.SECONDS));
        return out;
    }
}
