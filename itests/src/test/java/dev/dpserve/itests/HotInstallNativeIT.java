// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertTrue;
import static org.ops4j.pax.exam.CoreOptions.systemProperty;

import dev.dpserve.api.engine.EngineStats;
import dev.dpserve.api.engine.InferenceEngine;
import dev.dpserve.api.tensor.DType;
import dev.dpserve.api.tensor.KernelBackend;
import dev.dpserve.api.tensor.KernelSelection;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import javax.inject.Inject;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.junit.PaxExam;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;
import org.osgi.framework.Bundle;
import org.osgi.framework.BundleContext;
import org.osgi.framework.FrameworkEvent;
import org.osgi.framework.wiring.FrameworkWiring;

/**
 * The native kernel fragment installed into a running server: the server starts without it
 * (Java backends only), clients keep sending greedy completions, the fragment is installed and its
 * host {@code dev.dpserve.tensor} refreshed. The refresh takes every kernel backend away for a
 * moment (the engine's step waits), then "native" appears and the engine computes with it from the
 * next step. Every request completes with the output it has without the swap, and no KV block
 * stays in use.
 */
@RunWith(PaxExam.class)
@ExamReactorStrategy(PerClass.class)
public class HotInstallNativeIT {

    private static final String FRAGMENT = "dev.dpserve.tensor.native.linux.x86_64";
    private static final String[] PROMPTS = {"Hello", "The future of AI is", "One two three four five six", "x"};

    @Inject
    private BundleContext context;

    @Configuration
    public Option[] config() throws IOException {
        Path[] fragment = new Path[1];
        List<Option> options = ServerOptions.server("paxexam-hot-native", 300_000, b -> {
            boolean isFragment = b.jar().getFileName().toString().startsWith(FRAGMENT + "-");
            if (isFragment) fragment[0] = b.jar();
            return !isFragment;
        });
        assertNotNull("the distribution ships " + FRAGMENT, fragment[0]);
        options.add(systemProperty("dpserve.itest.nativejar").value(fragment[0].toString()));
        return options.toArray(Option[]::new);
    }

    @Test
    public void installingTheNativeFragmentSwitchesTheEngineWithoutLosingARequest() throws Exception {
        InContainer.configureServer(context, Map.of("max.num.seqs", 3));
        InferenceEngine engine = InContainer.service(context, InferenceEngine.class);
        KernelSelection kernels = InContainer.service(context, KernelSelection.class);
        assertFalse("no native backend before the install: " + kernels.backends(), kernels.backends().contains("native"));
        assertEquals("vector", chosenMatmul(kernels));

        Map<String, String> expected = new ConcurrentHashMap<>();
        for (String p : PROMPTS) expected.put(p, InContainer.complete(p));

        AtomicBoolean running = new AtomicBoolean(true);
        AtomicInteger done = new AtomicInteger();
        AtomicInteger doneAfterSwitch = new AtomicInteger();
        AtomicBoolean switched = new AtomicBoolean();
        List<String> failures = new CopyOnWriteArrayList<>();
        List<Thread> clients = new ArrayList<>();
        for (int c = 0; c < 4; c++) {
            int client = c;
            Thread t = new Thread(() -> {
                for (int i = 0; running.get() || i < 2; i++) {
                    String prompt = PROMPTS[(client + i) % PROMPTS.length];
                    try {
                        String text = InContainer.complete(prompt);
                        if (!expected.get(prompt).equals(text)) failures.add("'" + prompt + "' gave '" + text + "'");
                        done.incrementAndGet();
                        if (switched.get()) doneAfterSwitch.incrementAndGet();
                    } catch (Throwable e) { // AssertionError too: a dying client thread must fail the test
                        failures.add("'" + prompt + "': " + e);
                    }
                }
            }, "client-" + c);
            t.start();
            clients.add(t);
        }
        Thread.sleep(1000);
        int before = done.get();

        // Install the fragment and refresh its host: the host bundle restarts with the library.
        Bundle fragment = context.installBundle(Path.of(System.getProperty("dpserve.itest.nativejar")).toUri().toString());
        Bundle host = installed("dev.dpserve.tensor");
        CountDownLatch refreshed = new CountDownLatch(1);
        context.getBundle(0).adapt(FrameworkWiring.class).refreshBundles(List.of(host), event -> {
            if (event.getType() == FrameworkEvent.PACKAGES_REFRESHED) refreshed.countDown();
        });
        assertTrue("the host refresh finished", refreshed.await(60, TimeUnit.SECONDS));
        assertEquals("fragment attached", Bundle.RESOLVED, fragment.getState());
        assertEquals("host active again", Bundle.ACTIVE, host.getState());

        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!"native".equals(chosenMatmul(kernels)) && System.nanoTime() < deadline) Thread.sleep(50);
        assertEquals("MATMUL F32 after the install: " + kernels.choices(), "native", chosenMatmul(kernels));
        switched.set(true);
        long steps = engine.stats().steps();
        deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (doneAfterSwitch.get() < 8 && System.nanoTime() < deadline) Thread.sleep(50);

        running.set(false);
        for (Thread t : clients) t.join(120_000);
        assertTrue("failures: " + failures, failures.isEmpty());
        assertTrue("requests completed before the install: " + before, before >= 1);
        assertTrue("requests completed on the native backend: " + doneAfterSwitch.get(), doneAfterSwitch.get() >= 8);
        assertTrue("the engine stepped after the switch", engine.stats().steps() > steps);

        EngineStats stats = engine.stats();
        for (int i = 0; i < 50 && (stats.running() + stats.waiting() > 0 || stats.kvBlocksUsed() > 0); i++) {
            Thread.sleep(100);
            stats = engine.stats();
        }
        assertEquals("running + waiting", 0, stats.running() + stats.waiting());
        assertEquals("KV blocks in use when idle", 0, stats.kvBlocksUsed());
        assertEquals(null, engine.unhealthyReason());
    }

    /** The backend chosen for MATMUL on F32 weights (the tiny model's). */
    private static String chosenMatmul(KernelSelection kernels) {
        for (KernelSelection.Choice c : kernels.choices()) {
            if (c.op() == KernelBackend.Op.MATMUL && c.dtype() == DType.F32) return c.chosen();
        }
        return null;
    }

    private Bundle installed(String bsn) {
        for (Bundle b : context.getBundles()) if (bsn.equals(b.getSymbolicName())) return b;
        throw new AssertionError(bsn + " not installed");
    }
}
