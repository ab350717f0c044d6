// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.rest;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dpserve.api.engine.TokenLogprobs;
import dev.dpserve.api.tokenizer.Tokenizer;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The legacy completions logprobs object:
 * {@code {"tokens":[..],"token_logprobs":[..],"top_logprobs":[{token: lp}],"text_offset":[..]}}.
 * Each top_logprobs entry holds the sampled token first, then the {@code topN} most likely tokens
 * (tokens that decode to the same string share one key). Offsets count code points, as Python does.
 */
final class CompletionLogprobs {
    /** JSON has no -Infinity; vLLM clamps the same way. */
    static final float FLOOR = -9999.0f;

    private CompletionLogprobs() {
    }

    /**
     * @param initialOffset text offset of the first token: the number of code points released
     *                      before it (0 for a whole non-streamed choice)
     */
    static ObjectNode toJson(List<TokenLogprobs> logprobs, int topN, int initialOffset, Tokenizer tokenizer) {
        ArrayNode tokens = Json.array();
        ArrayNode tokenLogprobs = Json.array();
        ArrayNode top = Json.array();
        ArrayNode offsets = Json.array();
        int offset = initialOffset;
        for (TokenLogprobs lp : logprobs) {
            String token = decode(tokenizer, lp.tokenId());
            tokens.add(token);
            tokenLogprobs.add(clamp(lp.logprob()));
            Map<String, Float> entries = new LinkedHashMap<>();
            entries.put(token, clamp(lp.logprob()));
            int k = Math.min(topN, lp.topIds() == null ? 0 : lp.topIds().length);
            for (int i = 0; i < k; i++) {
                entries.put(decode(tokenizer, lp.topIds()[i]), clamp(lp.topLogprobs()[i]));
            }
            ObjectNode entry = Json.object();
            entries.forEach(entry::put);
            top.add(entry);
            offsets.add(offset);
            offset += token.codePointCount(0, token.length());
        }
        ObjectNode out = Json.object();
        out.set("tokens", tokens);
        out.set("token_logprobs", tokenLogprobs);
        out.set("top_logprobs", top);
        out.set("text_offset", offsets);
        return out;
    }

    static float clamp(float logprob) {
        return Float.isNaN(logprob) || logprob < FLOOR ? FLOOR : logprob;
    }

    /** A token as text on its own (a lone byte of a multi-byte character decodes to U+FFFD). */
    static String decode(Tokenizer tokenizer, int id) {
        String s = tokenizer.decode(new int[] {id}, false);
        return s == null ? "" : s;
    }
}
