// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicContainer;
import org.junit.jupiter.api.DynamicNode;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * Every case of cases.jsonl and ill_formed_utf16.jsonl (reference: Hugging Face tokenizers 0.23.2)
 * for DeepSeek-V3, Qwen3 and Mistral-7B-v0.1: ids with and without special tokens, and the decoded
 * strings. Unicode-version-sensitive cases need the Unicode 16 tables of JDK 25.
 */
class GoldenEncodeDecodeTest {

    @TestFactory
    Stream<DynamicNode> cases() {
        return casesOf("cases.jsonl");
    }

    @TestFactory
    Stream<DynamicNode> illFormedUtf16() {
        return casesOf("ill_formed_utf16.jsonl");
    }

    private static Stream<DynamicNode> casesOf(String file) {
        return GoldenData.jsonl(file).stream().map(c -> DynamicContainer.dynamicContainer(c.path("case_id").asText(), checks(c)));
    }

    private static Stream<DynamicTest> checks(JsonNode c) {
        String key = c.path("tokenizer").asText();
        String input = c.path("input").asText();
        List<DynamicTest> tests = new ArrayList<>();
        tests.add(DynamicTest.dynamicTest("input lengths", () -> {
            assertEquals(c.path("input_utf16_len").asInt(), input.length(), "UTF-16 length of the parsed input");
        }));
        tests.add(DynamicTest.dynamicTest("ids_no_special", () -> {
            unicodeGuard(c);
            assertArrayEquals(GoldenData.ints(c.path("ids_no_special")), GoldenData.tokenizer(key).encode(input, false));
        }));
        tests.add(DynamicTest.dynamicTest("ids_default_transformers_py", () -> {
            unicodeGuard(c);
            assertArrayEquals(GoldenData.ints(c.path("ids_default_transformers_py")), GoldenData.tokenizer(key).encode(input, true));
        }));
        tests.add(DynamicTest.dynamicTest("decoded_skip_special", () -> {
            HfTokenizer t = GoldenData.tokenizer(key);
            assertEquals(c.path("decoded_skip_special").asText(), t.decode(GoldenData.ints(c.path("ids_default")), true));
        }));
        tests.add(DynamicTest.dynamicTest("decoded_keep_special", () -> {
            HfTokenizer t = GoldenData.tokenizer(key);
            assertEquals(c.path("decoded_keep_special").asText(), t.decode(GoldenData.ints(c.path("ids_no_special")), false));
        }));
        if (c.has("decoded_skip_special_cleanup")) {
            tests.add(DynamicTest.dynamicTest("decoded_skip_special_cleanup (transformers)", () -> {
                // The config of every golden tokenizer says clean_up_tokenization_spaces=false,
                // so the transformers result equals the plain decode of ids_default_transformers_py.
                HfTokenizer t = GoldenData.tokenizer(key);
                assertEquals(c.path("decoded_skip_special_cleanup").asText(),
                        t.decode(GoldenData.ints(c.path("ids_default_transformers_py")), true));
            }));
        }
        return tests.stream();
    }

    static void unicodeGuard(JsonNode c) {
        JsonNode why = c.get("unicode_version_sensitive");
        if (why != null && !why.isNull()) {
            assumeTrue(Runtime.version().feature() >= 25,
                    "needs Unicode 16 tables (JDK 25+), running on " + Runtime.version() + ": " + why.asText());
        }
    }
}
