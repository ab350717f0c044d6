// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.launcher;

import java.io.IOException;
import java.io.InputStream;
import java.lang.reflect.Method;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Dictionary;
import java.util.HashMap;
import java.util.Hashtable;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.ServiceLoader;
import java.util.concurrent.TimeUnit;
import java.util.jar.JarFile;
import java.util.logging.Logger;
import java.util.stream.Stream;
import org.osgi.framework.Bundle;
import org.osgi.framework.BundleContext;
import org.osgi.framework.BundleException;
import org.osgi.framework.Constants;
import org.osgi.framework.ServiceReference;
import org.osgi.framework.launch.Framework;
import org.osgi.framework.launch.FrameworkFactory;
import org.osgi.framework.startlevel.BundleStartLevel;
import org.osgi.util.tracker.ServiceTracker;

/**
 * Starts Apache Felix with the bundles of a role's features, pushes configurations into
 * ConfigAdmin, and stops it cleanly. The distribution home holds {@code bundle/}, {@code features/},
 * {@code conf/} and {@code deploy/} (watched by FileInstall for hot deploy).
 */
final class FelixRuntime {

    private static final Logger LOG = Logger.getLogger(FelixRuntime.class.getName());

    private final Path home;
    private Framework framework;
    private Path storage;

    FelixRuntime(Path home) {
        this.home = home;
    }

    /**
     * Starts the framework and the bundles of {@code features}. {@code configs} maps ConfigAdmin
     * PIDs to properties; they are applied once ConfigAdmin runs, after those in conf/config/.
     */
    void start(List<String> features, Map<String, String> frameworkProps, Map<String, Map<String, Object>> configs,
               boolean console) throws IOException, BundleException {
        storage = Files.createTempDirectory("dpserve-felix-");
        Map<String, String> props = new HashMap<>();
        Path fwProps = home.resolve("conf/framework.properties");
        if (Files.exists(fwProps)) {
            Properties p = new Properties();
            try (InputStream in = Files.newInputStream(fwProps)) {
                p.load(in);
            }
            p.forEach((k, v) -> props.put(k.toString(), v.toString()));
        }
        props.put(Constants.FRAMEWORK_STORAGE, storage.toString());
        props.put(Constants.FRAMEWORK_STORAGE_CLEAN, Constants.FRAMEWORK_STORAGE_CLEAN_ONFIRSTINIT);
        props.put("felix.fileinstall.dir", home.resolve("deploy").toString());
        props.putIfAbsent("felix.fileinstall.poll", "1000");
        props.putIfAbsent("felix.fileinstall.noInitialDelay", "true");
        // FileInstall must not write ConfigAdmin changes back into deploy/*.cfg: that races its own poller.
        props.put("felix.fileinstall.enableConfigSave", "false");
        props.put("gosh.args", console ? "" : "--nointeractive");
        if (ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent()) {
            props.put(Constants.FRAMEWORK_SYSTEMPACKAGES_EXTRA, "jdk.incubator.vector");
        }
        props.put(Constants.FRAMEWORK_BEGINNING_STARTLEVEL, "100");
        props.putAll(frameworkProps);

        FrameworkFactory factory = ServiceLoader.load(FrameworkFactory.class).findFirst()
                .orElseThrow(() -> new IllegalStateException("no OSGi framework on the class path"));
        framework = factory.newFramework(props);
        framework.init();
        BundleContext ctx = framework.getBundleContext();

        record Installed(Bundle bundle, int order, boolean fragment) { }
        List<Installed> installed = new ArrayList<>();
        for (String name : features) {
            Feature f = Feature.read(home.resolve("features").resolve(name + ".json"));
            for (Feature.BundleRef ref : f.bundles()) {
                Path jar = home.resolve("bundle").resolve(ref.fileName());
                if (!Files.exists(jar)) throw new IOException("feature " + name + " needs " + jar + ", which is missing");
                Bundle b = ctx.installBundle(jar.toUri().toString());
                // Start levels follow the start order, so that stopping the framework stops the
                // bundles in reverse (the REST resources before the whiteboard, and so on).
                b.adapt(BundleStartLevel.class).setStartLevel(ref.startOrder());
                installed.add(new Installed(b, ref.startOrder(), isFragment(jar)));
            }
        }
        framework.start();
        installed.sort(Comparator.comparingInt(Installed::order));
        for (Installed i : installed) {
            if (i.fragment()) continue;
            try {
                i.bundle().start();
            } catch (BundleException e) {
                LOG.severe("bundle " + i.bundle().getSymbolicName() + " failed to start: " + e.getMessage());
                throw e;
            }
        }
        Map<String, Map<String, Object>> all = new HashMap<>(readConfDir(home.resolve("conf/config")));
        all.putAll(configs);
        applyConfigurations(ctx, all);
    }

