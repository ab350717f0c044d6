// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.rest;

import static dev.dpserve.rest.Calls.assertError;
import static dev.dpserve.rest.Calls.events;
import static dev.dpserve.rest.Calls.json;
import static dev.dpserve.rest.Calls.streamBody;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.dpserve.api.engine.EngineRequest;
import dev.dpserve.api.engine.EngineUnavailableException;
import dev.dpserve.api.engine.InvalidRequestException;
import jakarta.ws.rs.core.Response;
import java.io.IOException;
import java.util.List;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class CompletionsResourceTest {
    private final ScriptedEngine engine = new ScriptedEngine();
    /** Streams run synchronously in the test instead of through Jersey (see HttpWireTest). */
    private final CompletionsResource resource = new CompletionsResource(engine);

    @AfterEach
    void close() { engine.close(); }

    private Response post(String body) {
        return resource.create(body, "application/json", null);
    }

    private JsonNode ok(String body) {
        Response r = post(body);
        assertEquals(200, r.getStatus(), () -> String.valueOf(r.getEntity()));
        assertEquals("application/json", r.getMediaType().toString());
        return json(r);
    }

    private static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) out[i] = array.get(i).asInt();
        return out;
    }

    // ---- non-streaming shapes ----

    @Test
    void responseShapeAndUsage() {
        JsonNode r = ok("{\"model\":\"test-model\",\"prompt\":\"Say\",\"max_tokens\":5,\"temperature\":0}");
        assertTrue(r.get("id").asText().matches("cmpl-[0-9a-f]{32}"), r.get("id").asText());
        assertEquals("text_completion", r.get("object").asText());
        assertTrue(r.get("created").asLong() > 1_700_000_000L);
        assertEquals("test-model", r.get("model").asText());
        JsonNode c = r.get("choices").get(0);
        assertEquals(0, c.get("index").asInt());
        assertEquals("abcde", c.get("text").asText());
        assertTrue(c.get("logprobs").isNull());
        assertEquals("length", c.get("finish_reason").asText());
        assertTrue(c.get("stop_reason").isNull());
        assertTrue(c.get("prompt_logprobs").isNull());
        assertFalse(c.has("token_ids"));
        JsonNode u = r.get("usage");
        assertEquals(4, u.get("prompt_tokens").asInt(), "BOS + 3 characters");
        assertEquals(5, u.get("completion_tokens").asInt());
        assertEquals(9, u.get("total_tokens").asInt());

        EngineRequest sent = engine.submitted.getFirst();
        assertArrayEquals(new int[] {ByteTokenizer.BOS, ByteTokenizer.id('S'), ByteTokenizer.id('a'),
                ByteTokenizer.id('y')}, sent.promptTokenIds());
        assertEquals(r.get("id").asText() + "-0", sent.requestId());
        assertTrue(sent.sampling().isGreedy());
        assertEquals(5, sent.sampling().maxTokens());
    }

    @Test
    void defaultMaxTokensIs16AndModelMayBeOmittedOrTheRootPath() {
        assertEquals(16, ok("{\"prompt\":\"x\"}").get("usage").get("completion_tokens").asInt());
        assertEquals(16, ok("{\"prompt\":\"x\",\"model\":\"/models/test-model\"}").get("usage")
                .get("completion_tokens").asInt());
        assertEquals(1.0, engine.submitted.getFirst().sampling().temperature());
    }

    @Test
    void nullMaxTokensGeneratesUpToTheContextLimit() {
        JsonNode r = ok("{\"prompt\":[1,2,3,4],\"max_tokens\":null}");
        assertEquals(60, r.get("usage").get("completion_tokens").asInt());
    }

    @Test
    void addSpecialTokensFalseOmitsBos() {
        ok("{\"prompt\":\"ab\",\"add_special_tokens\":false,\"max_tokens\":1}");
        assertArrayEquals(ByteTokenizer.ids("ab"), engine.submitted.getFirst().promptTokenIds());
    }

    @Test
    void everyPromptFormGetsItsOwnChoices() {
        JsonNode strings = ok("{\"prompt\":[\"a\",\"b\"],\"max_tokens\":2}");
        assertEquals(2, strings.get("choices").size());
        assertEquals(4, strings.get("usage").get("prompt_tokens").asInt());

        engine.submitted.clear();
        JsonNode ids = ok("{\"prompt\":[10,11,12],\"max_tokens\":2}");
        assertEquals(1, ids.get("choices").size());
        assertArrayEquals(new int[] {10, 11, 12}, engine.submitted.getFirst().promptTokenIds());

        engine.submitted.clear();
        JsonNode lists = ok("{\"prompt\":[[10],[11,12]],\"max_tokens\":2}");
        assertEquals(2, lists.get("choices").size());
        assertEquals(3, lists.get("usage").get("prompt_tokens").asInt());
        assertArrayEquals(new int[] {11, 12}, engine.submitted.get(1).promptTokenIds());
    }

    @Test
    void nFansOutWithChoiceIndexPromptTimesNPlusIAndSeedPlusI() {
        engine.script = req -> ByteTokenizer.ids(req.sampling().seed() == null ? "?" : "s" + req.sampling().seed());
        JsonNode r = ok("{\"prompt\":[\"a\",\"b\"],\"n\":2,\"seed\":7,\"max_tokens\":2}");
        JsonNode choices = r.get("choices");
        assertEquals(4, choices.size());
        for (int i = 0; i < 4; i++) assertEquals(i, choices.get(i).get("index").asInt());
        assertEquals(List.of("s7", "s8", "s7", "s8"),
                List.of(choices.get(0).get("text").asText(), choices.get(1).get("text").asText(),
                        choices.get(2).get("text").asText(), choices.get(3).get("text").asText()));
        String id = r.get("id").asText();
        assertEquals(List.of(id + "-0", id + "-1", id + "-2", id + "-3"),
                engine.submitted.stream().map(EngineRequest::requestId).sorted().toList());
        assertEquals(4, r.get("usage").get("prompt_tokens").asInt(), "prompt tokens count once per prompt");
        assertEquals(8, r.get("usage").get("completion_tokens").asInt());
    }

    @Test
    void echoPrependsThePromptText() {
        assertEquals("Hi there: ab", ok("{\"prompt\":\"Hi there: \",\"echo\":true,\"max_tokens\":2}")
                .get("choices").get(0).get("text").asText());
        int[] ids = ByteTokenizer.ids("xy");
        assertEquals("xyab", ok("{\"prompt\":[" + ids[0] + "," + ids[1] + "],\"echo\":true,\"max_tokens\":2}")
                .get("choices").get(0).get("text").asText());
    }

    @Test
    void logprobsInCompletionsFormat() {
        engine.script = req -> new int[] {ByteTokenizer.E_ACUTE_1, ByteTokenizer.E_ACUTE_2, ByteTokenizer.id('z')};
        JsonNode c = ok("{\"prompt\":\"x\",\"logprobs\":2,\"max_tokens\":3}").get("choices").get(0);
        assertEquals("éz", c.get("text").asText());
        JsonNode lp = c.get("logprobs");
        assertEquals(3, lp.get("tokens").size());
        assertEquals("\uFFFD", lp.get("tokens").get(0).asText());
        assertEquals("z", lp.get("tokens").get(2).asText());
        assertEquals(-0.25, lp.get("token_logprobs").get(0).asDouble(), 1e-6);
        assertEquals(-0.75, lp.get("token_logprobs").get(2).asDouble(), 1e-6);
        JsonNode top = lp.get("top_logprobs").get(2);
        assertEquals(2, top.size(), "the sampled token plus 2 (the sampled one is also the first of the top)");
        assertEquals(-0.75, top.get("z").asDouble(), 1e-6);
        assertEquals(-1.25, top.get("{").asDouble(), 1e-6);
        assertEquals(List.of(0, 1, 2), ints(lp.get("text_offset")).length == 3
                ? List.of(lp.get("text_offset").get(0).asInt(), lp.get("text_offset").get(1).asInt(),
                        lp.get("text_offset").get(2).asInt()) : null);
        assertEquals(2, engine.submitted.getFirst().sampling().logprobs());
    }

    @Test
    void logprobsZeroListsOnlyTheSampledToken() {
        JsonNode lp = ok("{\"prompt\":\"x\",\"logprobs\":0,\"max_tokens\":2}").get("choices").get(0).get("logprobs");
        assertEquals(1, lp.get("top_logprobs").get(0).size());
        assertEquals(-0.25, lp.get("top_logprobs").get(0).get("a").asDouble(), 1e-6);
    }

    @Test
    void stopStringFinishesTheChoiceAndAbortsItsEngineRequest() {
        engine.stepDelayMillis = 2;
        JsonNode r = ok("{\"prompt\":\"x\",\"stop\":[\"zz\",\"cd\"],\"max_tokens\":20}");
        JsonNode c = r.get("choices").get(0);
        assertEquals("ab", c.get("text").asText());
        assertEquals("stop", c.get("finish_reason").asText());
        assertEquals("cd", c.get("stop_reason").asText());
        assertEquals(4, r.get("usage").get("completion_tokens").asInt());
        assertEquals(List.of(r.get("id").asText() + "-0"), engine.aborted);
    }

    @Test
    void includeStopStrInOutput() {
        JsonNode c = ok("{\"prompt\":\"x\",\"stop\":\"cd\",\"include_stop_str_in_output\":true,\"max_tokens\":20}")
                .get("choices").get(0);
        assertEquals("abcd", c.get("text").asText());
    }

    @Test
    void stopTokenIdAndEos() {
        JsonNode c = ok("{\"prompt\":\"x\",\"stop_token_ids\":[" + ByteTokenizer.id('c') + "],\"max_tokens\":20}")
                .get("choices").get(0);
        assertEquals("ab", c.get("text").asText());
        assertEquals("stop", c.get("finish_reason").asText());
        assertEquals(ByteTokenizer.id('c'), c.get("stop_reason").asInt());

        engine.script = req -> new int[] {ByteTokenizer.id('o'), ByteTokenizer.id('k'), ByteTokenizer.EOS};
        JsonNode r = ok("{\"prompt\":\"x\",\"max_tokens\":20}");
        assertEquals("ok", r.get("choices").get(0).get("text").asText());
        assertEquals("stop", r.get("choices").get(0).get("finish_reason").asText());
        assertTrue(r.get("choices").get(0).get("stop_reason").isNull());
        assertEquals(3, r.get("usage").get("completion_tokens").asInt());

        JsonNode ignored = ok("{\"prompt\":\"x\",\"max_tokens\":5,\"ignore_eos\":true}");
        assertEquals("okok", ignored.get("choices").get(0).get("text").asText());
        assertEquals("length", ignored.get("choices").get(0).get("finish_reason").asText());
    }

    @Test
    void returnTokenIds() {
        JsonNode c = ok("{\"prompt\":[5,6],\"return_token_ids\":true,\"max_tokens\":2}").get("choices").get(0);
        assertArrayEquals(new int[] {5, 6}, ints(c.get("prompt_token_ids")));
        assertArrayEquals(ByteTokenizer.ids("ab"), ints(c.get("token_ids")));
    }

    @Test
    void requestIdFromHeaderOrBody() {
        assertEquals("cmpl-abc", ok("{\"prompt\":\"x\",\"max_tokens\":1,\"request_id\":\"abc\"}").get("id").asText());
        Response r = resource.create("{\"prompt\":\"x\",\"max_tokens\":1,\"request_id\":\"abc\"}",
                "application/json; charset=utf-8", "hdr");
        assertEquals("cmpl-hdr", json(r).get("id").asText());
    }

    @Test
    void truncatePromptTokensKeepsTheTail() {
        ok("{\"prompt\":[1,2,3,4,5],\"truncate_prompt_tokens\":2,\"max_tokens\":1}");
        assertArrayEquals(new int[] {4, 5}, engine.submitted.getFirst().promptTokenIds());
        assertError(post("{\"prompt\":[1],\"truncate_prompt_tokens\":65}"), 400, "BadRequestError",
                "truncate_prompt_tokens");
    }

    // ---- errors ----

    @Test
    void unknownModelIs404() {
        JsonNode e = assertError(post("{\"model\":\"gpt-4\",\"prompt\":\"x\"}"), 404, "NotFoundError", "model");
        assertEquals("The model `gpt-4` does not exist.", e.get("message").asText());
        assertTrue(engine.submitted.isEmpty());
    }

    @Test
    void nonJsonContentTypeIs400() {
        for (String type : new String[] {null, "text/plain", "application/x-www-form-urlencoded"}) {
            JsonNode e = assertError(resource.create("{\"prompt\":\"x\"}", type, null), 400, "BadRequestError", null);
            assertEquals("Unsupported Media Type: Only 'application/json' is allowed", e.get("message").asText());
        }
    }

    @Test
    void malformedJsonAndWrongTypesAre400() {
        assertError(post("{\"prompt\":"), 400, "BadRequestError", null);
        assertError(post("{\"prompt\":\"x\",\"max_tokens\":\"ten\"}"), 400, "BadRequestError", "max_tokens");
        assertError(post("{\"prompt\":\"x\",\"suffix\":\"s\"}"), 400, "BadRequestError", "suffix");
    }

    @Test
    void promptTooLong() {
        StringBuilder ids = new StringBuilder("[");
        for (int i = 0; i < 50; i++) ids.append(i == 0 ? "" : ",").append(5);
        ids.append("]");
        JsonNode e = assertError(post("{\"prompt\":" + ids + "}"), 400, "BadRequestError", "prompt");
        assertEquals("This model's maximum context length is 48 tokens. However, your request has 50 input tokens. "
                + "Please reduce the length of the input messages.", e.get("message").asText());
        assertEquals(200, post("{\"prompt\":" + ids + ",\"max_tokens\":14}").getStatus());

        String long70 = "[" + "5,".repeat(69) + "5]";
        e = assertError(post("{\"prompt\":" + long70 + ",\"max_tokens\":null}"), 400, "BadRequestError", "prompt");
        assertTrue(e.get("message").asText().startsWith("This model's maximum context length is 64 tokens."));
    }

    @Test
    void maxTokensTooLarge() {
        JsonNode e = assertError(post("{\"prompt\":[5,5],\"max_tokens\":100}"), 400, "BadRequestError", "max_tokens");
        assertEquals("'max_tokens' or 'max_completion_tokens' is too large: 100. This model's maximum context length "
                + "is 64 tokens and your request has 2 input tokens (100 > 64 - 2).", e.get("message").asText());
    }

    @Test
    void outOfRangeSamplingValuesCarryTheirParam() {
        assertError(post("{\"prompt\":\"x\",\"temperature\":-1}"), 400, "BadRequestError", "temperature");
        assertError(post("{\"prompt\":\"x\",\"top_p\":0}"), 400, "BadRequestError", "top_p");
        assertError(post("{\"prompt\":\"x\",\"top_k\":-2}"), 400, "BadRequestError", "top_k");
        assertError(post("{\"prompt\":\"x\",\"min_p\":1.5}"), 400, "BadRequestError", "min_p");
        assertError(post("{\"prompt\":\"x\",\"max_tokens\":0}"), 400, "BadRequestError", "max_tokens");
        assertError(post("{\"prompt\":\"x\",\"min_tokens\":20}"), 400, "BadRequestError", "min_tokens");
        assertTrue(engine.submitted.isEmpty());
    }

    @Test
    void tokenIdsOutsideTheVocabulary() {
        JsonNode e = assertError(post("{\"prompt\":[5,103]}"), 400, "BadRequestError", "prompt");
        assertEquals("Token id 103 is out of vocabulary", e.get("message").asText());
        assertError(post("{\"prompt\":[[5],[-1]]}"), 400, "BadRequestError", "prompt");
        assertTrue(engine.submitted.isEmpty());
    }

    @Test
    void emptyPrompts() {
        for (String p : new String[] {"\"\"", "[]", "[[]]", "[\"\"]"}) {
            JsonNode e = assertError(post("{\"prompt\":" + p + "}"), 400, "BadRequestError", "prompt");
            assertEquals("The decoder prompt cannot be empty", e.get("message").asText());
        }
    }

    @Test
    void nBelowOne() {
        assertError(post("{\"prompt\":\"x\",\"n\":0}"), 400, "BadRequestError", "n");
    }

    @Test
    void engineUnavailableIs503AndPartialSubmissionsAreAborted() {
        engine.failOnSubmitNumber = 1;
        engine.stepDelayMillis = 50;
        JsonNode e = assertError(post("{\"prompt\":\"x\",\"n\":3}"), 503, "ServiceUnavailableError", null);
        assertEquals("queue full", e.get("message").asText());
        assertEquals(1, engine.submitted.size());
        assertEquals(List.of(engine.submitted.getFirst().requestId()), engine.aborted);
    }

    @Test
    void unhealthyEngineIs503() {
        engine.unhealthy = "engine core died";
        assertError(post("{\"prompt\":\"x\"}"), 503, "ServiceUnavailableError", null);
    }

    @Test
    void engineSideValidationIs400() {
        engine.submitFailure = new InvalidRequestException("bad thing", "prompt");
        assertError(post("{\"prompt\":\"x\"}"), 400, "BadRequestError", "prompt");
        engine.submitFailure = new EngineUnavailableException("draining");
        assertError(post("{\"prompt\":\"x\"}"), 503, "ServiceUnavailableError", null);
    }

    @Test
    void unexpectedFailureIs500() {
        engine.submitFailure = new IllegalStateException("boom");
        JsonNode e = assertError(post("{\"prompt\":\"x\"}"), 500, "InternalServerError", null);
        assertTrue(e.get("message").asText().contains("boom"));
    }

    @Test
    void engineErrorMidRequestIs500AndAbortsSiblings() {
        engine.failAtStep = 3;
        assertError(post("{\"prompt\":\"x\",\"max_tokens\":10}"), 500, "InternalServerError", null);
    }

    @Test
    void aBadRequestDoesNotDisturbAnother() throws Exception {
        engine.stepDelayMillis = 5;
        Response[] good = new Response[1];
        Thread t = Thread.ofVirtual().start(() -> good[0] = post("{\"prompt\":\"x\",\"max_tokens\":8}"));
        for (int i = 0; i < 5; i++) assertError(post("{\"prompt\":[999]}"), 400, "BadRequestError", "prompt");
        t.join();
        assertEquals("abcdefgh", json(good[0]).get("choices").get(0).get("text").asText());
    }

    // ---- streaming ----

    private List<JsonNode> streamEvents(String body) {
        return events(streamBody(post(body))).stream().map(Calls::json).toList();
    }

    @Test
    void streamFramingChunksAndDone() {
        List<JsonNode> chunks = streamEvents("{\"prompt\":\"x\",\"stream\":true,\"max_tokens\":3}");
        assertEquals(3, chunks.size());
        String id = chunks.getFirst().get("id").asText();
        for (JsonNode c : chunks) {
            assertEquals(id, c.get("id").asText());
            assertEquals("text_completion", c.get("object").asText());
            assertEquals("test-model", c.get("model").asText());
            assertTrue(c.get("usage").isNull());
            assertEquals(1, c.get("choices").size());
            JsonNode ch = c.get("choices").get(0);
            assertEquals(0, ch.get("index").asInt());
            assertTrue(ch.has("logprobs") && ch.has("finish_reason") && ch.has("stop_reason"));
        }
        assertEquals("abc", chunks.stream().map(c -> c.get("choices").get(0).get("text").asText())
                .collect(Collectors.joining()));
        assertTrue(chunks.get(1).get("choices").get(0).get("finish_reason").isNull());
        assertEquals("length", chunks.get(2).get("choices").get(0).get("finish_reason").asText());
    }

    @Test
    void streamWritesOneCompleteEventPerChunk() {
        List<String> chunks = Calls.streamChunks(post("{\"prompt\":\"x\",\"stream\":true,\"max_tokens\":4}"));
        assertEquals(5, chunks.size(), "4 chunks and [DONE]");
        for (String c : chunks) assertTrue(c.startsWith("data: ") && c.endsWith("\n\n") && c.indexOf('\n') == c.length() - 2, c);
    }

    @Test
    void streamIncludeUsageAndContinuousUsage() {
        List<JsonNode> chunks = streamEvents("{\"prompt\":\"xy\",\"stream\":true,\"max_tokens\":2,"
                + "\"stream_options\":{\"include_usage\":true,\"continuous_usage_stats\":true}}");
        assertEquals(3, chunks.size());
        assertEquals(1, chunks.get(0).get("usage").get("completion_tokens").asInt());
        assertEquals(3, chunks.get(0).get("usage").get("prompt_tokens").asInt());
        assertEquals(2, chunks.get(1).get("usage").get("completion_tokens").asInt());
        JsonNode last = chunks.get(2);
        assertEquals(0, last.get("choices").size());
        assertEquals(3, last.get("usage").get("prompt_tokens").asInt());
        assertEquals(2, last.get("usage").get("completion_tokens").asInt());
        assertEquals(5, last.get("usage").get("total_tokens").asInt());

        List<JsonNode> plain = streamEvents("{\"prompt\":\"xy\",\"stream\":true,\"max_tokens\":2,"
                + "\"stream_options\":{\"include_usage\":true}}");
        assertTrue(plain.get(0).get("usage").isNull());
        assertEquals(0, plain.getLast().get("choices").size());
    }

    @Test
    void streamHoldsBackPossibleStopStringPrefixes() {
        engine.script = req -> ByteTokenizer.ids("Hello world");
        List<JsonNode> chunks = streamEvents("{\"prompt\":\"x\",\"stream\":true,\"stop\":[\"lo w\"],\"max_tokens\":20}");
        String released = "";
        for (JsonNode c : chunks) {
            released += c.get("choices").get(0).get("text").asText();
            assertFalse(released.endsWith("l") && released.length() > 3, "stop prefix released: " + released);
        }
        assertEquals("Hel", released);
        JsonNode last = chunks.getLast().get("choices").get(0);
        assertEquals("stop", last.get("finish_reason").asText());
        assertEquals("lo w", last.get("stop_reason").asText());
        assertEquals(7, chunks.size(), "one chunk per token, even when its text is held back");
    }

    @Test
    void streamEchoNAndTokenIds() {
        List<JsonNode> chunks = streamEvents("{\"prompt\":\"P\",\"stream\":true,\"n\":2,\"echo\":true,"
                + "\"return_token_ids\":true,\"max_tokens\":2}");
        assertEquals(4, chunks.size());
        for (int index = 0; index < 2; index++) {
            int idx = index;
            List<JsonNode> mine = chunks.stream().map(c -> c.get("choices").get(0))
                    .filter(c -> c.get("index").asInt() == idx).toList();
            assertEquals("Pa", mine.get(0).get("text").asText());
            assertArrayEquals(new int[] {ByteTokenizer.BOS, ByteTokenizer.id('P')}, ints(mine.get(0).get("prompt_token_ids")));
            assertTrue(mine.get(1).get("prompt_token_ids").isNull());
            assertArrayEquals(ByteTokenizer.ids("b"), ints(mine.get(1).get("token_ids")));
        }
    }

    @Test
    void streamLogprobsPerChunkWithRunningTextOffset() {
        List<JsonNode> chunks = streamEvents("{\"prompt\":\"x\",\"stream\":true,\"logprobs\":1,\"max_tokens\":3}");
        JsonNode lp = chunks.get(2).get("choices").get(0).get("logprobs");
        assertEquals("c", lp.get("tokens").get(0).asText());
        assertEquals(2, lp.get("text_offset").get(0).asInt());
        assertEquals(-0.75, lp.get("token_logprobs").get(0).asDouble(), 1e-6);
    }

    @Test
    void streamEngineErrorBecomesAnErrorEventThenDone() {
        engine.failAtStep = 2;
        List<JsonNode> events = streamEvents("{\"prompt\":\"x\",\"stream\":true,\"max_tokens\":10}");
        assertEquals(3, events.size());
        JsonNode error = events.getLast().get("error");
        assertEquals("InternalServerError", error.get("type").asText());
        assertEquals("device on fire", error.get("message").asText());
    }

    @Test
    void streamValidationErrorsAreStillPlainHttpErrors() {
        assertError(post("{\"prompt\":\"x\",\"stream\":true,\"model\":\"nope\"}"), 404, "NotFoundError", "model");
    }

    @Test
    void clientDisconnectAbortsEveryChildRequest() {
        engine.stepDelayMillis = 5;
        Response r = post("{\"prompt\":[\"a\",\"b\"],\"n\":2,\"stream\":true,\"max_tokens\":50}");
        int[] writes = {0};
        ((CompletionStream) r.getEntity()).run(new SseWriter(chunk -> {
            if (++writes[0] == 3) throw new IOException("Broken pipe");
        }));
        String id = engine.submitted.getFirst().requestId().replaceAll("-0$", "");
        assertEquals(List.of(id + "-0", id + "-1", id + "-2", id + "-3"), engine.aborted.stream().sorted().toList());
    }

    @Test
    void stoppedChoiceIgnoresTheEnginesLateAbortOutput() {
        engine.script = req -> ByteTokenizer.ids(req.requestId().endsWith("-0") ? "abcdef" : "uvwxyz");
        JsonNode r = ok("{\"prompt\":\"x\",\"n\":2,\"stop\":\"c\",\"max_tokens\":6}");
        assertEquals("ab", r.get("choices").get(0).get("text").asText());
        assertEquals("uvwxyz", r.get("choices").get(1).get("text").asText());
        assertNull(r.get("choices").get(1).get("stop_reason").textValue());
    }
}
