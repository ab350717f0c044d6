// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.itests;

import static org.ops4j.pax.exam.CoreOptions.bundle;
import static org.ops4j.pax.exam.CoreOptions.cleanCaches;
import static org.ops4j.pax.exam.CoreOptions.frameworkProperty;
import static org.ops4j.pax.exam.CoreOptions.junitBundles;
import static org.ops4j.pax.exam.CoreOptions.systemPackage;
import static org.ops4j.pax.exam.CoreOptions.systemProperty;
import static org.ops4j.pax.exam.CoreOptions.systemTimeout;
import static org.ops4j.pax.exam.CoreOptions.workingDirectory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;
import org.ops4j.pax.exam.Option;

/**
 * Pax Exam options that provision the distribution's server bundle set, as the launcher does:
 * an HTTP port on loopback, a FileInstall folder emptied first, the tiny generated model.
 * System properties {@code dpserve.itest.port}, {@code .model} and {@code .deploy} reach the test.
 */
final class ServerOptions {

    private ServerOptions() {
    }

    static List<Option> server(String workName, long timeoutMillis) throws IOException {
        return server(workName, timeoutMillis, b -> true);
    }

    /** The server bundle set without the bundles {@code include} rejects (a test installs them later). */
    static List<Option> server(String workName, long timeoutMillis, Predicate<TestSupport.BundleJar> include) throws IOException {
        Path work = TestSupport.work().resolve(workName);
        Path deploy = work.resolve("deploy");
        Files.createDirectories(deploy);
        try (var stale = Files.list(deploy)) { // a jar left by an earlier run would be hot-deployed at start
            for (Path p : stale.toList()) Files.delete(p);
        }
        List<Option> options = new ArrayList<>();
        for (TestSupport.BundleJar b : TestSupport.bundles(TestSupport.SERVER_FEATURES)) {
            if (!include.test(b)) continue;
            // SPI Fly + ASM and slf4j go first (start level 1): see docs on start order.
            options.add(bundle(b.jar().toUri().toString()).start(!b.fragment()).startLevel(b.startOrder() <= 2 ? 1 : 3));
        }
        int port = TestSupport.freePort();
        options.add(frameworkProperty("org.osgi.service.http.port").value(Integer.toString(port)));
        options.add(frameworkProperty("org.apache.felix.http.host").value("127.0.0.1"));
        options.add(frameworkProperty("felix.fileinstall.dir").value(deploy.toString()));
        options.add(frameworkProperty("felix.fileinstall.enableConfigSave").value("false"));
        options.add(frameworkProperty("felix.fileinstall.noInitialDelay").value("true"));
        options.add(frameworkProperty("felix.fileinstall.poll").value("300"));
        options.add(frameworkProperty("gosh.args").value("--nointeractive"));
        options.add(systemProperty("dpserve.itest.port").value(Integer.toString(port)));
        options.add(systemProperty("dpserve.itest.model").value(TestSupport.tinyModel().toString()));
        options.add(systemProperty("dpserve.itest.deploy").value(deploy.toString()));
        options.add(systemPackage("jdk.incubator.vector"));
        options.add(junitBundles());
        options.add(cleanCaches(true));
        options.add(systemTimeout(timeoutMillis));
        options.add(workingDirectory(work.resolve("felix").toString()));
        return options;
    }
}
