// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.ops4j.pax.exam.CoreOptions.systemProperty;

import dev.dpserve.api.engine.InferenceEngine;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
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

/**
 * Swaps the scheduler bundles ten times (stop/start, update, uninstall/install, and a moment with
 * no policy at all) while clients keep sending greedy completions: every request completes with
 * the output it has without swaps, and no KV block stays in use afterwards.
 */
@RunWith(PaxExam.class)
@ExamReactorStrategy(PerClass.class)
public class SchedulerSwapIT {

    @Inject
    private BundleContext context;

    @Configuration
    public Option[] config() throws IOException {
        List<Option> options = ServerOptions.server("paxexam-swap", 300_000);
        for (TestSupport.BundleJar b : TestSupport.bundles(List.of("engine"))) {
            if (b.jar().getFileName().toString().startsWith("dev.dpserve.scheduler.v1-")) {
                options.add(systemProperty("dpserve.itest.v1jar").value(b.jar().toString()));
            }
        }
        return options.toArray(Option[]::new);
    }

    @Test
    public void swappingSchedulersUnderLoadLosesNothing() throws Exception {
        // fewer slots than clients: requests queue while swapping
        InContainer.configureServer(context, Map.of("max.num.seqs", 3));
        InferenceEngine engine = service(InferenceEngine.class);

        GreedyClients clients = GreedyClients.start(5);

        Bundle v1 = installed("dev.dpserve.scheduler.v1");
        Bundle ascend = installed("dev.dpserve.scheduler.ascend");
        for (int swap = 0; swap < 10; swap++) {
            Thread.sleep(300);
            switch (swap % 5) {
                case 0 -> { v1.stop(); Thread.sleep(300); v1.start(); }          // ascend serves meanwhile
                case 1 -> v1.update();
                case 2 -> {                                                      // uninstall and install again
                    String location = v1.getLocation();
                    v1.uninstall();
                    Thread.sleep(300);
                    v1 = context.installBundle(location);
                    v1.start();
                }
                case 3 -> {                                                      // no policy at all for a moment
                    v1.stop();
                    ascend.stop();
                    Thread.sleep(500);
                    assertTrue(engine.unhealthyReason(), engine.unhealthyReason().contains("no scheduling policy"));
                    ascend.start();
                    v1.start();
                }
                default -> { ascend.update(); v1.stop(); Thread.sleep(300); v1.start(); }
            }
        }
        // Hot deploy through FileInstall's deploy/ folder, still under load: remove v1, drop its jar
        // into deploy/ (installed and started by FileInstall), then delete it (uninstalled again).
        v1.uninstall();
        awaitScheduler(engine, "ascend");
        Path deployed = Path.of(System.getProperty("dpserve.itest.deploy")).resolve("scheduler-v1.jar");
        Files.copy(Path.of(System.getProperty("dpserve.itest.v1jar")), deployed);
        awaitScheduler(engine, "v1");
        Files.delete(deployed);
        awaitScheduler(engine, "ascend");
        Files.copy(Path.of(System.getProperty("dpserve.itest.v1jar")), deployed);
        awaitScheduler(engine, "v1");

        clients.stop();
        assertTrue("requests completed during the swaps: " + clients.done(), clients.done() >= 10);
        GreedyClients.assertIdle(engine);
    }

    /** Waits until the engine has stepped under the named policy (stats show the active one). */
    private static void awaitScheduler(InferenceEngine engine, String name) throws InterruptedException {
        long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(30);
        while (!name.equals(engine.stats().scheduler()) && System.nanoTime() < deadline) Thread.sleep(50);
        assertEquals("active scheduling policy", name, engine.stats().scheduler());
    }

    private Bundle installed(String bsn) {
        for (Bundle b : context.getBundles()) if (bsn.equals(b.getSymbolicName())) return b;
        throw new AssertionError(bsn + " not installed");
    }

    private <T> T service(Class<T> type) throws InterruptedException {
        return InContainer.service(context, type);
    }
}
