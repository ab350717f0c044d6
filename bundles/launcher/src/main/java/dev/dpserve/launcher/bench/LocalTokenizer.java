// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.launcher.bench;

import dev.dpserve.api.tokenizer.Tokenizer;
import dev.dpserve.tokenizer.HfTokenizerFactory;
import java.io.IOException;
import java.nio.file.Path;

/** The tokenizer.json of a local model directory, as the server loads it. */
final class LocalTokenizer implements BenchTokenizer {

    private final Tokenizer tokenizer;
    private final String id;

    private LocalTokenizer(Tokenizer tokenizer, String id) {
        this.tokenizer = tokenizer;
        this.id = id;
    }

    /** Whether {@code dir} holds a tokenizer this can load. */
    static boolean canLoad(Path dir) {
        return new HfTokenizerFactory().canLoad(dir);
    }

    static LocalTokenizer load(Path dir, String id) throws IOException {
        return new LocalTokenizer(new HfTokenizerFactory().load(dir), id);
    }

    @Override
    public int[] encode(String text, boolean addSpecialTokens) {
        return tokenizer.encode(text, addSpecialTokens);
    }

    @Override
    public String decode(int[] ids) {
        return tokenizer.decode(ids, false);
    }

    @Override
    public int vocabSize() {
        return tokenizer.vocabSize();
    }

    @Override
    public int numSpecialTokensToAdd() {
        return tokenizer.encode("", true).length - tokenizer.encode("", false).length;
    }

    @Override
    public String id() {
        return id;
    }
}
