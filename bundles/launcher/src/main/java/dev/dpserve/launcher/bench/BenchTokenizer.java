// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.launcher.bench;

import java.io.IOException;

/**
 * The tokenizer operations the random dataset needs (a subset of HF's). Implementations are
 * safe for concurrent use.
 */
interface BenchTokenizer {

    int[] encode(String text, boolean addSpecialTokens) throws IOException;

    /** Decodes without skipping special tokens (HF's default). */
    String decode(int[] ids) throws IOException;

    /** The ids the random dataset draws from are in [0, vocabSize). */
    int vocabSize() throws IOException;

    /** HF's num_special_tokens_to_add(): tokens added around a single sequence (e.g. BOS). */
    int numSpecialTokensToAdd() throws IOException;

    /** What the JSON result names as tokenizer_id. */
    String id();
}
