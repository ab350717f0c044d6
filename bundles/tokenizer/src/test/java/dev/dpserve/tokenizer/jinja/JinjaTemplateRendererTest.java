// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tokenizer.jinja;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.time.Year;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The renderer against real Hugging Face templates. Every expected prompt is written out by hand
 * from the template source and the model's documented prompt format, not produced by the renderer.
 */
class JinjaTemplateRendererTest {
    private static final ObjectMapper MAPPER = new ObjectMapper();
    private static final String BOS = "<｜begin▁of▁sentence｜>";
    private static final String EOS = "<｜end▁of▁sentence｜>";

    private final JinjaTemplateRenderer renderer = new JinjaTemplateRenderer();

    private static JsonNode config(String dir) {
        try (InputStream in = JinjaTemplateRendererTest.class.getResourceAsStream("/golden/" + dir
                + "/tokenizer_config.json")) {
            return MAPPER.readTree(in);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static final String DEEPSEEK = config("tokenizers/deepseek_v3").get("chat_template").asText();
    private static final String QWEN3 = config("tokenizers/qwen3").get("chat_template").asText();

    private static Map<String, Object> msg(String role, Object content) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("role", role);
        m.put("content", content);
        return m;
    }

    private String deepseek(boolean addGenerationPrompt, List<Map<String, Object>> messages) {
        return renderer.render(DEEPSEEK, messages, addGenerationPrompt, Map.of("bos_token", BOS, "eos_token", EOS));
    }

    private String render(String template, Map<String, Object> variables) {
        return renderer.render(template, List.of(msg("user", "Hi")), true, variables);
    }

    // ---- DeepSeek-V3 ----

    @Test
    void deepSeekSystemUserAndGenerationPrompt() {
        assertEquals(BOS + "You are helpful.<｜User｜>Hi<｜Assistant｜>",
                deepseek(true, List.of(msg("system", "You are helpful."), msg("user", "Hi"))));
    }

    @Test
    void deepSeekWithoutSystemStartsWithBosThenUser() {
        assertEquals(BOS + "<｜User｜>Hi<｜Assistant｜>", deepseek(true, List.of(msg("user", "Hi"))));
        assertEquals(BOS + "<｜User｜>Hi", deepseek(false, List.of(msg("user", "Hi"))));
    }

    @Test
    void deepSeekMultiTurnClosesAssistantTurnsWithEos() {
        assertEquals(BOS + "S<｜User｜>Hi<｜Assistant｜>reply" + EOS + "<｜User｜>Again<｜Assistant｜>",
                deepseek(true, List.of(msg("system", "S"), msg("user", "Hi"), msg("assistant", "reply"),
                        msg("user", "Again"))));
    }

    @Test
    void deepSeekJoinsSystemMessagesWithABlankLine() {
        assertEquals(BOS + "A\n\nB<｜User｜>Hi<｜Assistant｜>",
                deepseek(true, List.of(msg("system", "A"), msg("system", "B"), msg("user", "Hi"))));
    }

    @Test
    void deepSeekToolCallAndOutput() {
        Map<String, Object> call = msg("assistant", null);
        call.put("tool_calls", List.of(Map.of("type", "function",
                "function", Map.of("name", "get_weather", "arguments", "{\"city\":\"Paris\"}"))));
        String expected = BOS + "<｜User｜>Weather?"
                + "<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n"
                + "```json\n{\"city\":\"Paris\"}\n```<｜tool▁call▁end｜>"
                + "<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>sunny<｜tool▁output▁end｜><｜tool▁outputs▁end｜>";
        assertEquals(expected, deepseek(true, List.of(msg("user", "Weather?"), call, msg("tool", "sunny"))));
    }

    // ---- Qwen3 ----

    @Test
    void qwen3SimpleConversation() {
        assertEquals("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
                renderer.render(QWEN3, List.of(msg("user", "Hi")), true, Map.of()));
        assertEquals("<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n",
                renderer.render(QWEN3, List.of(msg("system", "S"), msg("user", "Hi")), false, Map.of()));
    }

    @Test
    void qwen3EnableThinkingFalseAddsAnEmptyThinkBlock() {
        assertEquals("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
                renderer.render(QWEN3, List.of(msg("user", "Hi")), true, Map.of("enable_thinking", false)));
        assertEquals("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
                renderer.render(QWEN3, List.of(msg("user", "Hi")), true, Map.of("enable_thinking", true)));
    }

    @Test
    void qwen3MultiTurnDropsOldReasoningAndKeepsTheLastOne() {
        List<Map<String, Object>> earlier = List.of(msg("user", "Hi"),
                msg("assistant", "<think>\nold\n</think>\n\nHello!"), msg("user", "Bye"));
        assertEquals("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"
                        + "<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n",
                renderer.render(QWEN3, earlier, true, Map.of()));

        List<Map<String, Object>> last = List.of(msg("user", "Hi"), msg("assistant", "<think>\nhmm\n</think>\n\nAnswer"));
        assertEquals("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\nhmm\n</think>\n\nAnswer<|im_end|>\n",
                renderer.render(QWEN3, last, false, Map.of()));
    }

    @Test
    void qwen3ToolsAreListedWithPythonJsonSpacing() {
        Map<String, Object> tool = new LinkedHashMap<>();
        tool.put("type", "function");
        tool.put("function", Map.of("name", "f"));
        String out = renderer.render(QWEN3, List.of(msg("user", "Hi")), true, Map.of("tools", List.of(tool)));
        assertTrue(out.startsWith("<|im_start|>system\n# Tools\n"), out);
        assertTrue(out.contains("<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"f\"}}\n</tools>"), out);
        assertTrue(out.endsWith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"), out);
    }

    // ---- Jinja2 semantics transformers relies on ----

    @Test
    void trimBlocksAndLstripBlocksAndNoTrailingNewline() {
        assertEquals("  x\ny", render("  {% if true %}\n  x\n  {% endif %}\ny\n", Map.of()));
        assertEquals("ab", render("{% for m in ['a', 'b'] %}\n{{ m }}\n{%- endfor %}", Map.of()));
        assertEquals("a b", render("{{ 'a' }} {% if true %}b{% endif %}\n", Map.of()), "lstrip only at a line start");
        assertEquals("x\n", render("{{ 'x\\n' }}", Map.of()), "an output newline is kept");
        assertEquals("x\n", render("x\n\n", Map.of()), "only one source newline is dropped");
    }

    @Test
    void pythonStringMethods() {
        assertEquals("x|x  |  x", render("{{ '  x  '.strip() }}|{{ '  x  '.lstrip() }}|{{ '  x  '.rstrip() }}", Map.of()));
        assertEquals("a", render("{{ '\\n\\na\\n'.strip('\\n') }}", Map.of()));
        assertEquals("True False True", render("{{ 'abc'.startswith('ab') }} {{ 'abc'.endswith('b') }} "
                + "{{ 'abc'.startswith(('x', 'a')) }}", Map.of()).replace("true", "True").replace("false", "False"));
        assertEquals("['a', 'b', '']|a b|c", render("{{ 'a|b|'.split('|') }}|{{ ' a  b '.split() | join(' ') }}"
                + "|{{ 'a.b.c'.split('.')[-1] }}", Map.of()));
        assertEquals("a b|HI|Hello World|x-y-z", render("{{ 'a,b'.replace(',', ' ') }}|{{ 'hi'.upper() }}|"
                + "{{ 'hello world'.title() }}|{{ '-'.join(['x', 'y', 'z']) }}", Map.of()));
    }

    @Test
    void reversedSliceNamespaceLoopAndTests() {
        assertEquals("cba|3-2-1|tail", render("{{ 'abc'[::-1] }}|{{ [1, 2, 3][::-1] | join('-') }}|"
                + "{{ ['head', 'tail'][1:] | first }}", Map.of()));
        assertEquals("2;last", render("{% set ns = namespace(n=0) %}{% for m in [1, 2] %}{% set ns.n = ns.n + 1 %}"
                + "{% if loop.last %}{{ ns.n }};last{% endif %}{% endfor %}", Map.of()));
        Map<String, Object> vars = new HashMap<>();
        vars.put("nothing", null);
        assertEquals("true false true", render("{{ nothing is none }} {{ missing is defined }} {{ messages[0].content is string }}",
                vars));
        assertEquals("role=user;content=Hi;", render("{% for k, v in messages[0].items() %}{{ k }}={{ v }};{% endfor %}",
                Map.of()));
        assertEquals("5", render("{{ {'a': 1}.get('b', 5) }}", Map.of()));
    }

    @Test
    void operatorPrecedenceAsInJinja2() {
        assertEquals("false true 2 true false", render("{{ not messages is defined }} {{ not 'x' in 'abc' }} "
                + "{% set ns = namespace(last=[1, 2, 3]|length - 1) %}{{ ns.last }} {{ not 1 == 2 }} "
                + "{{ not true and true }}", Map.of()));
    }

    @Test
    void toJsonFollowsPythonJsonDumps() {
        Map<String, Object> v = new LinkedHashMap<>();
        v.put("s", "é\"\n");
        v.put("n", List.of(1, 2.5, true));
        v.put("z", null);
        assertEquals("{\"s\": \"é\\\"\\n\", \"n\": [1, 2.5, true], \"z\": null}", render("{{ v | tojson }}", Map.of("v", v)));
        assertEquals("{\n  \"a\": [\n    1\n  ]\n}", render("{{ {'a': [1]} | tojson(indent=2) }}", Map.of()));
        assertEquals("1e-05 12345678.0", JinjaToJson.pythonFloat(0.00001) + " " + JinjaToJson.pythonFloat(12345678.0));
    }

    @Test
    void strftimeNowAndBosToken() {
        assertEquals(Year.now().toString() + "|<s>", render("{{ strftime_now('%Y') }}|{{ bos_token }}",
                Map.of("bos_token", "<s>")));
    }

    // ---- errors ----

    @Test
    void raiseExceptionBecomesIllegalArgumentWithTheTemplateMessage() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> render(
                "{% if messages[0].role != 'system' %}{{ raise_exception('Conversation roles must alternate') }}{% endif %}",
                Map.of()));
        assertEquals("Conversation roles must alternate", e.getMessage());
    }

