// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertTrue;
import static org.ops4j.pax.exam.CoreOptions.systemProperty;

import dev.dpserve.api.engine.InferenceEngine;
import dev.dpserve.api.tensor.DType;
import dev.dpserve.api.tensor.KernelBackend;
import dev.dpserve.api.tensor.KernelSelection;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
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

        GreedyClients clients = GreedyClients.start(4);
        Thread.sleep(1000);
        int before = clients.done();

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
        int atSwitch = clients.done();
        long steps = engine.stats().steps();
        deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (clients.done() - atSwitch < 8 && System.nanoTime() < deadline) Thread.sleep(50);

        clients.stop();
        int onNative = clients.done() - atSwitch;
        assertTrue("requests completed before the install: " + before, before >= 1);
        assertTrue("requests completed on the native backend: " + onNative, onNative >= 8);
        assertTrue("the engine stepped after the switch", engine.stats().steps() > steps);
        GreedyClients.assertIdle(engine);
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
