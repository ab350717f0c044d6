// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tokenizer;

import dev.dpserve.api.tokenizer.IncrementalDetokenizer;

/**
 * Streaming decode of one sequence: each id goes through the same decoder stages as
 * {@link HfTokenizer#decode}, which hold back only what later tokens may still change (incomplete
 * UTF-8, a byte-fallback run, trailing strip characters). O(1) amortized per token. One instance
 * per sequence; not thread-safe.
 */
final class HfDetokenizer implements IncrementalDetokenizer {

    private final HfTokenizer tokenizer;
    private final boolean skipSpecialTokens;
    private final StringBuilder out = new StringBuilder();
    private final DecoderPipeline.Stage stream;
    private boolean finished;

    HfDetokenizer(HfTokenizer tokenizer, DecoderPipeline decoder, boolean skipSpecialTokens) {
        this.tokenizer = tokenizer;
        this.skipSpecialTokens = skipSpecialTokens;
        this.stream = decoder.open(out);
    }

    @Override
    public String push(int id) {
        if (finished) throw new IllegalStateException("push after flush");
        String token = tokenizer.tokenForDecode(id, skipSpecialTokens);
        if (token != null) stream.accept(token);
        return drain();
    }

    @Override
    public String flush() {
        if (finished) return "";
        finished = true;
        stream.end();
        return drain();
    }

    private String drain() {
        if (out.isEmpty()) return "";
        String s = out.toString();
        out.setLength(0);
        return s;
    }
}
