// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dpserve.api.tokenizer.Tokenizer;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.OptionalInt;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The DS component constructed directly, on model directories in a temp dir. */
class HfTokenizerFactoryTest {

    private final HfTokenizerFactory factory = new HfTokenizerFactory();

    private static void copy(String resource, Path target) throws IOException {
        Files.createDirectories(target.getParent());
        try (InputStream in = GoldenData.open(resource)) {
            Files.copy(in, target, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    @Test
    void emptyDirectoryCannotBeLoaded(@TempDir Path dir) {
        assertFalse(factory.canLoad(dir));
        assertFalse(factory.canLoad(dir.resolve("missing")));
        assertThrows(IOException.class, () -> factory.load(dir));
    }

    @Test
    void nonBpeModelIsRefused(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("tokenizer.json"), """
                {"version": "1.0", "added_tokens": [], "model": {"type": "Unigram", "vocab": [["a", 0.0]]}}""");
        assertFalse(factory.canLoad(dir));
        assertThrows(IllegalArgumentException.class, () -> factory.load(dir));
    }

    @Test
    void malformedJsonIsAnIoException(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("tokenizer.json"), "{\"model\": ");
        assertFalse(factory.canLoad(dir));
        assertThrows(IOException.class, () -> factory.load(dir));
    }

    @Test
    void tinyLlamaModelDirectoryLoadsAndRoundTrips(@TempDir Path dir) throws IOException {
        copy("models/llama-tiny/tokenizer.json", dir.resolve("tokenizer.json"));
        copy("models/llama-tiny/tokenizer_config.json", dir.resolve("tokenizer_config.json"));
        Files.writeString(dir.resolve("config.json"), "{}");
        assertTrue(factory.canLoad(dir));
        Tokenizer t = factory.load(dir);

        assertEquals(512, t.vocabSize());
        assertEquals(OptionalInt.of(0), t.bosTokenId());
        assertEquals(OptionalInt.of(1), t.eosTokenId());
        assertTrue(t.isSpecial(0) && t.isSpecial(1) && !t.isSpecial(2));
        assertEquals(2, t.specialTokens().size());
        assertTrue(t.chatTemplate().isEmpty());
        for (String s : new String[] {"", "Hello, world!", "the theme there", "  leading and trailing  ",
                "naïve café 你好 😀", "line1\nline2\r\n\ttab", "<｜begin▁of▁sentence｜>inline special"}) {
            int[] ids = t.encode(s, false);
            assertEquals(s, t.decode(ids, false), "round trip of " + s);
            int[] withBos = t.encode(s, true);
            assertEquals(0, withBos[0], "add_bos_token=true in tokenizer_config.json");
            assertArrayEquals(ids, java.util.Arrays.copyOfRange(withBos, 1, withBos.length));
            for (int id : ids) assertTrue(id >= 0 && id < t.vocabSize());
        }
        // The tiny vocabulary has merges such as "Ġ t" + "he": the common word is one token.
        assertEquals(1, t.encode(" the", false).length);
        assertEquals("<｜end▁of▁sentence｜>", t.idToToken(1));
        assertEquals(OptionalInt.of(1), t.tokenToId("<｜end▁of▁sentence｜>"));
    }

    @Test
    void chatTemplateComesFromConfigOrJinjaFile(@TempDir Path dir) throws IOException {
        copy("models/llama-tiny/tokenizer.json", dir.resolve("tokenizer.json"));
        Files.writeString(dir.resolve("chat_template.jinja"), "{{ messages }}");
        assertEquals("{{ messages }}", factory.load(dir).chatTemplate().orElseThrow());
        Files.writeString(dir.resolve("tokenizer_config.json"), """
                {"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}],
                 "bos_token": {"content": "<｜begin▁of▁sentence｜>"}, "eos_token": null}""");
        Tokenizer t = factory.load(dir);
        assertEquals("D", t.chatTemplate().orElseThrow());
        assertEquals(OptionalInt.of(0), t.bosTokenId());
        assertEquals(OptionalInt.empty(), t.eosTokenId());
        // No tokenizer_class: the tokenizer.json post-processor (ByteLevel) decides, so no BOS.
        assertArrayEquals(t.encode("hi", false), t.encode("hi", true));
    }

    @Test
    void goldenTokenizerDirectoriesAreRecognised(@TempDir Path dir) throws IOException {
        for (String key : GoldenData.TOKENIZERS) {
            Path d = dir.resolve(key);
            copy("tokenizers/" + key + "/tokenizer.json", d.resolve("tokenizer.json"));
            copy("tokenizers/" + key + "/tokenizer_config.json", d.resolve("tokenizer_config.json"));
            assertTrue(factory.canLoad(d), key);
        }
        Tokenizer qwen = factory.load(dir.resolve("qwen3"));
        assertEquals(OptionalInt.of(151645), qwen.eosTokenId());
        assertEquals(OptionalInt.empty(), qwen.bosTokenId());
        assertTrue(qwen.chatTemplate().orElseThrow().contains("<|im_start|>"));
        assertTrue(qwen.specialTokens().contains("<|im_end|>"));
        assertFalse(qwen.specialTokens().contains("<tool_call>"), "special=false added token");
    }
}
