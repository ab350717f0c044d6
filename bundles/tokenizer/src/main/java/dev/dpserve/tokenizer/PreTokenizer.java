// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntPredicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The {@code pre_tokenizer} section of tokenizer.json: cuts a normalized piece of input into
 * the words that the BPE model encodes independently. Implementations are immutable.
 */
interface PreTokenizer {

    /**
     * Splits {@code piece}, appending the non-empty results to {@code out} in order.
     * {@code atOrigin} tells whether the piece starts at offset 0 of the original input.
     */
    void split(String piece, boolean atOrigin, List<String> out);

    PreTokenizer NONE = (piece, atOrigin, out) -> {
        if (!piece.isEmpty()) {
            out.add(piece);
        }
    };

    /** The regex GPT-2 used, which ByteLevel applies when {@code use_regex} is true. */
    String GPT2_REGEX = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

    static PreTokenizer fromJson(JsonNode node) {
        if (node == null || node.isNull()) {
            return NONE;
        }
        String type = JsonUtil.type(node, "pre_tokenizer");
        return switch (type) {
            case "Sequence" -> {
                List<PreTokenizer> steps = new ArrayList<>();
                for (JsonNode n : node.path("pretokenizers")) {
                    steps.add(fromJson(n));
                }
                yield new SequencePreTokenizer(List.copyOf(steps));
            }
            case "Split" -> {
                JsonNode pattern = node.path("pattern");
                Pattern regex;
                if (pattern.has("Regex")) {
                    regex = OnigRegex.compile(pattern.get("Regex").asText());
                } else if (pattern.has("String")) {
                    regex = Pattern.compile(Pattern.quote(pattern.get("String").asText()));
                } else {
                    throw new IllegalArgumentException("Split without String or Regex pattern");
                }
                yield new RegexSplit(regex, SplitBehavior.fromJson(node.path("behavior").asText()),
                        node.path("invert").asBoolean(false));
            }
            case "ByteLevel" -> new ByteLevelPreTokenizer(node.path("add_prefix_space").asBoolean(true),
                    node.path("use_regex").asBoolean(true) ? OnigRegex.compile(GPT2_REGEX) : null);
            case "Digits" -> new CharClassSplit(
                    c -> Character.getType(c) == Character.DECIMAL_DIGIT_NUMBER
                            || Character.getType(c) == Character.LETTER_NUMBER
                            || Character.getType(c) == Character.OTHER_NUMBER,
                    node.path("individual_digits").asBoolean(false) ? SplitBehavior.ISOLATED : SplitBehavior.CONTIGUOUS);
            case "WhitespaceSplit" -> new CharClassSplit(Whitespace::is, SplitBehavior.REMOVED);
            case "Whitespace" -> new RegexSplit(OnigRegex.compile("\\w+|[^\\w\\s]+"), SplitBehavior.REMOVED, true);
            case "Metaspace" -> {
                String replacement = node.path("replacement").asText("\u2581");
                String scheme = node.has("prepend_scheme") ? node.get("prepend_scheme").asText()
                        : node.path("add_prefix_space").asBoolean(true) ? "always" : "never";
                yield new MetaspacePreTokenizer(replacement.codePointAt(0), scheme, node.path("split").asBoolean(true));
            }
            default -> throw new IllegalArgumentException("unsupported pre_tokenizer type: " + type);
        };
    }

    /** How a Split pre-tokenizer treats the matched delimiters (HF {@code SplitDelimiterBehavior}). */
    enum SplitBehavior {
        REMOVED, ISOLATED, MERGED_WITH_PREVIOUS, MERGED_WITH_NEXT, CONTIGUOUS;

        static SplitBehavior fromJson(String name) {
            return switch (name) {
                case "Removed" -> REMOVED;
                case "Isolated" -> ISOLATED;
                case "MergedWithPrevious" -> MERGED_WITH_PREVIOUS;
                case "MergedWithNext" -> MERGED_WITH_NEXT;
                case "Contiguous" -> CONTIGUOUS;
                default -> throw new IllegalArgumentException("unsupported split behavior: " + name);
            };
        }

        /**
         * Applies the behavior to a piece given its alternating match/non-match ranges:
         * {@code bounds} holds range ends (the first range starts at 0), {@code isMatch} flags them.
         */
        void emit(String piece, int[] bounds, boolean[] isMatch, int count, List<String> out) {
            switch (this) {
                case REMOVED -> {
                    for (int i = 0, start = 0; i < count; start = bounds[i++]) {
                        if (!isMatch[i]) add(piece, start, bounds[i], out);
                    }
                }
                case ISOLATED -> {
                    for (int i = 0, start = 0; i < count; start = bounds[i++]) {
                        add(piece, start, bounds[i], out);
                    }
                }
                case MERGED_WITH_PREVIOUS -> {
                    int pendingStart = -1;
                    int pendingEnd = -1;
                    boolean previousMatch = false;
                    for (int i = 0, start = 0; i < count; start = bounds[i++]) {
                        if (isMatch[i] && !previousMatch && pendingStart >= 0) {
                            pendingEnd = bounds[i];
                        } else {
                            if (pendingStart >= 0) add(piece, pendingStart, pendingEnd, out);
                            pendingStart = start;
                            pendingEnd = bounds[i];
                        }
                        previousMatch = isMatch[i];
                    }
                    if (pendingStart >= 0) add(piece, pendingStart, pendingEnd, out);
                }
                case MERGED_WITH_NEXT -> {
                    // Walk backwards: a match joins the range after it unless that one is a match too.
                    int[] starts = new int[count];
                    int[] ends = new int[count];
                    int n = 0;
                    boolean nextMatch = false;
                    for (int i = count - 1; i >= 0; i--) {
                        int start = i == 0 ? 0 : bounds[i - 1];
                        if (isMatch[i] && !nextMatch && n > 0) {
                            starts[n - 1] = start;
                        } else {
                            starts[n] = start;
                            ends[n] = bounds[i];
                            n++;
                        }
                        nextMatch = isMatch[i];
                    }
                    for (int k = n - 1; k >= 0; k--) {
                        add(piece, starts[k], ends[k], out);
                    }
                }
                case CONTIGUOUS -> {
                    int pendingStart = -1;
                    int pendingEnd = -1;
                    boolean previousMatch = false;
                    for (int i = 0, start = 0; i < count; start = bounds[i++]) {
                        if (isMatch[i] == previousMatch && pendingStart >= 0) {
                            pendingEnd = bounds[i];
                        } else {
                            if (pendingStart >= 0) add(piece, pendingStart, pendingEnd, out);
                            pendingStart = start;
                            pendingEnd = bounds[i];
                        }
                        previousMatch = isMatch[i];
                    }
                    if (pendingStart >= 0) add(piece, pendingStart, pendingEnd, out);
                }
            }
        }

