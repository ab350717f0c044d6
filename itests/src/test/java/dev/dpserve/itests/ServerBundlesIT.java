// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import javax.inject.Inject;
import org.junit.Before;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.junit.PaxExam;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;
import org.osgi.framework.Bundle;
import org.osgi.framework.BundleContext;
import org.osgi.service.component.runtime.ServiceComponentRuntime;
import org.osgi.service.component.runtime.dto.ComponentConfigurationDTO;
import org.osgi.service.component.runtime.dto.ComponentDescriptionDTO;
import org.osgi.util.tracker.ServiceTracker;

/**
 * Boots the distribution's server bundle set in a real Felix (Pax Exam native container) and
 * checks that everything resolves, starts and answers.
 */
@RunWith(PaxExam.class)
@ExamReactorStrategy(PerClass.class)
public class ServerBundlesIT {

    @Inject
    private BundleContext context;

    @Configuration
    public Option[] config() throws IOException {
        List<Option> options = ServerOptions.server("paxexam", 180_000);
        return options.toArray(Option[]::new);
    }

    @Before
    public void configure() throws Exception {
        InContainer.configureServer(context, java.util.Map.of());
        waitForService("dev.dpserve.api.engine.InferenceEngine");
    }

    @Test
    public void everyBundleIsActive() {
        List<String> problems = new ArrayList<>();
        for (Bundle b : context.getBundles()) {
            boolean fragment = b.getHeaders().get("Fragment-Host") != null;
            int expected = fragment ? Bundle.RESOLVED : Bundle.ACTIVE;
            if (b.getState() != expected) problems.add(b.getSymbolicName() + " state " + b.getState());
        }
        assertTrue("bundles not active: " + problems, problems.isEmpty());
    }

    @Test
    public void onlyTheApiBundleExports() {
        int dpserveBundles = 0;
        for (Bundle b : context.getBundles()) {
            String bsn = b.getSymbolicName();
            if (bsn == null || !bsn.startsWith("dev.dpserve.")) continue;
            dpserveBundles++;
            String exports = b.getHeaders().get("Export-Package");
            if (bsn.equals("dev.dpserve.api")) {
                assertNotNull("the API bundle exports its packages", exports);
            } else {
                assertEquals(bsn + " must export nothing", null, exports);
            }
        }
        assertEquals("api, tensor, tensor.native.linux.x86_64, tokenizer, model, scheduler.v1, scheduler.ascend, engine, parallel, rest, shell",
                11, dpserveBundles);
    }

    @Test
    public void everyComponentIsSatisfied() throws Exception {
        ServiceComponentRuntime scr = service(ServiceComponentRuntime.class);
        List<String> problems = unsatisfied(scr);
        // SCR reacts to the engine's registration asynchronously for some components: give it time.
        for (int i = 0; i < 100 && !problems.isEmpty(); i++) {
            Thread.sleep(100);
            problems = unsatisfied(scr);
        }
        assertTrue("components not satisfied: " + problems, problems.isEmpty());
    }

    private List<String> unsatisfied(ServiceComponentRuntime scr) {
        List<String> problems = new ArrayList<>();
        int dpserveComponents = 0;
        for (ComponentDescriptionDTO d : scr.getComponentDescriptionDTOs()) {
            if (!d.bundle.symbolicName.startsWith("dev.dpserve.")) continue;
            dpserveComponents++;
            if (!scr.isComponentEnabled(d)) {
                problems.add(d.name + " disabled");
                continue;
            }
            for (ComponentConfigurationDTO c : scr.getComponentConfigurationDTOs(d)) {
                if (c.state == ComponentConfigurationDTO.UNSATISFIED_REFERENCE
                        || c.state == ComponentConfigurationDTO.UNSATISFIED_CONFIGURATION
                        || c.state == ComponentConfigurationDTO.FAILED_ACTIVATION) {
                    problems.add(d.name + " state " + c.state + (c.failure != null ? " " + c.failure : ""));
                }
            }
        }
        assertTrue("dpserve components: " + dpserveComponents, dpserveComponents >= 6);
        return problems;
    }

    @Test
    public void completionsAnswer() throws Exception {
        JsonNode body = null;
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        int status = 0;
        // The whiteboard picks resources up asynchronously after the engine registers.
        while (System.nanoTime() < deadline) {
            HttpURLConnection c = post("/v1/completions",
                    "{\"model\":\"tiny\",\"prompt\":\"Hello\",\"max_tokens\":5,\"temperature\":0,\"ignore_eos\":true}");
            status = c.getResponseCode();
            if (status == 200) {
                body = new ObjectMapper().readTree(c.getInputStream());
                break;
            }
            Thread.sleep(250);
        }
        assertEquals(200, status);
        assertEquals("text_completion", body.path("object").asText());
        assertEquals(5, body.path("usage").path("completion_tokens").asInt());
        assertEquals("length", body.path("choices").path(0).path("finish_reason").asText());
        assertTrue(body.path("choices").path(0).path("text").isTextual());

        HttpURLConnection models = (HttpURLConnection) URI.create(base() + "/v1/models").toURL().openConnection();
        assertEquals(200, models.getResponseCode());
        assertEquals("tiny", new ObjectMapper().readTree(models.getInputStream()).path("data").path(0).path("id").asText());

        HttpURLConnection chat = post("/v1/chat/completions", "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],"
                + "\"max_completion_tokens\":4,\"temperature\":0,\"ignore_eos\":true}");
        assertEquals(200, chat.getResponseCode());
        JsonNode chatBody = new ObjectMapper().readTree(chat.getInputStream());
        assertEquals("chat.completion", chatBody.path("object").asText());
        assertEquals("assistant", chatBody.path("choices").path(0).path("message").path("role").asText());
        assertEquals(4, chatBody.path("usage").path("completion_tokens").asInt());

        HttpURLConnection bad = post("/v1/completions", "{\"model\":\"tiny\",\"prompt\":\"x\",\"temperature\":-1}");
        assertEquals(400, bad.getResponseCode());
        try (InputStream err = bad.getErrorStream()) {
            assertEquals("temperature", new ObjectMapper().readTree(err).path("error").path("param").asText());
        }
    }

