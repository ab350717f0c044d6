// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import dev.dpserve.api.engine.EngineStats;
import dev.dpserve.api.engine.InferenceEngine;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Load for the hot-swap tests inside the container: client threads that keep sending greedy
 * completions of a few prompts and compare each answer with the one the server gave before the
 * swaps began. Every mismatch or error is a failure; {@link #stop} lets each client finish at
 * least two requests.
 */
final class GreedyClients {

    private static final String[] PROMPTS = {"Hello", "The future of AI is", "One two three four five six", "x"};

    private final AtomicBoolean running = new AtomicBoolean(true);
    private final AtomicInteger done = new AtomicInteger();
    private final List<String> failures = new CopyOnWriteArrayList<>();
    private final List<Thread> threads = new ArrayList<>();

    /** Takes the expected answers (no swap yet), then starts {@code count} clients. */
    static GreedyClients start(int count) throws Exception {
        Map<String, String> expected = new ConcurrentHashMap<>();
        for (String p : PROMPTS) expected.put(p, InContainer.complete(p));
        GreedyClients g = new GreedyClients();
        for (int c = 0; c < count; c++) {
            int client = c;
            Thread t = new Thread(() -> {
                for (int i = 0; g.running.get() || i < 2; i++) {
                    String prompt = PROMPTS[(client + i) % PROMPTS.length];
                    try {
                        String text = InContainer.complete(prompt);
                        if (!expected.get(prompt).equals(text)) g.failures.add("'" + prompt + "' gave '" + text + "'");
                        g.done.incrementAndGet();
                    } catch (Throwable e) { // AssertionError too: a dying client thread must fail the test
                        g.failures.add("'" + prompt + "': " + e);
                    }
                }
            }, "client-" + c);
            t.start();
            g.threads.add(t);
        }
        return g;
    }

    /** Requests completed so far. */
    int done() {
        return done.get();
    }

    /** Stops the clients, waits for them and fails the test on any wrong or failed answer. */
    void stop() throws InterruptedException {
        running.set(false);
        for (Thread t : threads) t.join(120_000);
        assertTrue("failures: " + failures, failures.isEmpty());
    }

    /** Once the load is gone: nothing running or waiting, no KV block in use, the engine healthy. */
    static void assertIdle(InferenceEngine engine) throws InterruptedException {
        EngineStats stats = engine.stats();
        for (int i = 0; i < 50 && (stats.running() + stats.waiting() > 0 || stats.kvBlocksUsed() > 0); i++) {
            Thread.sleep(100);
            stats = engine.stats();
        }
        assertEquals("running + waiting", 0, stats.running() + stats.waiting());
        assertEquals("KV blocks in use when idle", 0, stats.kvBlocksUsed());
        assertEquals(null, engine.unhealthyReason());
    }
}
