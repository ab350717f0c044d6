// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.dpserve.api.tokenizer.IncrementalDetokenizer;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/**
 * Streaming decode against whole decode on every golden id list: deltas plus flush equal
 * decode(all ids); no delta splits a UTF-16 surrogate pair; the text emitted so far is always a
 * prefix of the final text; and for the byte-level tokenizers, everything decodable is emitted
 * as soon as its last byte arrives (only an incomplete trailing character is held back).
 */
class IncrementalDetokenizerTest {

    @TestFactory
    Stream<DynamicTest> goldenCases() {
        List<DynamicTest> tests = new ArrayList<>();
        for (JsonNode c : GoldenData.jsonl("cases.jsonl")) {
            String key = c.path("tokenizer").asText();
            String id = c.path("case_id").asText();
            tests.add(DynamicTest.dynamicTest(id + " skip=true", () -> check(key, GoldenData.ints(c.path("ids_default")), true)));
            tests.add(DynamicTest.dynamicTest(id + " skip=false", () -> check(key, GoldenData.ints(c.path("ids_no_special")), false)));
        }
        for (JsonNode c : GoldenData.jsonl("decode_cases.jsonl")) {
            tests.add(DynamicTest.dynamicTest(c.path("case_id").asText(), () -> check(c.path("tokenizer").asText(),
                    GoldenData.ints(c.path("ids")), c.path("skip_special_tokens").asBoolean())));
        }
        return tests.stream();
    }

    private static void check(String key, int[] ids, boolean skip) {
        HfTokenizer t = GoldenData.tokenizer(key);
        String full = t.decode(ids, skip);
        IncrementalDetokenizer d = t.newDetokenizer(skip);
        StringBuilder emitted = new StringBuilder();
        boolean byteLevel = !key.startsWith("mistral");
        for (int i = 0; i < ids.length; i++) {
            String delta = d.push(ids[i]);
            assertNoSplitSurrogate(delta);
            emitted.append(delta);
            assertTrue(full.startsWith(emitted.toString()), () -> "emitted text is not a prefix of the full decode: " + emitted);
            if (byteLevel) {
                String prefixDecode = t.decode(java.util.Arrays.copyOf(ids, i + 1), skip);
                // Held back is at most one incomplete character, which a whole decode shows as U+FFFD.
                String expected = prefixDecode.endsWith("\uFFFD") && !emitted.toString().equals(prefixDecode)
                        ? prefixDecode.substring(0, prefixDecode.length() - 1) : prefixDecode;
                assertEquals(expected, emitted.toString(), "after token " + i);
            }
        }
        String last = d.flush();
        assertNoSplitSurrogate(last);
        emitted.append(last);
        assertEquals(full, emitted.toString());
        assertEquals("", d.flush(), "second flush");
    }

    private static void assertNoSplitSurrogate(String delta) {
        if (delta.isEmpty()) return;
        assertFalse(Character.isHighSurrogate(delta.charAt(delta.length() - 1)), "delta ends inside a surrogate pair");
        assertFalse(Character.isLowSurrogate(delta.charAt(0)), "delta starts inside a surrogate pair");
    }

    @Test
    void emojiSplitOverSingleByteTokensIsHeldUntilComplete() {
        HfTokenizer t = GoldenData.tokenizer("qwen3");
        int[] ids = new int[4];
        byte[] utf8 = "😀".getBytes(java.nio.charset.StandardCharsets.UTF_8);
        for (int i = 0; i < 4; i++) ids[i] = t.tokenToId(String.valueOf(ByteLevel.charOf(utf8[i] & 0xFF))).orElseThrow();
        IncrementalDetokenizer d = t.newDetokenizer(true);
        assertEquals("", d.push(ids[0]));
        assertEquals("", d.push(ids[1]));
        assertEquals("", d.push(ids[2]));
        assertEquals("😀", d.push(ids[3]));
        assertEquals("", d.flush());
    }

    @Test
    void truncatedCharacterBecomesReplacementOnFlush() {
        HfTokenizer t = GoldenData.tokenizer("deepseek_v3");
        IncrementalDetokenizer d = t.newDetokenizer(true);
        assertEquals("Hello", d.push(19923));
        assertEquals(" world", d.push(2058));
        assertEquals("", d.push(175)); // 0xF0
        assertEquals("", d.push(256)); // 0x9F
        assertEquals("\uFFFD", d.flush());
    }

    @Test
    void invalidContinuationIsReplacedWithoutWaiting() {
        HfTokenizer t = GoldenData.tokenizer("deepseek_v3");
        IncrementalDetokenizer d = t.newDetokenizer(true);
        assertEquals("", d.push(163));        // 0xE4, lead of a 3-byte character
        assertEquals("\uFFFDB", d.push(36));  // "B" cannot continue it
    }

    @Test
    void byteFallbackRunIsHeldUntilItEnds() {
        HfTokenizer t = GoldenData.tokenizer("mistral_7b_v0_1");
        IncrementalDetokenizer d = t.newDetokenizer(true);
        assertEquals("", d.push(231)); // <0xE4>
        assertEquals("", d.push(192)); // <0xBD>
        assertEquals("", d.push(163)); // <0xA0>
        assertEquals("你 Hello", d.push(22557)); // "▁Hello" ends the run
        assertEquals("", d.flush());
    }

    @Test
    void leadingSpaceIsStrippedOnceForSentencePieceStyle() {
        HfTokenizer t = GoldenData.tokenizer("mistral_7b_v0_1");
        IncrementalDetokenizer d = t.newDetokenizer(true);
        assertEquals("", d.push(1));           // <s>, skipped
        assertEquals("Hello", d.push(22557));  // "▁Hello"
        assertEquals(" world", d.push(1526));  // "▁world"
        assertEquals("", d.flush());
    }

    @Test
    void skippedSpecialTokensEmitNothing() {
        HfTokenizer t = GoldenData.tokenizer("qwen3");
        IncrementalDetokenizer d = t.newDetokenizer(true);
        assertEquals("", d.push(151645));
        IncrementalDetokenizer keep = t.newDetokenizer(false);
        assertEquals("<|im_end|>", keep.push(151645));
    }

    @Test
    void longStreamIsLinear() {
        HfTokenizer t = GoldenData.tokenizer("deepseek_v3");
        int[] ids = t.encode("The quick brown fox jumps over the lazy dog. 你好，世界！ ".repeat(2000), false);
        IncrementalDetokenizer d = t.newDetokenizer(true);
        StringBuilder sb = new StringBuilder();
        long start = System.nanoTime();
        for (int id : ids) sb.append(d.push(id));
        sb.append(d.flush());
        long micros = (System.nanoTime() - start) / 1000;
        assertEquals(t.decode(ids, true), sb.toString());
        assertTrue(micros < 5_000_000, "streaming " + ids.length + " tokens took " + micros + " us");
    }
}
