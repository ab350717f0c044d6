// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.transport;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/** Echo engines on their own threads; {@link #join()} surfaces their failures in the test. */
final class Engines {
    private final List<CompletableFuture<Void>> running = new ArrayList<>();

    CompletableFuture<Void> start(String head, int rank, boolean local, ClusterKeys keys) {
        CompletableFuture<Void> f = new CompletableFuture<>();
        Thread t = new Thread(() -> {
            try {
                EchoEngine.serve(head, rank, local, keys);
                f.complete(null);
            } catch (Throwable e) {
                f.completeExceptionally(e);
            }
        }, "echo-engine-" + rank);
        t.setDaemon(true);
        t.start();
        running.add(f);
        return f;
    }

    void join() throws Exception {
        for (CompletableFuture<Void> f : running) f.get(20, TimeUnit.SECONDS);
    }
}