    @Test
    void syntaxErrorIsAnIllegalArgumentNamingTheProblem() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> render("{% if %}x", Map.of()));
        assertTrue(e.getMessage().contains("if"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> render("{{ messages[0].content.nosuchmethod() }}", Map.of()));
        assertThrows(IllegalArgumentException.class, () -> render("{{ nosuchfunction() }}", Map.of()));
    }

    @Test
    void worksWhenTheContextClassLoaderIsNotTheBundles() throws Exception {
        // Under OSGi (SCR activating the component) the context class loader cannot see Jinjava.
        Thread thread = Thread.currentThread();
        ClassLoader previous = thread.getContextClassLoader();
        try (java.net.URLClassLoader empty = new java.net.URLClassLoader(new java.net.URL[0], null)) {
            thread.setContextClassLoader(empty);
            JinjaTemplateRenderer isolated = new JinjaTemplateRenderer();
            assertEquals("Hi", isolated.render("{{ messages[0].content }}", List.of(msg("user", "Hi")), false, Map.of()));
        } finally {
            thread.setContextClassLoader(previous);
        }
    }

    @Test
    void concurrentRendersDoNotInterfere() throws Exception {
        List<Thread> threads = new ArrayList<>();
        List<Throwable> failures = java.util.Collections.synchronizedList(new ArrayList<>());
        for (int t = 0; t < 4; t++) {
            String user = "u" + t;
            threads.add(Thread.ofPlatform().start(() -> {
                try {
                    for (int i = 0; i < 50; i++) {
                        assertEquals(BOS + "<｜User｜>" + user + "<｜Assistant｜>", deepseek(true, List.of(msg("user", user))));
                    }
                } catch (Throwable e) {
                    failures.add(e);
                }
            }));
        }
        for (Thread t : threads) t.join();
        assertTrue(failures.isEmpty(), failures.toString());
    }
}