    private static boolean isFragment(Path jar) throws IOException {
        try (JarFile jf = new JarFile(jar.toFile())) {
            return jf.getManifest() != null && jf.getManifest().getMainAttributes().getValue("Fragment-Host") != null;
        }
    }

    /** conf/config/PID.properties files: ConfigAdmin configurations every role gets. */
    private static Map<String, Map<String, Object>> readConfDir(Path dir) throws IOException {
        Map<String, Map<String, Object>> out = new HashMap<>();
        if (!Files.isDirectory(dir)) return out;
        try (Stream<Path> files = Files.list(dir)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".properties")).toList()) {
                Properties p = new Properties();
                try (InputStream in = Files.newInputStream(f)) {
                    p.load(in);
                }
                Map<String, Object> m = new HashMap<>();
                p.forEach((k, v) -> m.put(k.toString(), v.toString()));
                String pid = f.getFileName().toString().replaceFirst("\\.properties$", "");
                out.put(pid, m);
            }
        }
        return out;
    }

    /**
     * ConfigAdmin's classes live in its bundle, not on the launcher's class path, so the two
     * calls needed are made reflectively on the service object.
     */
    private static void applyConfigurations(BundleContext ctx, Map<String, Map<String, Object>> configs) {
        if (configs.isEmpty()) return;
        ServiceTracker<Object, Object> tracker = new ServiceTracker<>(ctx, "org.osgi.service.cm.ConfigurationAdmin", null);
        tracker.open();
        try {
            Object ca = tracker.waitForService(TimeUnit.SECONDS.toMillis(30));
            if (ca == null) throw new IllegalStateException("ConfigAdmin did not start");
            Method getConfiguration = ca.getClass().getMethod("getConfiguration", String.class, String.class);
            for (Map.Entry<String, Map<String, Object>> e : configs.entrySet()) {
                Object configuration = getConfiguration.invoke(ca, e.getKey(), "?");
                Method update = configuration.getClass().getMethod("update", Dictionary.class);
                update.setAccessible(true);
                update.invoke(configuration, new Hashtable<>(e.getValue()));
            }
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("could not apply configurations", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            tracker.close();
        }
    }

    /**
     * Waits for a service by interface name (any class space: the launcher does not import it).
     * Returns null on timeout or when the framework stops first.
     */
    ServiceReference<?> awaitService(String className, long timeoutMillis) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        while (System.nanoTime() < deadline) {
            if ((framework.getState() & (Bundle.ACTIVE | Bundle.STARTING)) == 0) return null;
            try {
                ServiceReference<?>[] refs = framework.getBundleContext().getAllServiceReferences(className, null);
                if (refs != null && refs.length > 0) return refs[0];
            } catch (org.osgi.framework.InvalidSyntaxException | IllegalStateException e) {
                return null; // the framework went away
            }
            Thread.sleep(100);
        }
        return null;
    }

    Framework framework() { return framework; }

    /** Stops the framework (idempotent) and deletes its storage. */
    void stop() {
        Framework fw = framework;
        if (fw == null) return;
        try {
            if ((fw.getState() & (Bundle.ACTIVE | Bundle.STARTING)) != 0) fw.stop();
            fw.waitForStop(30_000);
        } catch (BundleException | InterruptedException e) {
            LOG.warning("framework stop: " + e);
        }
        deleteTree(storage);
    }

    private static void deleteTree(Path dir) {
        if (dir == null || !Files.exists(dir)) return;
        try (Stream<Path> walk = Files.walk(dir)) {
            walk.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException ignored) {
            // best effort: a temp dir left behind is harmless
        }
    }
}
