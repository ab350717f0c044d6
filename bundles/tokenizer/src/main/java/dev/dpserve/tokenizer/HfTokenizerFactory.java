// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tokenizer;

import dev.dpserve.api.tokenizer.Tokenizer;
import dev.dpserve.api.tokenizer.TokenizerFactory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.osgi.service.component.annotations.Component;

/**
 * Loads Hugging Face tokenizers from model directories: a {@code tokenizer.json} whose model is
 * BPE (byte-level as in Llama 3, Qwen2/3, DeepSeek-V3, or SentencePiece-style with byte fallback
 * as in Llama 2 and Mistral), optionally with {@code tokenizer_config.json} and
 * {@code chat_template.jinja}. Stateless; safe to call concurrently.
 */
@Component(service = TokenizerFactory.class)
public final class HfTokenizerFactory implements TokenizerFactory {

    /** True when the directory has a tokenizer.json with a BPE model (streams the file, no full load). */
    @Override
    public boolean canLoad(Path modelDir) {
        if (modelDir == null) return false;
        Path file = modelDir.resolve(HfTokenizer.TOKENIZER_JSON);
        if (!Files.isRegularFile(file)) return false;
        try {
            return "BPE".equals(HfTokenizer.modelType(file));
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }

    @Override
    public Tokenizer load(Path modelDir) throws IOException {
        return HfTokenizer.load(modelDir);
    }
}