    @Test
    public void shellCommandsOperateTheServer() throws Exception {
        org.apache.felix.service.command.CommandProcessor processor = service(org.apache.felix.service.command.CommandProcessor.class);
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        java.io.PrintStream ps = new java.io.PrintStream(out, true, StandardCharsets.UTF_8);
        try (org.apache.felix.service.command.CommandSession session =
                     processor.createSession(new java.io.ByteArrayInputStream(new byte[0]), ps, ps)) {
            String status = String.valueOf(session.execute("dpserve:status"));
            assertTrue(status, status.contains("model tiny (llama"));
            assertTrue(status, status.contains("healthy; running 0, waiting 0"));
            String models = String.valueOf(session.execute("dpserve:models"));
            assertTrue(models, models.startsWith("tiny  root="));
            String config = String.valueOf(session.execute("dpserve:config"));
            assertTrue(config, config.contains("dev.dpserve.engine") && config.contains("served.model.name = tiny"));

            String policies = String.valueOf(session.execute("dpserve:scheduler"));
            assertTrue(policies, policies.contains("active policy v1") && policies.contains("ascend  (bundle dev.dpserve.scheduler.ascend"));
            dev.dpserve.api.engine.InferenceEngine engine = service(dev.dpserve.api.engine.InferenceEngine.class);
            String switched = String.valueOf(session.execute("dpserve:scheduler ascend"));
            assertTrue(switched, switched.contains("'ascend'"));
            awaitPolicy(engine, "ascend");
            assertEquals("the switch does not restart the engine", engine, service(dev.dpserve.api.engine.InferenceEngine.class));
            session.execute("dpserve:scheduler v1");
            awaitPolicy(engine, "v1");

            // kernel backends: the table, a pin (the next steps run on the pinned backend), auto
            String table = String.valueOf(session.execute("dpserve:backend"));
            // (the native fragment is part of the server set: "native" leads where it implements the op)
            assertTrue(table, table.contains("backends: native, vector, java; pinned: none"));
            assertTrue(table, java.util.regex.Pattern.compile("ATTENTION\\s+F32\\s+native\\s+native \\(200\\), vector \\(100\\), java \\(0\\)").matcher(table).find());
            assertTrue(table, java.util.regex.Pattern.compile("MATMUL\\s+BF16\\s+native").matcher(table).find());
            String pinned = String.valueOf(session.execute("dpserve:backend java"));
            assertTrue(pinned, pinned.contains("'java' pinned"));
            table = String.valueOf(session.execute("dpserve:backend"));
            assertTrue(table, table.contains("pinned: java") && java.util.regex.Pattern.compile("ATTENTION\\s+F32\\s+java").matcher(table).find());
            HttpURLConnection onJava = post("/v1/completions", "{\"model\":\"tiny\",\"prompt\":\"hello\",\"max_tokens\":3}");
            assertEquals(200, onJava.getResponseCode());
            String unknown = String.valueOf(session.execute("dpserve:backend nosuch"));
            assertTrue(unknown, unknown.contains("no kernel backend named nosuch"));
            String auto = String.valueOf(session.execute("dpserve:backend auto"));
            assertTrue(auto, auto.contains("best score per op"));
            table = String.valueOf(session.execute("dpserve:backend"));
            assertTrue(table, table.contains("pinned: none") && java.util.regex.Pattern.compile("ATTENTION\\s+F32\\s+native").matcher(table).find());

            // the conformance kit inside the framework, on the registered vector backend
            String kit = String.valueOf(session.execute("dpserve:conformance vector"));
            assertTrue(kit, kit.startsWith("PASS backend vector: ") && kit.contains(" cases, 0 failed"));
            // and on the native fragment's backend, inside Felix
            String nativeKit = String.valueOf(session.execute("dpserve:conformance native"));
            assertTrue(nativeKit, nativeKit.startsWith("PASS backend native: ") && nativeKit.contains(" cases, 0 failed"));
        }
    }

    private static void awaitPolicy(dev.dpserve.api.engine.InferenceEngine engine, String name) throws InterruptedException {
        for (int i = 0; i < 100 && !name.equals(engine.stats().scheduler()); i++) Thread.sleep(50);
        assertEquals(name, engine.stats().scheduler());
    }


    private static String base() {
        return "http://127.0.0.1:" + System.getProperty("dpserve.itest.port");
    }

    private static HttpURLConnection post(String path, String json) throws IOException {
        HttpURLConnection c = (HttpURLConnection) URI.create(base() + path).toURL().openConnection();
        c.setRequestMethod("POST");
        c.setDoOutput(true);
        c.setRequestProperty("Content-Type", "application/json");
        c.setConnectTimeout(5000);
        c.setReadTimeout(60000);
        try (OutputStream out = c.getOutputStream()) {
            out.write(json.getBytes(StandardCharsets.UTF_8));
        }
        return c;
    }

    private <T> T service(Class<T> type) throws InterruptedException {
        return InContainer.service(context, type);
    }

    private void waitForService(String className) throws InterruptedException {
        ServiceTracker<Object, Object> t = new ServiceTracker<>(context, className, null);
        t.open();
        try {
            assertNotNull(className + " not registered", t.waitForService(120_000));
        } finally {
            t.close();
        }
    }
}
