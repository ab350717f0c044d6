// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.rest;

import static dev.dpserve.rest.Calls.assertError;
import static dev.dpserve.rest.Calls.json;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import jakarta.ws.rs.core.Response;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** /health, /ping, /version, /v1/models, /tokenize, /detokenize. */
class SmallResourcesTest {
    private static final String JSON = "application/json";
    private final ScriptedEngine engine = new ScriptedEngine();

    @AfterEach
    void close() { engine.close(); }

    @Test
    void healthIsEmpty200Or503WithReason() {
        HealthResource health = new HealthResource(engine);
        Response ok = health.health();
        assertEquals(200, ok.getStatus());
        assertNull(ok.getEntity());
        assertEquals(200, health.getPing().getStatus());
        assertEquals(200, health.postPing().getStatus());

        engine.unhealthy = "engine core died";
        JsonNode e = assertError(health.health(), 503, "ServiceUnavailableError", null);
        assertEquals("engine core died", e.get("message").asText());
        assertError(health.postPing(), 503, "ServiceUnavailableError", null);

        assertError(new HealthResource(null).health(), 503, "ServiceUnavailableError", null);
    }

    @Test
    void version() {
        assertEquals("{\"version\":\"0.1.0\"}", new HealthResource(engine).version().getEntity());
    }

    @Test
    void modelsListTheServedModel() {
        JsonNode r = json(new ModelsResource(engine).list());
        assertEquals("list", r.get("object").asText());
        JsonNode m = r.get("data").get(0);
        assertEquals("test-model", m.get("id").asText());
        assertEquals("model", m.get("object").asText());
        assertEquals(1_700_000_000L, m.get("created").asLong());
        assertEquals("vllm", m.get("owned_by").asText());
        assertEquals("/models/test-model", m.get("root").asText());
        assertTrue(m.get("parent").isNull());
        assertEquals(64, m.get("max_model_len").asInt());
        JsonNode perm = m.get("permission").get(0);
        assertTrue(perm.get("id").asText().startsWith("modelperm-"));
        assertEquals("model_permission", perm.get("object").asText());
    }

    @Test
    void tokenize() {
        TokenizeResource t = new TokenizeResource(engine);
        JsonNode r = json(t.tokenize("{\"prompt\":\"hé\"}", JSON));
        assertEquals(4, r.get("count").asInt());
        assertEquals(64, r.get("max_model_len").asInt());
        assertEquals("[0,74,98,99]", r.get("tokens").toString());
        assertTrue(r.get("token_strs").isNull());

        r = json(t.tokenize("{\"model\":\"test-model\",\"prompt\":\"hi\",\"add_special_tokens\":false,"
                + "\"return_token_strs\":true}", JSON));
        assertEquals(2, r.get("count").asInt());
        assertEquals("[\"h\",\"i\"]", r.get("token_strs").toString());
    }

    @Test
    void tokenizeErrors() {
        TokenizeResource t = new TokenizeResource(engine);
        assertError(t.tokenize("{\"prompt\":\"x\"}", "text/plain"), 400, "BadRequestError", null);
        assertError(t.tokenize("{\"prompt\":", JSON), 400, "BadRequestError", null);
        assertError(t.tokenize("{}", JSON), 400, "BadRequestError", "prompt");
        assertError(t.tokenize("{\"prompt\":[1]}", JSON), 400, "BadRequestError", "prompt");
        assertError(t.tokenize("{\"model\":\"m\",\"prompt\":\"x\"}", JSON), 404, "NotFoundError", "model");
        assertError(t.tokenize("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", JSON), 400,
                "BadRequestError", "messages");
    }

    @Test
    void detokenize() {
        TokenizeResource t = new TokenizeResource(engine);
        assertEquals("{\"prompt\":\"<s>hé\"}", t.detokenize("{\"tokens\":[0,74,98,99]}", JSON).getEntity());
        JsonNode e = assertError(t.detokenize("{\"tokens\":[5,103]}", JSON), 400, "BadRequestError", "tokens");
        assertEquals("Token id 103 is out of vocabulary", e.get("message").asText());
        assertError(t.detokenize("{\"tokens\":[-1]}", JSON), 400, "BadRequestError", "tokens");
        assertError(t.detokenize("{\"tokens\":\"abc\"}", JSON), 400, "BadRequestError", "tokens");
        assertError(t.detokenize("{}", JSON), 400, "BadRequestError", "tokens");
        assertError(t.detokenize("{\"tokens\":[1]}", null), 400, "BadRequestError", null);
    }
}
