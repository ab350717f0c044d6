// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Load and encode timings on the largest golden tokenizers, printed for the record. The bounds
 * are loose (a shared CI core is slow); they catch accidental quadratic behaviour, not regressions
 * of a few percent.
 */
class PerformanceTest {

    @Test
    void loadAndEncodeTimings(@TempDir Path dir) throws Exception {
        for (String key : new String[] {"deepseek_v3", "qwen3"}) {
            Path d = dir.resolve(key);
            Files.createDirectories(d);
            for (String f : new String[] {"tokenizer.json", "tokenizer_config.json"}) {
                try (InputStream in = GoldenData.open("tokenizers/" + key + "/" + f)) {
                    Files.copy(in, d.resolve(f));
                }
            }
            long bestLoad = Long.MAX_VALUE;
            long firstLoad = 0;
            HfTokenizer t = null;
            for (int i = 0; i < 3; i++) {
                long start = System.nanoTime();
                t = HfTokenizer.load(d);
                long elapsed = System.nanoTime() - start;
                if (i == 0) firstLoad = elapsed;
                bestLoad = Math.min(bestLoad, elapsed);
            }
            String text = sampleText();
            int[] ids = t.encode(text, false); // warm-up
            for (int i = 0; i < 3; i++) t.encode(text + i, false);
            long start = System.nanoTime();
            int rounds = 5;
            long tokens = 0;
            for (int i = 0; i < rounds; i++) tokens += t.encode(text + i, false).length;
            double seconds = (System.nanoTime() - start) / 1e9;
            long decodeStart = System.nanoTime();
            String decoded = t.decode(ids, false);
            double decodeSeconds = (System.nanoTime() - decodeStart) / 1e9;
            assertEquals(text, decoded);
            System.out.printf("%s: load %.0f ms first, %.0f ms best of 3 (%d MB file); encode %.2f M chars/s, %.0f k tokens/s "
                            + "(%d chars -> %d tokens); decode %.0f k tokens/s%n",
                    key, firstLoad / 1e6, bestLoad / 1e6, Files.size(d.resolve("tokenizer.json")) >> 20,
                    rounds * text.length() / seconds / 1e6, tokens / seconds / 1e3, text.length(), ids.length,
                    ids.length / decodeSeconds / 1e3);
            assertTrue(bestLoad < 10_000_000_000L, "load took " + bestLoad / 1e6 + " ms");
            assertTrue(tokens / seconds > 50_000, "encode at " + tokens / seconds + " tokens/s");
        }
    }

    @Test
    void pathologicalInputsNeedNeitherDeepStacksNorQuadraticTime() throws Exception {
        // A small thread stack proves no regex or BPE step recurses per character.
        String[] inputs = {" ".repeat(200_000), "a".repeat(200_000), "7".repeat(200_000), "😀".repeat(50_000),
                "\n".repeat(100_000) + "x", "ab ".repeat(70_000), "<｜User｜>".repeat(20_000), "é".repeat(100_000)};
        Throwable[] failure = new Throwable[1];
        Thread worker = new Thread(null, () -> {
            try {
                for (String key : GoldenData.TOKENIZERS) {
                    HfTokenizer t = GoldenData.tokenizer(key);
                    for (String input : inputs) {
                        long start = System.nanoTime();
                        int[] ids = t.encode(input, false);
                        long ms = (System.nanoTime() - start) / 1_000_000;
                        assertEquals(input, t.decode(ids, false), key);
                        assertTrue(ms < 10_000, key + " took " + ms + " ms on " + input.substring(0, 3) + "...");
                    }
                }
            } catch (Throwable e) {
                failure[0] = e;
            }
        }, "small-stack", 256 * 1024);
        worker.start();
        worker.join();
        if (failure[0] != null) throw new AssertionError(failure[0]);
    }

    /** ~200 kB of mixed prose, code, numbers and CJK. */
    private static String sampleText() {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; sb.length() < 200_000; i++) {
            sb.append("Paragraph ").append(i).append(": The quick brown fox jumps over the lazy dog; ")
                    .append("it's 12345 times faster than yesterday's record (3.14159).\n")
                    .append("    for (int k = 0; k < n; k++) { sum += a[k] * b[k]; }\n")
                    .append("机器学习是人工智能的一个分支。日本語のテキストも含まれています。\n")
                    .append("Überprüfung der Straße — naïve café, résumé. Привет, мир! 😀🚀\n");
        }
        return sb.toString();
    }
}
