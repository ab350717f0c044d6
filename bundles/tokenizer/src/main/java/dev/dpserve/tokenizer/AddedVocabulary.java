// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tokenizer;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Finds added tokens ({@code added_tokens} of tokenizer.json) written in text: leftmost-longest,
 * non-overlapping, honouring {@code single_word}, {@code lstrip} and {@code rstrip}. A match that
 * fails its {@code single_word} check is skipped as a whole, as the reference implementation does.
 * Immutable and thread-safe.
 */
final class AddedVocabulary {

    /** One entry of {@code added_tokens}. */
    record AddedToken(int id, String content, boolean special, boolean singleWord,
                      boolean lstrip, boolean rstrip, boolean normalized) {}

    /** A slice of text, with the added token's id or -1 for ordinary text. */
    record Segment(String text, int id, int start) {}

    private final TrieNode root = new TrieNode();
    private final java.util.BitSet firstChars = new java.util.BitSet(); // chars that start a token
    private final boolean empty;

    /** @param matchText the string each token is matched by (its content, normalized if asked) */
    AddedVocabulary(List<AddedToken> tokens, java.util.function.Function<AddedToken, String> matchText) {
        for (AddedToken t : tokens) {
            String s = matchText.apply(t);
            if (s.isEmpty()) continue;
            firstChars.set(s.charAt(0));
            TrieNode node = root;
            for (int i = 0; i < s.length(); i++) {
                node = node.children.computeIfAbsent(s.charAt(i), c -> new TrieNode());
            }
            node.token = t;
        }
        empty = root.children.isEmpty();
    }

    private static final class TrieNode {
        final Map<Character, TrieNode> children = new HashMap<>(4);
        AddedToken token;
    }

    /** Splits text into ordinary and added-token segments; empty ordinary segments are dropped. */
    List<Segment> split(String text) {
        List<Segment> out = new ArrayList<>();
        if (empty) {
            if (!text.isEmpty()) out.add(new Segment(text, -1, 0));
            return out;
        }
        int emitted = 0;
        int i = 0;
        while (i < text.length()) {
            if (!firstChars.get(text.charAt(i))) {
                i++;
                continue;
            }
            AddedToken found = null;
            int foundEnd = -1;
            TrieNode node = root;
            for (int j = i; j < text.length(); j++) {
                node = node.children.get(text.charAt(j));
                if (node == null) break;
                if (node.token != null) {
                    found = node.token;
                    foundEnd = j + 1;
                }
            }
            if (found == null) {
                i++;
                continue;
            }
            int start = i;
            int stop = foundEnd;
            i = foundEnd;
            if (found.singleWord()) {
                boolean startOk = start == 0 || !isWordChar(text.codePointBefore(start));
                boolean stopOk = stop == text.length() || !isWordChar(text.codePointAt(stop));
                if (!startOk || !stopOk) continue;
            }
            if (found.lstrip()) {
                int s = start;
                while (s > emitted && Whitespace.is(text.codePointBefore(s))) {
                    s -= Character.charCount(text.codePointBefore(s));
                }
                start = s;
            }
            if (found.rstrip()) {
                while (stop < text.length() && Whitespace.is(text.codePointAt(stop))) {
                    stop += Character.charCount(text.codePointAt(stop));
                }
                i = stop;
            }
            if (start > emitted) out.add(new Segment(text.substring(emitted, start), -1, emitted));
            out.add(new Segment(text.substring(start, stop), found.id(), start));
            emitted = stop;
        }
        if (emitted < text.length()) out.add(new Segment(text.substring(emitted), -1, emitted));
        return out;
    }

    private static boolean isWordChar(int cp) {
        return Character.isAlphabetic(cp) || Character.isDigit(cp)
                || Character.getType(cp) == Character.LETTER_NUMBER
                || Character.getType(cp) == Character.OTHER_NUMBER || cp == '_';
    }
}
