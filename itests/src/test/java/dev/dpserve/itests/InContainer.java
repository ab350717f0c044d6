// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.itests;

import static org.junit.Assert.assertNotNull;

import java.util.Hashtable;
import java.util.Map;
import org.osgi.framework.BundleContext;
import org.osgi.service.cm.Configuration;
import org.osgi.service.cm.ConfigurationAdmin;
import org.osgi.util.tracker.ServiceTracker;

/** Helpers for test code running inside the Pax Exam container. */
final class InContainer {

    private InContainer() {
    }

    static <T> T service(BundleContext context, Class<T> type) throws InterruptedException {
        ServiceTracker<T, T> t = new ServiceTracker<>(context, type, null);
        t.open();
        T s = t.waitForService(120_000);
        assertNotNull(type.getName() + " not available", s);
        return s;
    }

    /**
     * Gives the REST whiteboard and the engine their configurations, as the launcher does, serving
     * the tiny model as "tiny". Configures once: updating again would restart the components.
     */
    static void configureServer(BundleContext context, Map<String, Object> engineExtras) throws Exception {
        ConfigurationAdmin ca = service(context, ConfigurationAdmin.class);
        Hashtable<String, Object> rest = new Hashtable<>();
        rest.put("jersey.context.path", "/");
        rest.put("jersey.jakartars.whiteboard.name", "dpserve");
        Configuration restConfig = ca.getConfiguration("JakartarsServletWhiteboardRuntimeComponent", "?");
        if (restConfig.getProperties() == null) restConfig.update(rest);
        Hashtable<String, Object> engine = new Hashtable<>(engineExtras);
        engine.put("model", System.getProperty("dpserve.itest.model"));
        engine.put("served.model.name", "tiny");
        engine.put("architecture.target", "(dpserve.model.type=llama)");
        Configuration engineConfig = ca.getConfiguration("dev.dpserve.engine", "?");
        if (engineConfig.getProperties() == null) engineConfig.update(engine);
    }
}
