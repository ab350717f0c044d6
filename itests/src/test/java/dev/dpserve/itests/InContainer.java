// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.itests;

import static org.junit.Assert.assertNotNull;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.Hashtable;
import java.util.Map;
import org.osgi.framework.BundleContext;
import org.osgi.service.cm.Configuration;
import org.osgi.service.cm.ConfigurationAdmin;
import org.osgi.util.tracker.ServiceTracker;

/** Helpers for test code running inside the Pax Exam container. */
final class InContainer {

    private static final ObjectMapper JSON = new ObjectMapper();

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

    /** A greedy completion over HTTP; retries while the REST resources are (re)appearing. */
    static String complete(String prompt) throws Exception {
        String body = "{\"model\":\"tiny\",\"prompt\":" + JSON.writeValueAsString(prompt)
                + ",\"max_tokens\":8,\"temperature\":0,\"ignore_eos\":true}";
        for (int attempt = 0; ; attempt++) {
            HttpURLConnection c = (HttpURLConnection) URI.create("http://127.0.0.1:" + System.getProperty("dpserve.itest.port")
                    + "/v1/completions").toURL().openConnection();
            c.setRequestMethod("POST");
            c.setDoOutput(true);
            c.setRequestProperty("Content-Type", "application/json");
            c.setConnectTimeout(5000);
            c.setReadTimeout(120_000);
            try (OutputStream out = c.getOutputStream()) {
                out.write(body.getBytes(StandardCharsets.UTF_8));
            }
            int status = c.getResponseCode();
            if (status == 200) {
                try (InputStream in = c.getInputStream()) {
                    JsonNode j = JSON.readTree(in);
                    return j.path("choices").path(0).path("text").asText();
                }
            }
            // 404 only while the whiteboard has not yet added the resources at startup.
            if (status != 404 || attempt > 100) throw new AssertionError("HTTP " + status);
            Thread.sleep(100);
        }
    }
}
