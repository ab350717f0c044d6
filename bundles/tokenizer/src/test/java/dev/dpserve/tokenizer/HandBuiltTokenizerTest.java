// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** Options the golden tokenizers do not exercise, on small hand-written tokenizer.json files. */
class HandBuiltTokenizerTest {

    private static HfTokenizer load(String tokenizerJson, String config) throws Exception {
        return HfTokenizer.fromStreams(new ByteArrayInputStream(tokenizerJson.getBytes(StandardCharsets.UTF_8)),
                config == null ? null : new ByteArrayInputStream(config.getBytes(StandardCharsets.UTF_8)));
    }

    private static String bpe(String modelExtras, String vocab, String merges, String addedTokens, String rest) {
        return "{\"added_tokens\": [" + addedTokens + "], " + rest
                + "\"model\": {\"type\": \"BPE\", " + modelExtras + " \"vocab\": {" + vocab + "}, \"merges\": [" + merges + "]}}";
    }

    @Test
    void byteFallbackAndFusedUnknown() throws Exception {
        StringBuilder vocab = new StringBuilder("\"<unk>\": 0, \"a\": 1, \"b\": 2, \"ab\": 3");
        for (int b = 0; b < 256; b++) vocab.append(String.format(", \"<0x%02X>\": %d", b, 10 + b));
        HfTokenizer withFallback = load(bpe("\"unk_token\": \"<unk>\", \"byte_fallback\": true,", vocab.toString(),
                "\"a b\"", "", ""), null);
        assertArrayEquals(new int[] {3, 10 + 0xC3, 10 + 0xA9, 1}, withFallback.encode("abéa", false));

        HfTokenizer fused = load(bpe("\"unk_token\": \"<unk>\", \"fuse_unk\": true,", "\"<unk>\": 0, \"a\": 1, \"b\": 2, \"ab\": 3",
                "[\"a\", \"b\"]", "", ""), null);
        assertArrayEquals(new int[] {3, 0, 1}, fused.encode("abxyza", false));
        HfTokenizer unfused = load(bpe("\"unk_token\": \"<unk>\",", "\"<unk>\": 0, \"a\": 1, \"b\": 2, \"ab\": 3",
                "[\"a\", \"b\"]", "", ""), null);
        assertArrayEquals(new int[] {3, 0, 0, 0, 1}, unfused.encode("abxyza", false));
    }

    @Test
    void mergesApplyByRankThenLeftmost() throws Exception {
        HfTokenizer t = load(bpe("", "\"a\": 0, \"b\": 1, \"aa\": 2, \"ab\": 3, \"aab\": 4",
                "\"a b\", \"a a\", \"aa b\"", "", ""), null);
        // "a b" outranks "a a": aab -> a|ab, never aa|b.
        assertArrayEquals(new int[] {0, 3}, t.encode("aab", false));
        assertArrayEquals(new int[] {2, 2, 0}, t.encode("aaaaa", false));
    }

    @Test
    void ignoreMergesTakesWholeWordsFromTheVocab() throws Exception {
        String vocab = "\"a\": 0, \"b\": 1, \"c\": 2, \"ab\": 3, \"abc\": 4";
        assertArrayEquals(new int[] {3, 2}, load(bpe("", vocab, "\"a b\"", "", ""), null).encode("abc", false));
        assertArrayEquals(new int[] {4}, load(bpe("\"ignore_merges\": true,", vocab, "\"a b\"", "", ""), null).encode("abc", false));
    }

    @Test
    void continuingSubwordPrefixAndEndOfWordSuffix() throws Exception {
        HfTokenizer t = load(bpe("\"continuing_subword_prefix\": \"##\", \"end_of_word_suffix\": \"</w>\",",
                "\"a\": 0, \"##b\": 1, \"##c</w>\": 2, \"ab\": 3, \"ab##c</w>\": 4, \"abc</w>\": 5",
                "\"a ##b\", \"ab ##c</w>\"", "", ""), null);
        assertArrayEquals(new int[] {5}, t.encode("abc", false));
    }

    @Test
    void addedTokenFlags() throws Exception {
        String vocab = "\"x\": 0, \"y\": 1, \" \": 2, \"T\": 3";
        String added = "{\"id\": 10, \"content\": \"<L>\", \"special\": true, \"lstrip\": true, \"rstrip\": false, \"single_word\": false, \"normalized\": false},"
                + "{\"id\": 11, \"content\": \"<R>\", \"special\": false, \"lstrip\": false, \"rstrip\": true, \"single_word\": false, \"normalized\": false},"
                + "{\"id\": 12, \"content\": \"T\", \"special\": false, \"lstrip\": false, \"rstrip\": false, \"single_word\": true, \"normalized\": true},"
                + "{\"id\": 13, \"content\": \"<R>x\", \"special\": true, \"lstrip\": false, \"rstrip\": false, \"single_word\": false, \"normalized\": false}";
        HfTokenizer t = load(bpe("", vocab, "", added, ""), null);
        assertArrayEquals(new int[] {0, 10, 1}, t.encode("x  <L>y", false));          // lstrip eats the spaces before
        assertArrayEquals(new int[] {11, 1}, t.encode("<R>  y", false));               // rstrip eats the spaces after
        assertArrayEquals(new int[] {13, 1}, t.encode("<R>xy", false));                // longest match wins
        assertArrayEquals(new int[] {12, 2, 0, 3, 0}, t.encode("T xTx", false));       // single_word: only the free-standing T
        assertTrue(t.isSpecial(10));
        assertFalse(t.isSpecial(11));
        assertEquals("x   y", t.decode(new int[] {0, 10, 2, 1}, true)); // no decoder: tokens joined by spaces
    }

