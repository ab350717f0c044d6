// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tokenizer;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads tokenizer.json. The model's {@code vocab} and {@code merges} (hundreds of thousands of
 * entries) are streamed straight into their final structures; everything else becomes a JSON
 * tree. Halves load time and garbage compared with reading the whole file as a tree.
 */
final class TokenizerJsonReader {

    /**
     * @param root every top-level section; {@code model} without {@code vocab} and {@code merges}
     * @param vocab token to id
     * @param merges pairs in rank order, each {left, right}
     */
    record Contents(ObjectNode root, Map<String, Integer> vocab, List<String[]> merges) {}

    private TokenizerJsonReader() {}

    static Contents read(ObjectMapper mapper, InputStream in) throws IOException {
        try (JsonParser p = mapper.createParser(in)) {
            if (p.nextToken() != JsonToken.START_OBJECT) {
                throw new IOException("tokenizer.json is not a JSON object");
            }
            ObjectNode root = mapper.createObjectNode();
            Map<String, Integer> vocab = null;
            List<String[]> merges = null;
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String field = p.currentName();
                JsonToken value = p.nextToken();
                if (!field.equals("model") || value != JsonToken.START_OBJECT) {
                    root.set(field, p.readValueAsTree());
                    continue;
                }
                ObjectNode model = mapper.createObjectNode();
                while (p.nextToken() == JsonToken.FIELD_NAME) {
                    String name = p.currentName();
                    JsonToken v = p.nextToken();
                    if (name.equals("vocab") && v == JsonToken.START_OBJECT) {
                        vocab = readVocab(p);
                    } else if (name.equals("merges") && v == JsonToken.START_ARRAY) {
                        merges = readMerges(p);
                    } else {
                        model.set(name, p.readValueAsTree());
                    }
                }
                root.set("model", model);
            }
            if (p.currentToken() != JsonToken.END_OBJECT) {
                throw new IOException("tokenizer.json: unexpected " + p.currentToken() + " at " + p.currentLocation());
            }
            return new Contents(root, vocab == null ? Map.of() : vocab, merges == null ? List.of() : merges);
        }
    }

    private static Map<String, Integer> readVocab(JsonParser p) throws IOException {
        Map<String, Integer> vocab = new HashMap<>(1 << 18);
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String token = p.currentName();
            if (p.nextToken() != JsonToken.VALUE_NUMBER_INT) {
                throw new IllegalArgumentException("vocab id of " + token + " is not an integer");
            }
            vocab.put(token, p.getIntValue());
        }
        return vocab;
    }

    private static List<String[]> readMerges(JsonParser p) throws IOException {
        List<String[]> merges = new ArrayList<>(1 << 17);
        for (JsonToken t = p.nextToken(); t != JsonToken.END_ARRAY; t = p.nextToken()) {
            if (t == JsonToken.VALUE_STRING) {
                merges.add(mergePair(p.getText()));
            } else if (t == JsonToken.START_ARRAY) {
                String[] pair = new String[2];
                int n = 0;
                for (JsonToken e = p.nextToken(); e != JsonToken.END_ARRAY; e = p.nextToken()) {
                    if (n < 2) pair[n] = p.getText();
                    n++;
                }
                if (n != 2) throw new IllegalArgumentException("merge with " + n + " parts");
                merges.add(pair);
            } else {
                throw new IllegalArgumentException("malformed merge: " + t);
            }
        }
        return merges;
    }

    /** A merge given as a pair, or as "left right" (exactly one space). */
    private static String[] mergePair(String text) {
        int space = text.indexOf(' ');
        if (space < 0 || text.indexOf(' ', space + 1) >= 0) {
            throw new IllegalArgumentException("malformed merge: " + text);
        }
        return new String[] {text.substring(0, space), text.substring(space + 1)};
    }
}
