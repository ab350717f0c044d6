// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class PreTokenizerTest {

    private static final ObjectMapper MAPPER = new ObjectMapper();

    private static List<String> split(String json, String text) throws Exception {
        List<String> out = new ArrayList<>();
        PreTokenizer.fromJson(MAPPER.readTree(json)).split(text, true, out);
        return out;
    }

    private static String splitOnDash(String behavior, boolean invert) {
        return "{\"type\": \"Split\", \"pattern\": {\"String\": \"-\"}, \"behavior\": \"" + behavior + "\", \"invert\": " + invert + "}";
    }

    @Test
    void splitBehaviorsFollowTheReferenceDocumentation() throws Exception {
        String text = "the-final--countdown";
        assertEquals(List.of("the", "final", "countdown"), split(splitOnDash("Removed", false), text));
        assertEquals(List.of("the", "-", "final", "-", "-", "countdown"), split(splitOnDash("Isolated", false), text));
        assertEquals(List.of("the-", "final-", "-", "countdown"), split(splitOnDash("MergedWithPrevious", false), text));
        assertEquals(List.of("the", "-final", "-", "-countdown"), split(splitOnDash("MergedWithNext", false), text));
        assertEquals(List.of("the", "-", "final", "--", "countdown"), split(splitOnDash("Contiguous", false), text));
        assertEquals(List.of("-", "-", "-"), split(splitOnDash("Removed", true), text));
    }

    @Test
    void digitsIndividualOrGrouped() throws Exception {
        assertEquals(List.of("a", "1", "2", "b", "3"), split("{\"type\": \"Digits\", \"individual_digits\": true}", "a12b3"));
        assertEquals(List.of("a", "12", "b", "3"), split("{\"type\": \"Digits\", \"individual_digits\": false}", "a12b3"));
    }

    @Test
    void byteLevelWithGpt2RegexAndPrefixSpace() throws Exception {
        String json = "{\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"use_regex\": true}";
        assertEquals(List.of("ĠHello", ",", "Ġworld", "'s", "ĠĠ", "Ġ1234"), split(json, "Hello, world's   1234"));
    }

    @Test
    void unicodeWhitespaceMatchesBackslashS() throws Exception {
        // Oniguruma's \s is Unicode-aware: U+3000 must not be glued to the following word.
        String json = "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"\\\\s+(?!\\\\S)|\\\\s+|\\\\S+\"}, \"behavior\": \"Isolated\", \"invert\": false}";
        assertEquals(List.of("a", "\u3000", "b"), split(json, "a\u3000b"));
    }

    @Test
    void metaspaceFirstOnlyPrependsAtTheStartOfTheInput() throws Exception {
        String json = "{\"type\": \"Metaspace\", \"replacement\": \"▁\", \"prepend_scheme\": \"first\", \"split\": true}";
        List<String> out = new ArrayList<>();
        PreTokenizer p = PreTokenizer.fromJson(MAPPER.readTree(json));
        p.split("Hey friend", true, out);
        assertEquals(List.of("▁Hey", "▁friend"), out);
        out.clear();
        p.split("Hey friend", false, out);
        assertEquals(List.of("Hey", "▁friend"), out);
    }
}
