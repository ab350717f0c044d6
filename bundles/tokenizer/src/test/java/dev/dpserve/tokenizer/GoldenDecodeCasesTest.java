// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * decode_cases.jsonl: hand-built id lists (broken UTF-8, special tokens, unknown ids). None
 * expects an error: ids outside the vocabulary are dropped.
 */
class GoldenDecodeCasesTest {

    @TestFactory
    Stream<DynamicTest> decodeCases() {
        return GoldenData.jsonl("decode_cases.jsonl").stream().map(c -> DynamicTest.dynamicTest(c.path("case_id").asText(), () -> {
            assertTrue(c.path("error").isNull(), "the golden file expects no error");
            HfTokenizer t = GoldenData.tokenizer(c.path("tokenizer").asText());
            String decoded = t.decode(GoldenData.ints(c.path("ids")), c.path("skip_special_tokens").asBoolean());
            assertEquals(c.path("decoded").asText(), decoded);
            assertEquals(codepoints(c.path("decoded_codepoints")), decoded.codePoints().boxed().toList());
        }));
    }

    private static java.util.List<Integer> codepoints(JsonNode names) {
        java.util.List<Integer> out = new java.util.ArrayList<>();
        for (JsonNode n : names) out.add(Integer.parseInt(n.asText().substring(2), 16));
        return out;
    }
}