        private static void add(String piece, int start, int end, List<String> out) {
            if (end > start) {
                out.add(piece.substring(start, end));
            }
        }
    }

    /** Collects match/non-match ranges; a small growable pair of arrays. */
    final class Ranges {
        int[] bounds = new int[16];
        boolean[] isMatch = new boolean[16];
        int count;

        void add(int end, boolean match) {
            if (count == bounds.length) {
                bounds = java.util.Arrays.copyOf(bounds, count * 2);
                isMatch = java.util.Arrays.copyOf(isMatch, count * 2);
            }
            bounds[count] = end;
            isMatch[count] = match;
            count++;
        }
    }

    record SequencePreTokenizer(List<PreTokenizer> steps) implements PreTokenizer {
        @Override
        public void split(String piece, boolean atOrigin, List<String> out) {
            List<String> current = List.of(piece);
            for (PreTokenizer step : steps) {
                List<String> next = new ArrayList<>(current.size() * 2);
                for (int i = 0; i < current.size(); i++) {
                    step.split(current.get(i), atOrigin && i == 0, next);
                }
                current = next;
            }
            for (String s : current) {
                if (!s.isEmpty()) out.add(s);
            }
        }
    }

    record RegexSplit(Pattern regex, SplitBehavior behavior, boolean invert) implements PreTokenizer {
        @Override
        public void split(String piece, boolean atOrigin, List<String> out) {
            if (piece.isEmpty()) return;
            Ranges r = new Ranges();
            Matcher m = regex.matcher(piece);
            int prev = 0;
            while (m.find()) {
                if (m.start() != prev) r.add(m.start(), invert);
                r.add(m.end(), !invert);
                prev = m.end();
            }
            if (prev != piece.length()) r.add(piece.length(), invert);
            behavior.emit(piece, r.bounds, r.isMatch, r.count, out);
        }
    }

    /** Splits on single code points matching a predicate (Digits, WhitespaceSplit). */
    record CharClassSplit(IntPredicate matches, SplitBehavior behavior) implements PreTokenizer {
        @Override
        public void split(String piece, boolean atOrigin, List<String> out) {
            if (piece.isEmpty()) return;
            Ranges r = new Ranges();
            int prev = 0;
            for (int i = 0; i < piece.length(); ) {
                int cp = piece.codePointAt(i);
                int next = i + Character.charCount(cp);
                if (matches.test(cp)) {
                    if (i != prev) r.add(i, false);
                    r.add(next, true);
                    prev = next;
                }
                i = next;
            }
            if (prev != piece.length()) r.add(piece.length(), false);
            behavior.emit(piece, r.bounds, r.isMatch, r.count, out);
        }
    }

    /** Byte-level: optional prefix space, optional GPT-2 regex split, then bytes to table chars. */
    record ByteLevelPreTokenizer(boolean addPrefixSpace, Pattern regex) implements PreTokenizer {
        @Override
        public void split(String piece, boolean atOrigin, List<String> out) {
            if (piece.isEmpty()) return;
            if (addPrefixSpace && !piece.startsWith(" ")) {
                piece = " " + piece;
            }
            if (regex == null) {
                out.add(ByteLevel.encode(piece));
                return;
            }
            Matcher m = regex.matcher(piece);
            int prev = 0;
            while (m.find()) {
                if (m.start() > prev) out.add(ByteLevel.encode(piece.substring(prev, m.start())));
                if (m.end() > m.start()) out.add(ByteLevel.encode(piece.substring(m.start(), m.end())));
                prev = m.end();
            }
            if (prev < piece.length()) out.add(ByteLevel.encode(piece.substring(prev)));
        }
    }

    /** SentencePiece-style: spaces become the replacement char, optionally split before each. */
    record MetaspacePreTokenizer(int replacement, String prependScheme, boolean splitWords) implements PreTokenizer {
        @Override
        public void split(String piece, boolean atOrigin, List<String> out) {
            if (piece.isEmpty()) return;
            String rep = Character.toString(replacement);
            String text = piece.replace(" ", rep);
            boolean prepend = switch (prependScheme) {
                case "always" -> true;
                case "first" -> atOrigin;
                default -> false;
            };
            if (prepend && !text.startsWith(rep)) {
                text = rep + text;
            }
            if (!splitWords) {
                out.add(text);
                return;
            }
            new CharClassSplit(c -> c == replacement, SplitBehavior.MERGED_WITH_NEXT).split(text, atOrigin, out);
        }
    }
}
