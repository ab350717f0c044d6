// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model.generate;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Learns a GPT-2-style byte-level BPE from a small built-in English corpus and renders it as a
 * Hugging Face tokenizer.json. Ids: the special tokens first, then the 256 byte tokens (in byte
 * order, spelled with GPT-2's byte-to-unicode table), then one token per merge in merge order.
 * Deterministic: ties between equally frequent pairs go to the lexicographically smallest pair.
 */
final class ByteLevelBpe {

    /** GPT-2's pre-tokenizer split (what the ByteLevel pre_tokenizer applies with use_regex). */
    static final Pattern SPLIT = Pattern.compile(
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+");

    /** Byte b is spelled BYTE_CHARS[b]: printable Latin-1 stands for itself, the rest maps to U+0100.. */
    static final char[] BYTE_CHARS = new char[256];

    static {
        int next = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            BYTE_CHARS[b] = printable ? (char) b : (char) (256 + next++);
        }
    }

    final List<String> specials;
    final List<String> tokens = new ArrayList<>();   // byte tokens then merged tokens, ids after the specials
    final List<String> merges = new ArrayList<>();   // "left right"

    /** Learns merges until specials + 256 bytes + merges reach {@code vocabSize} or no pair is left. */
    ByteLevelBpe(String corpus, int vocabSize, List<String> specials) {
        this.specials = List.copyOf(specials);
        if (vocabSize < specials.size() + 256) {
            throw new IllegalArgumentException("vocab size " + vocabSize + " is below the " + (specials.size() + 256)
                    + " special and byte tokens");
        }
        for (char c : BYTE_CHARS) tokens.add(String.valueOf(c));
        // words as symbol lists, with their corpus counts, in sorted order for determinism
        Map<String, Integer> wordCounts = new TreeMap<>();
        Matcher m = SPLIT.matcher(corpus);
        while (m.find()) wordCounts.merge(spell(m.group()), 1, Integer::sum);
        List<List<String>> words = new ArrayList<>();
        List<Integer> counts = new ArrayList<>();
        wordCounts.forEach((w, c) -> {
            List<String> symbols = new ArrayList<>();
            w.codePoints().forEach(cp -> symbols.add(Character.toString(cp)));
            words.add(symbols);
            counts.add(c);
        });
        while (specials.size() + tokens.size() < vocabSize) {
            Map<String, Integer> pairs = new HashMap<>();
            for (int i = 0; i < words.size(); i++) {
                List<String> w = words.get(i);
                for (int j = 0; j + 1 < w.size(); j++) pairs.merge(w.get(j) + " " + w.get(j + 1), counts.get(i), Integer::sum);
            }
            String best = null;
            int bestCount = 0;
            for (Map.Entry<String, Integer> e : pairs.entrySet()) {
                int c = e.getValue();
                if (c > bestCount || (c == bestCount && e.getKey().compareTo(best) < 0)) {
                    best = e.getKey();
                    bestCount = c;
                }
            }
            if (best == null) break;
            int space = best.indexOf(' ');
            String left = best.substring(0, space);
            String right = best.substring(space + 1);
            merges.add(best);
            tokens.add(left + right);
            for (List<String> w : words) {
                for (int j = 0; j + 1 < w.size(); j++) {
                    if (w.get(j).equals(left) && w.get(j + 1).equals(right)) {
                        w.set(j, left + right);
                        w.remove(j + 1);
                    }
                }
            }
        }
    }

    /** The byte-level spelling of text: its UTF-8 bytes through BYTE_CHARS. */
    static String spell(String text) {
        StringBuilder sb = new StringBuilder();
        for (byte b : text.getBytes(StandardCharsets.UTF_8)) sb.append(BYTE_CHARS[b & 0xFF]);
        return sb.toString();
    }

    int vocabSize() {
        return specials.size() + tokens.size();
    }

    /** The tokenizer.json tree (standard HF schema; BOS = specials[0] is added by the post-processor). */
    Map<String, Object> tokenizerJson() {
        Map<String, Object> root = new LinkedHashMap<>();
        root.put("version", "1.0");
        root.put("truncation", null);
        root.put("padding", null);
        List<Object> added = new ArrayList<>();
        for (int i = 0; i < specials.size(); i++) {
            Map<String, Object> t = new LinkedHashMap<>();
            t.put("id", i);
            t.put("content", specials.get(i));
            t.put("single_word", false);
            t.put("lstrip", false);
            t.put("rstrip", false);
            t.put("normalized", false);
            t.put("special", true);
            added.add(t);
        }
        root.put("added_tokens", added);
        root.put("normalizer", null);
        root.put("pre_tokenizer", byteLevel(false, true));
        String bos = specials.getFirst();
        Map<String, Object> template = new LinkedHashMap<>();
        template.put("type", "TemplateProcessing");
        template.put("single", List.of(special(bos, 0), sequence("A", 0)));
        template.put("pair", List.of(special(bos, 0), sequence("A", 0), special(bos, 1), sequence("B", 1)));
        template.put("special_tokens", object(bos, object("id", bos, "ids", List.of(0), "tokens", List.of(bos))));
        root.put("post_processor", object("type", "Sequence", "processors", List.of(byteLevel(true, false), template)));
        root.put("decoder", byteLevel(true, true));
        Map<String, Object> model = new LinkedHashMap<>();
        model.put("type", "BPE");
        model.put("dropout", null);
        model.put("unk_token", null);
        model.put("continuing_subword_prefix", null);
        model.put("end_of_word_suffix", null);
        model.put("fuse_unk", false);
        model.put("byte_fallback", false);
        model.put("ignore_merges", false);
        Map<String, Integer> vocab = new LinkedHashMap<>();
        for (int i = 0; i < specials.size(); i++) vocab.put(specials.get(i), i);
        for (int i = 0; i < tokens.size(); i++) vocab.put(tokens.get(i), specials.size() + i);
        model.put("vocab", vocab);
        model.put("merges", merges);
        root.put("model", model);
        return root;
    }

    private static Map<String, Object> byteLevel(boolean addPrefixSpace, boolean trimOffsets) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("type", "ByteLevel");
        m.put("add_prefix_space", addPrefixSpace);
        m.put("trim_offsets", trimOffsets);
        m.put("use_regex", true);
        return m;
    }

    private static Map<String, Object> special(String id, int typeId) {
        return object("SpecialToken", object("id", id, "type_id", typeId));
    }

    private static Map<String, Object> sequence(String id, int typeId) {
        return object("Sequence", object("id", id, "type_id", typeId));
    }

    /** An insertion-ordered JSON object (Map.of iterates in a per-JVM random order). */
    static Map<String, Object> object(Object... keyValues) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < keyValues.length; i += 2) m.put((String) keyValues[i], keyValues[i + 1]);
        return m;
    }

    /** A few paragraphs of plain English to learn merges from. */
    static final String CORPUS = """
            The river runs past the old mill and under the stone bridge before it reaches the sea. In the \
            morning the water is cold and clear, and you can see the small fish moving between the rocks. \
            Children from the village walk along the bank on their way to school, and some of them stop to \
            throw sticks into the current and watch them float away.
            A good cup of tea needs fresh water, a warm pot and a little patience. Let the leaves steep for \
            three or four minutes, then pour it slowly. Some people add milk and sugar; others prefer it \
            plain. There is no wrong way to enjoy it, as long as you take the time to sit down.
            When the train left the station it was almost empty. A man in a grey coat was reading a \
            newspaper, a woman was writing in a notebook, and a young boy was looking out of the window at \
            the fields, the farms and the long line of hills in the distance.
            Computers follow instructions exactly. If a program has a mistake, the machine will repeat that \
            mistake every time, very quickly and without complaint. That is why careful engineers write \
            tests: they want to find the problem before their users do.
            The library opens at nine o'clock and closes at six. It has books about history, science, art \
            and music, and there is a quiet room upstairs where students can study. On Saturdays there is a \
            reading hour for young children, and the room is full of laughter.
            In spring the garden is green again. The trees grow new leaves, the birds build their nests, and \
            the first flowers open in the sun. We planted beans, peas, carrots and tomatoes this year, and \
            we hope the weather will be kind to them.
            She asked, "Where are you going?" He said, "I'm going to the market to buy bread, cheese and \
            some apples. Do you want to come with me?" They walked together down the hill, talking about \
            the weather, their friends and the plans they had for the summer.
            Numbers are everywhere: 1, 2, 3, 10, 42, 100, 2024 and 3.14 are only a few of them. We count \
            the days, we measure the distance, and we add up the cost of the things we buy.
            The night was dark and the wind was strong. Inside the house the fire was warm, and the family \
            sat together, telling stories about the past and laughing at the memories they shared. \
            Outside, the rain kept falling on the roof until the early hours of the morning.
            Learning a new language takes time. You start with simple words, then short sentences, and \
            slowly you begin to understand what people say. It is hard work, but it opens the door to new \
            friends, new books and new ways of seeing the world.
            """;
}
