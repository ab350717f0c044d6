// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.rest;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dpserve.api.engine.TokenLogprobs;
import dev.dpserve.api.tokenizer.Tokenizer;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The chat logprobs object:
 * {@code {"content":[{"token","logprob","bytes","top_logprobs":[{"token","logprob","bytes"}]}]}}.
 * As in vLLM, a token's top list holds {@code topN} entries taken from the sampled token followed
 * by the engine's most likely tokens, each token id once; {@code bytes} is the UTF-8 of the
 * token's text.
 */
final class ChatLogprobs {
    private ChatLogprobs() {
    }

    static ObjectNode toJson(List<TokenLogprobs> logprobs, int topN, Tokenizer tokenizer) {
        ArrayNode content = Json.array();
        for (TokenLogprobs lp : logprobs) {
            ObjectNode entry = entry(tokenizer, lp.tokenId(), lp.logprob());
            Map<Integer, Float> candidates = new LinkedHashMap<>();
            candidates.put(lp.tokenId(), lp.logprob());
            int[] ids = lp.topIds() == null ? new int[0] : lp.topIds();
            for (int i = 0; i < ids.length; i++) candidates.putIfAbsent(ids[i], lp.topLogprobs()[i]);
            ArrayNode top = entry.putArray("top_logprobs");
            candidates.entrySet().stream().limit(topN)
                    .forEach(e -> top.add(entry(tokenizer, e.getKey(), e.getValue())));
            content.add(entry);
        }
        ObjectNode out = Json.object();
        out.set("content", content);
        return out;
    }

    private static ObjectNode entry(Tokenizer tokenizer, int id, float logprob) {
        String token = CompletionLogprobs.decode(tokenizer, id);
        ObjectNode entry = Json.object();
        entry.put("token", token);
        entry.put("logprob", CompletionLogprobs.clamp(logprob));
        ArrayNode bytes = entry.putArray("bytes");
        for (byte b : token.getBytes(StandardCharsets.UTF_8)) bytes.add(b & 0xFF);
        return entry;
    }
}