    @Test
    void normalizedAddedTokensAreMatchedAfterNormalization() throws Exception {
        String vocab = "\"▁\": 0, \"a\": 1, \"b\": 2";
        String added = "{\"id\": 5, \"content\": \"▁b\", \"special\": false, \"lstrip\": false, \"rstrip\": false, \"single_word\": false, \"normalized\": true}";
        String normalizer = "\"normalizer\": {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"▁\"},";
        HfTokenizer t = load(bpe("", vocab, "", added, normalizer), null);
        assertArrayEquals(new int[] {1, 5}, t.encode("a b", false));
    }

    @Test
    void templateProcessingAndLlamaConfigOverride() throws Exception {
        String post = "\"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 0}}, "
                + "{\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}, {\"SpecialToken\": {\"id\": \"</s>\", \"type_id\": 0}}], "
                + "\"special_tokens\": {\"<s>\": {\"id\": \"<s>\", \"ids\": [1], \"tokens\": [\"<s>\"]}, \"</s>\": {\"id\": \"</s>\", \"ids\": [2], \"tokens\": [\"</s>\"]}}},";
        String added = "{\"id\": 1, \"content\": \"<s>\", \"special\": true, \"lstrip\": false, \"rstrip\": false, \"single_word\": false, \"normalized\": false},"
                + "{\"id\": 2, \"content\": \"</s>\", \"special\": true, \"lstrip\": false, \"rstrip\": false, \"single_word\": false, \"normalized\": false}";
        String json = bpe("", "\"a\": 0", "", added, post);
        assertArrayEquals(new int[] {1, 0, 2}, load(json, null).encode("a", true));
        assertArrayEquals(new int[] {1, 0, 2}, load(json, "{\"tokenizer_class\": \"PreTrainedTokenizerFast\", \"add_bos_token\": false}").encode("a", true));
        String llama = "{\"tokenizer_class\": \"LlamaTokenizerFast\", \"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"add_eos_token\": true}";
        assertArrayEquals(new int[] {1, 0, 2}, load(json, llama).encode("a", true));
        String llamaNoBos = "{\"tokenizer_class\": \"LlamaTokenizerFast\", \"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"add_bos_token\": false}";
        assertArrayEquals(new int[] {0}, load(json, llamaNoBos).encode("a", true));
    }

    @Test
    void cleanUpTokenizationSpacesWhenTheConfigSaysSo() throws Exception {
        String vocab = "\"Hello\": 0, \"Ġ,\": 1, \"Ġworld\": 2, \"Ġ!\": 3";
        String rest = "\"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true}, "
                + "\"decoder\": {\"type\": \"ByteLevel\"},";
        String json = bpe("", vocab, "", "", rest);
        assertEquals("Hello , world !", load(json, null).decode(new int[] {0, 1, 2, 3}, true));
        HfTokenizer cleaning = load(json, "{\"clean_up_tokenization_spaces\": true}");
        assertEquals("Hello, world!", cleaning.decode(new int[] {0, 1, 2, 3}, true));
        var d = cleaning.newDetokenizer(true);
        StringBuilder sb = new StringBuilder();
        for (int id : new int[] {0, 1, 2, 3}) sb.append(d.push(id));
        assertEquals("Hello, world!", sb.append(d.flush()).toString());
    }

    @Test
    void loneSurrogatesAreReplaced() {
        assertEquals("a\uFFFDb\uFFFD\uFFFD😀", HfTokenizer.replaceLoneSurrogates("a\uD800b\uDE00\uD83D😀"));
        String ok = "plain 😀";
        assertTrue(ok == HfTokenizer.replaceLoneSurrogates(ok), "no copy when well-formed");
    }

    @Test
    void unicode9NormalizationLeavesNewerMarksInPlace() {
        // U+1DF6 (Unicode 10, ccc 232) before U+0301 (ccc 230): current tables reorder and compose,
        // the reference's Unicode 9 tables see U+1DF6 as a starter and change nothing.
        String s = "a\u1DF6\u0301";
        assertEquals("\u00E1\u1DF6", java.text.Normalizer.normalize(s, java.text.Normalizer.Form.NFC));
        assertEquals(s, Unicode9Normalizer.normalize(s, java.text.Normalizer.Form.NFC));
        assertEquals("\u00E9 x", Unicode9Normalizer.normalize("e\u0301 x", java.text.Normalizer.Form.NFC));
        assertTrue(Unicode9Normalizer.isPostUnicode9(0x1DF6));
        assertFalse(Unicode9Normalizer.isPostUnicode9(0x0301));
    }
}
