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
import dev.dpserve.api.engine.ModelCard;
import jakarta.ws.rs.core.Response;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class ChatCompletionsResourceTest {
    private static final String HI = "\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]";
    /** What the scripted renderer makes of HI with the generation prompt. */
    private static final String HI_PROMPT = "<|user|>Hi<|end|><|assistant|>";

    private final ScriptedEngine engine = new ScriptedEngine();
    private final ScriptedRenderer renderer = new ScriptedRenderer();
    private final ChatCompletionsResource resource = new ChatCompletionsResource(engine, renderer);

    @BeforeEach
    void template() { engine.tokenizer.chatTemplate = ScriptedRenderer.TEMPLATE; }

    @AfterEach
    void close() { engine.close(); }

    private Response post(String body) {
        return resource.create(body, "application/json", null);
    }

    private JsonNode ok(String body) {
        Response r = post(body);
        assertEquals(200, r.getStatus(), () -> String.valueOf(r.getEntity()));
        return json(r);
    }

    private List<JsonNode> streamEvents(String body) {
        return events(streamBody(post(body))).stream().map(Calls::json).toList();
    }

    private static String content(JsonNode response, int choice) {
        return response.get("choices").get(choice).get("message").get("content").asText();
    }

    // ---- non-streaming ----

    @Test
    void responseShapeAndUsage() {
        JsonNode r = ok("{\"model\":\"test-model\"," + HI + ",\"max_tokens\":5,\"temperature\":0}");
        assertTrue(r.get("id").asText().matches("chatcmpl-[0-9a-f]{32}"), r.get("id").asText());
        assertEquals("chat.completion", r.get("object").asText());
        assertEquals("test-model", r.get("model").asText());
        assertTrue(r.get("created").asLong() > 1_700_000_000L);
        JsonNode c = r.get("choices").get(0);
        assertEquals(0, c.get("index").asInt());
        JsonNode m = c.get("message");
        assertEquals("assistant", m.get("role").asText());
        assertEquals("abcde", m.get("content").asText());
        assertTrue(m.get("reasoning_content").isNull());
        assertEquals(0, m.get("tool_calls").size());
        assertTrue(c.get("logprobs").isNull());
        assertEquals("length", c.get("finish_reason").asText());
        assertTrue(c.get("stop_reason").isNull());
        assertFalse(c.has("token_ids"));
        JsonNode u = r.get("usage");
        assertEquals(HI_PROMPT.length(), u.get("prompt_tokens").asInt(), "no BOS: the template writes special tokens");
        assertEquals(5, u.get("completion_tokens").asInt());
        assertEquals(HI_PROMPT.length() + 5, u.get("total_tokens").asInt());

        EngineRequest sent = engine.submitted.getFirst();
        assertArrayEquals(ByteTokenizer.ids(HI_PROMPT), sent.promptTokenIds());
        assertEquals(r.get("id").asText() + "-0", sent.requestId());
        assertTrue(sent.sampling().isGreedy());
    }

    @Test
    void theRendererGetsTheConversationAndTheTemplateVariables() {
        ok("{\"messages\":[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":"
                + "[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}],\"name\":\"bob\"}],"
                + "\"chat_template_kwargs\":{\"enable_thinking\":false,\"bos_token\":\"<B>\"},"
                + "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],\"tool_choice\":\"none\","
                + "\"max_tokens\":1}");
        assertEquals(ScriptedRenderer.TEMPLATE, renderer.template);
        assertTrue(renderer.addGenerationPrompt);
        assertEquals(List.of(Map.of("role", "system", "content", "S"), Map.of("role", "user", "content", "a\nb",
                "name", "bob")), renderer.messages);
        Map<String, Object> v = renderer.variables;
        assertEquals("<B>", v.get("bos_token"), "chat_template_kwargs override the tokenizer's tokens");
        assertEquals("</s>", v.get("eos_token"));
        assertEquals(false, v.get("enable_thinking"));
        assertEquals(List.of(Map.of("type", "function", "function", Map.of("name", "f"))), v.get("tools"));
    }

    @Test
    void assistantToolCallArgumentsReachTheTemplateAsObjects() {
        engine.card = new ModelCard("test-model", "/models/test-model", 256, ByteTokenizer.VOCAB, "test", 1L);
        ok("{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":null,"
                + "\"tool_calls\":[{\"id\":\"1\",\"type\":\"function\",\"function\":{\"name\":\"f\","
                + "\"arguments\":\"{\\\"x\\\":1}\"}}]},{\"role\":\"tool\",\"content\":\"2\",\"tool_call_id\":\"1\"}],"
                + "\"max_tokens\":1}");
        Map<String, Object> call = renderer.messages.get(1);
        assertNull(call.get("content"));
        assertTrue(call.containsKey("content"), "content is None, not undefined");
        Object function = ((Map<?, ?>) ((List<?>) call.get("tool_calls")).getFirst()).get("function");
        assertEquals(Map.of("x", 1), ((Map<?, ?>) function).get("arguments"));
        assertEquals("1", renderer.messages.get(2).get("tool_call_id"));
    }

    @Test
    void requestTemplateOverridesTheTokenizersAndAddSpecialTokensAddsBos() {
        ok("{" + HI + ",\"chat_template\":\"mine\",\"add_special_tokens\":true,\"max_tokens\":1}");
        assertEquals("mine", renderer.template);
        assertEquals(ByteTokenizer.BOS, engine.submitted.getFirst().promptTokenIds()[0]);
    }

    @Test
    void withoutMaxTokensTheChoiceMayFillTheContext() {
        engine.script = r -> ByteTokenizer.ids("x");
        JsonNode r = ok("{" + HI + "}");
        assertEquals(64 - HI_PROMPT.length(), r.get("usage").get("completion_tokens").asInt());
        assertEquals(3, ok("{" + HI + ",\"max_completion_tokens\":3,\"max_tokens\":9}").get("usage")
                .get("completion_tokens").asInt(), "max_completion_tokens wins over the deprecated max_tokens");
        assertEquals(9, ok("{" + HI + ",\"max_tokens\":9}").get("usage").get("completion_tokens").asInt());
    }

    @Test
    void nChoicesWithSeeds() {
        engine.script = req -> ByteTokenizer.ids("s" + req.sampling().seed());
        JsonNode r = ok("{" + HI + ",\"n\":2,\"seed\":7,\"max_tokens\":2}");
        assertEquals(2, r.get("choices").size());
        assertEquals("s7", content(r, 0));
        assertEquals("s8", content(r, 1));
        assertEquals(1, r.get("choices").get(1).get("index").asInt());
        assertEquals(HI_PROMPT.length(), r.get("usage").get("prompt_tokens").asInt());
        assertEquals(4, r.get("usage").get("completion_tokens").asInt());
    }

    @Test
    void stopStringsAndStopTokenIds() {
        JsonNode c = ok("{" + HI + ",\"stop\":[\"cd\"],\"max_tokens\":20}").get("choices").get(0);
        assertEquals("ab", c.get("message").get("content").asText());
        assertEquals("stop", c.get("finish_reason").asText());
        assertEquals("cd", c.get("stop_reason").asText());
        c = ok("{" + HI + ",\"stop_token_ids\":[" + ByteTokenizer.id('c') + "],\"max_tokens\":20}").get("choices").get(0);
        assertEquals("ab", c.get("message").get("content").asText());
        assertEquals(ByteTokenizer.id('c'), c.get("stop_reason").asInt());
    }

    @Test
    void logprobsInChatFormat() {
        engine.script = req -> new int[] {ByteTokenizer.id('z'), ByteTokenizer.E_ACUTE_1, ByteTokenizer.E_ACUTE_2};
        JsonNode c = ok("{" + HI + ",\"logprobs\":true,\"top_logprobs\":2,\"max_tokens\":3}").get("choices").get(0);
        assertEquals("zé", c.get("message").get("content").asText());
        JsonNode content = c.get("logprobs").get("content");
        assertEquals(3, content.size());
        JsonNode z = content.get(0);
        assertEquals("z", z.get("token").asText());
        assertEquals(-0.25, z.get("logprob").asDouble(), 1e-6);
        assertEquals(List.of((int) 'z'), ints(z.get("bytes")));
        JsonNode top = z.get("top_logprobs");
        assertEquals(2, top.size());
        assertEquals("z", top.get(0).get("token").asText());
        assertEquals("{", top.get(1).get("token").asText());
        assertEquals(-0.75, top.get(1).get("logprob").asDouble(), 1e-6);
        assertEquals(List.of((int) '{'), ints(top.get(1).get("bytes")));
        assertEquals("\uFFFD", content.get(1).get("token").asText(), "half a character decodes to U+FFFD");
        assertEquals(List.of(0xEF, 0xBF, 0xBD), ints(content.get(1).get("bytes")));
        assertEquals(2, engine.submitted.getFirst().sampling().logprobs());

        JsonNode plain = ok("{" + HI + ",\"logprobs\":true,\"max_tokens\":1}").get("choices").get(0).get("logprobs");
        assertEquals(0, plain.get("content").get(0).get("top_logprobs").size());
        assertTrue(ok("{" + HI + ",\"logprobs\":false,\"max_tokens\":1}").get("choices").get(0).get("logprobs").isNull());
    }

    @Test
    void returnTokenIds() {
        JsonNode r = ok("{" + HI + ",\"return_token_ids\":true,\"max_tokens\":2}");
        assertEquals(ByteTokenizer.ids(HI_PROMPT).length, r.get("prompt_token_ids").size());
        assertEquals(List.of(ByteTokenizer.id('a'), ByteTokenizer.id('b')), ints(r.get("choices").get(0).get("token_ids")));
    }

    @Test
    void echoPrependsTheLastMessageWhenItHasTheResponseRole() {
        String continued = "\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":\"assistant\",\"content\":\"Sure\"}]";
        JsonNode r = ok("{" + continued + ",\"echo\":true,\"add_generation_prompt\":false,\"max_tokens\":2}");
        assertEquals("assistant", r.get("choices").get(0).get("message").get("role").asText());
        assertEquals("Sureab", content(r, 0));
        assertEquals("ab", content(ok("{" + HI + ",\"echo\":true,\"max_tokens\":2}"), 0),
                "the last message is the user's, not the assistant's: nothing to echo");
        JsonNode user = ok("{" + HI + ",\"echo\":true,\"add_generation_prompt\":false,\"max_tokens\":2}");
        assertEquals("user", user.get("choices").get(0).get("message").get("role").asText());
        assertEquals("Hiab", content(user, 0));
    }

    @Test
    void continueFinalMessageCutsTheTemplateAfterTheFinalText() {
        ok("{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":\"assistant\",\"content\":\"Sure\"}],"
                + "\"continue_final_message\":true,\"add_generation_prompt\":false,\"max_tokens\":1}");
        assertArrayEquals(ByteTokenizer.ids("<|user|>Hi<|end|><|assistant|>Sure"),
                engine.submitted.getFirst().promptTokenIds());
    }

    // ---- streaming ----

    @Test
    void streamAnnouncesTheRoleThenStreamsContent() {
        List<JsonNode> chunks = streamEvents("{" + HI + ",\"stream\":true,\"stop\":\"d\",\"max_tokens\":10}");
        for (JsonNode chunk : chunks) {
            assertEquals("chat.completion.chunk", chunk.get("object").asText());
            assertTrue(chunk.get("id").asText().startsWith("chatcmpl-"));
            assertFalse(chunk.has("usage"));
        }
        JsonNode first = chunks.getFirst().get("choices").get(0);
        assertEquals("{\"role\":\"assistant\",\"content\":\"\"}", first.get("delta").toString());
        assertTrue(first.get("finish_reason").isNull());
        assertTrue(first.get("logprobs").isNull());
        assertEquals("abc", chunks.stream().skip(1).map(c -> c.get("choices").get(0).get("delta").get("content").asText())
                .collect(Collectors.joining()));
        assertTrue(chunks.stream().skip(1).noneMatch(c -> c.get("choices").get(0).get("delta").has("role")));
        JsonNode last = chunks.getLast().get("choices").get(0);
        assertEquals("stop", last.get("finish_reason").asText());
        assertEquals("d", last.get("stop_reason").asText());
        assertFalse(chunks.get(1).get("choices").get(0).has("stop_reason"), "stop_reason only when finished");
    }

    @Test
    void streamNChoicesEachGetARoleChunkAndUsageComesLast() {
        List<JsonNode> chunks = streamEvents("{" + HI + ",\"stream\":true,\"n\":2,\"max_tokens\":2,"
                + "\"stream_options\":{\"include_usage\":true}}");
        assertEquals(0, chunks.get(0).get("choices").get(0).get("index").asInt());
        assertEquals(1, chunks.get(1).get("choices").get(0).get("index").asInt());
        assertEquals("assistant", chunks.get(1).get("choices").get(0).get("delta").get("role").asText());
        JsonNode usage = chunks.getLast();
        assertEquals(0, usage.get("choices").size());
        assertEquals("chat.completion.chunk", usage.get("object").asText());
        assertEquals(4, usage.get("usage").get("completion_tokens").asInt());
        assertEquals(HI_PROMPT.length(), usage.get("usage").get("prompt_tokens").asInt());
        for (int i = 0; i < 2; i++) {
            int index = i;
            assertEquals("ab", chunks.stream().skip(2).filter(c -> c.get("choices").size() == 1
                            && c.get("choices").get(0).get("index").asInt() == index)
                    .map(c -> c.get("choices").get(0).get("delta").get("content").asText()).collect(Collectors.joining()));
        }
    }

    @Test
    void streamEchoAndLogprobsAndTokenIds() {
        List<JsonNode> chunks = streamEvents("{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"stream\":true,"
                + "\"echo\":true,\"add_generation_prompt\":false,\"logprobs\":true,\"top_logprobs\":1,"
                + "\"return_token_ids\":true,\"max_tokens\":2}");
        assertEquals("user", chunks.get(0).get("choices").get(0).get("delta").get("role").asText());
        assertTrue(chunks.get(0).has("prompt_token_ids"));
        assertEquals("{\"content\":\"Hi\"}", chunks.get(1).get("choices").get(0).get("delta").toString());
        JsonNode a = chunks.get(2).get("choices").get(0);
        assertEquals("a", a.get("delta").get("content").asText());
        assertEquals("a", a.get("logprobs").get("content").get(0).get("token").asText());
        assertEquals(1, a.get("logprobs").get("content").get(0).get("top_logprobs").size());
        assertEquals(List.of(ByteTokenizer.id('a')), ints(a.get("token_ids")));
    }

    @Test
    void streamContinuousUsage() {
        List<JsonNode> chunks = streamEvents("{" + HI + ",\"stream\":true,\"max_tokens\":2,"
                + "\"stream_options\":{\"continuous_usage_stats\":true}}");
        assertEquals(0, chunks.get(0).get("usage").get("completion_tokens").asInt());
        assertEquals(2, chunks.getLast().get("usage").get("completion_tokens").asInt());
    }

    // ---- errors ----

    @Test
    void badMessages() {
        assertError(post("{\"max_tokens\":1}"), 400, "BadRequestError", "messages");
        assertError(post("{\"messages\":\"Hi\"}"), 400, "BadRequestError", "messages");
        assertError(post("{\"messages\":[]}"), 400, "BadRequestError", "messages");
        assertError(post("{\"messages\":[\"Hi\"]}"), 400, "BadRequestError", "messages[0]");
        assertError(post("{\"messages\":[{\"content\":\"Hi\"}]}"), 400, "BadRequestError", "messages");
        JsonNode e = assertError(post("{\"messages\":[{\"role\":\"robot\",\"content\":\"Hi\"}]}"), 400,
                "BadRequestError", "messages");
        assertTrue(e.get("message").asText().contains("robot"), e.toString());
        assertError(post("{\"messages\":[{\"role\":\"user\"}]}"), 400, "BadRequestError", "messages");
        assertError(post("{\"messages\":[{\"role\":\"user\",\"content\":42}]}"), 400, "BadRequestError",
                "messages[0].content");
        assertTrue(engine.submitted.isEmpty());
    }

    @Test
    void nonTextContentPartsAreNotSupported() {
        JsonNode e = assertError(post("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
                + "\"image_url\":{\"url\":\"http://x/y.png\"}}]}]}"), 400, "BadRequestError", "messages");
        assertTrue(e.get("message").asText().contains("'image_url'") && e.get("message").asText().contains("not supported"),
                e.toString());
    }

    @Test
    void toolCallingIsNotSupportedYet() {
        String tools = "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]";
        JsonNode e = assertError(post("{" + HI + "," + tools + "}"), 400, "BadRequestError", "tools");
        assertTrue(e.get("message").asText().contains("not supported yet"), e.toString());
        assertError(post("{" + HI + "," + tools + ",\"tool_choice\":\"auto\"}"), 400, "BadRequestError", "tool_choice");
        assertError(post("{" + HI + ",\"tool_choice\":\"required\"}"), 400, "BadRequestError", "tool_choice");
        assertEquals(200, post("{" + HI + "," + tools + ",\"tool_choice\":\"none\",\"max_tokens\":1}").getStatus());
    }

    @Test
    void logprobsValidation() {
        JsonNode e = assertError(post("{" + HI + ",\"top_logprobs\":2}"), 400, "BadRequestError", "top_logprobs");
        assertEquals("when using `top_logprobs`, `logprobs` must be set to true.", e.get("message").asText());
        assertError(post("{" + HI + ",\"logprobs\":true,\"top_logprobs\":21}"), 400, "BadRequestError", "top_logprobs");
        assertError(post("{" + HI + ",\"logprobs\":true,\"top_logprobs\":-1}"), 400, "BadRequestError", "top_logprobs");
        assertError(post("{" + HI + ",\"logprobs\":2}"), 400, "BadRequestError", "logprobs");
    }

    @Test
    void promptTooLongForChatIsPAtLeastMaxModelLen() {
        String content = "x".repeat(64 - HI_PROMPT.length() + 2);   // prompt of exactly 64 tokens
        JsonNode e = assertError(post("{\"messages\":[{\"role\":\"user\",\"content\":\"" + content + "\"}]}"), 400,
                "BadRequestError", "prompt");
        assertEquals("This model's maximum context length is 64 tokens. However, your request has 64 input tokens. "
                + "Please reduce the length of the input messages.", e.get("message").asText());
        e = assertError(post("{" + HI + ",\"max_tokens\":60}"), 400, "BadRequestError", "max_tokens");
        assertEquals("'max_tokens' or 'max_completion_tokens' is too large: 60. This model's maximum context length "
                + "is 64 tokens and your request has " + HI_PROMPT.length() + " input tokens (60 > 64 - "
                + HI_PROMPT.length() + ").", e.get("message").asText());
        assertEquals(200, post("{" + HI + ",\"max_tokens\":" + (64 - HI_PROMPT.length()) + "}").getStatus());
    }

    @Test
    void templateFailuresAndMissingTemplatesAre400() {
        JsonNode e = assertError(post("{" + HI + ",\"chat_template\":\"raise:Conversation roles must alternate\"}"), 400,
                "BadRequestError", null);
        assertEquals("Conversation roles must alternate", e.get("message").asText());
        engine.tokenizer.chatTemplate = null;
        e = assertError(post("{" + HI + "}"), 400, "BadRequestError", null);
        assertEquals(ChatPrompt.NO_TEMPLATE, e.get("message").asText());
        assertTrue(engine.submitted.isEmpty());
    }

    @Test
    void otherRequestErrors() {
        assertError(post("{" + HI + ",\"model\":\"nope\"}"), 404, "NotFoundError", "model");
        assertError(resource.create("{" + HI + "}", "text/plain", null), 400, "BadRequestError", null);
        assertError(post("{" + HI + ",\"continue_final_message\":true}"), 400, "BadRequestError", "continue_final_message");
        assertError(post("{" + HI + ",\"stream_options\":{\"include_usage\":true}}"), 400, "BadRequestError",
                "stream_options");
        assertError(post("{" + HI + ",\"n\":0}"), 400, "BadRequestError", "n");
        assertError(post("{" + HI + ",\"temperature\":-1}"), 400, "BadRequestError", "temperature");
        assertEquals(200, post("{" + HI + ",\"max_tokens\":1,\"some_future_field\":1,\"metadata\":{}}").getStatus(),
                "unknown fields are ignored");
    }

    @Test
    void engineErrorsAreHandledAsForCompletions() {
        engine.unhealthy = "engine dead";
        assertError(post("{" + HI + "}"), 503, "ServiceUnavailableError", null);
        engine.unhealthy = null;
        engine.failAtStep = 1;
        assertError(post("{" + HI + ",\"max_tokens\":5}"), 500, "InternalServerError", null);
    }

    @Test
    void requestIdFromHeader() {
        JsonNode r = json(resource.create("{" + HI + ",\"max_tokens\":1}", "application/json", "abc"));
        assertEquals("chatcmpl-abc", r.get("id").asText());
    }

    private static List<Integer> ints(JsonNode array) {
        return java.util.stream.StreamSupport.stream(array.spliterator(), false).map(JsonNode::asInt).toList();
    }
}
