// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.rest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dpserve.api.engine.FinishReason;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class TextOutputProcessorTest {
    private final ByteTokenizer tok = new ByteTokenizer();

    private TextOutputProcessor processor(List<String> stops, boolean include, int minTokens) {
        return new TextOutputProcessor(tok.newDetokenizer(true), stops, include, minTokens);
    }

    /** Feeds ids one output each; the last output carries {@code finish}. Returns the deltas. */
    private static List<TextOutputProcessor.Delta> feed(TextOutputProcessor p, int[] ids, FinishReason finish,
                                                        Integer stopReason) {
        List<TextOutputProcessor.Delta> deltas = new ArrayList<>();
        for (int i = 0; i < ids.length && !p.finished(); i++) {
            boolean last = i == ids.length - 1;
            deltas.add(p.accept(new int[] {ids[i]}, last ? finish : null, last ? stopReason : null));
        }
        return deltas;
    }

    private static String joined(List<TextOutputProcessor.Delta> deltas) {
        StringBuilder sb = new StringBuilder();
        deltas.forEach(d -> sb.append(d.text()));
        return sb.toString();
    }

    @Test
    void utf8CharacterSplitAcrossTokensIsReleasedWhole() {
        TextOutputProcessor p = processor(List.of(), false, 0);
        assertEquals("a", p.accept(new int[] {ByteTokenizer.id('a')}, null, null).text());
        assertEquals("", p.accept(new int[] {ByteTokenizer.E_ACUTE_1}, null, null).text());
        assertEquals("é", p.accept(new int[] {ByteTokenizer.E_ACUTE_2}, null, null).text());
        TextOutputProcessor.Delta last = p.accept(new int[] {ByteTokenizer.id('!')}, FinishReason.LENGTH, null);
        assertEquals("!", last.text());
        assertEquals("length", last.finishReason());
        assertEquals("aé!", p.text());
        assertEquals(4, p.generatedTokens());
    }

    @Test
    void danglingByteAtTheEndBecomesReplacementCharacter() {
        TextOutputProcessor p = processor(List.of(), false, 0);
        p.accept(new int[] {ByteTokenizer.E_ACUTE_1}, null, null);
        assertEquals("\uFFFD", p.accept(new int[0], FinishReason.LENGTH, null).text());
    }

    @Test
    void stopStringAcrossTokensTruncatesAndNeverLeaksAPrefix() {
        TextOutputProcessor p = processor(List.of("lo w"), false, 0);
        List<TextOutputProcessor.Delta> deltas = feed(p, ByteTokenizer.ids("Hello world"), FinishReason.LENGTH, null);
        TextOutputProcessor.Delta last = deltas.getLast();
        assertEquals("stop", last.finishReason());
        assertEquals("lo w", last.stopReason());
        assertTrue(last.stoppedByText());
        assertEquals("Hel", p.text());
        assertEquals("Hel", joined(deltas));
        assertEquals(7, p.generatedTokens(), "tokens up to the one completing the stop string");
        String released = "";
        for (TextOutputProcessor.Delta d : deltas) {
            released += d.text();
            assertFalse(released.contains("l" + "o"), "released a stop-string prefix: " + released);
        }
    }

    @Test
    void heldBackTextIsReleasedWhenNoStopStringCompletes() {
        TextOutputProcessor p = processor(List.of("xyz"), false, 0);
        List<TextOutputProcessor.Delta> deltas = feed(p, ByteTokenizer.ids("abxy"), FinishReason.LENGTH, null);
        assertEquals(List.of("", "", "a", "bxy"), deltas.stream().map(TextOutputProcessor.Delta::text).toList());
        assertEquals("length", deltas.getLast().finishReason());
        assertNull(deltas.getLast().stopReason());
    }

    @Test
    void stopStringInsideAMultiCharacterToken() {
        TextOutputProcessor p = processor(List.of("ll"), false, 0);
        TextOutputProcessor.Delta d = p.accept(new int[] {ByteTokenizer.HELLO, ByteTokenizer.WORLD}, null, null);
        assertEquals("He", d.text());
        assertEquals(1, d.consumed(), "the token after the stop is not part of the output");
        assertEquals("ll", d.stopReason());
    }

    @Test
    void includeStopStrKeepsTheStopStringAndDropsWhatFollows() {
        TextOutputProcessor p = processor(List.of("ll"), true, 0);
        TextOutputProcessor.Delta d = p.accept(new int[] {ByteTokenizer.HELLO}, null, null);
        assertEquals("Hell", d.text());
        assertEquals("stop", d.finishReason());
    }

    @Test
    void earliestStopStringWins() {
        TextOutputProcessor p = processor(List.of("world", "o w"), false, 0);
        p.accept(new int[] {ByteTokenizer.HELLO}, null, null);
        TextOutputProcessor.Delta d = p.accept(new int[] {ByteTokenizer.WORLD}, null, null);
        assertEquals("o w", d.stopReason());
        assertEquals("Hell", p.text());
    }

    @Test
    void stopStringsAreIgnoredUntilMinTokens() {
        TextOutputProcessor p = processor(List.of("b"), false, 3);
        List<TextOutputProcessor.Delta> deltas = feed(p, ByteTokenizer.ids("abcab"), FinishReason.LENGTH, null);
        assertEquals("abca", p.text());
        assertEquals("b", deltas.getLast().stopReason());
    }

    @Test
    void engineStopTokenIsCountedButNotRendered() {
        TextOutputProcessor p = processor(List.of(), false, 0);
        List<TextOutputProcessor.Delta> deltas = feed(p, ByteTokenizer.ids("abx"), FinishReason.STOP, ByteTokenizer.id('x'));
        assertEquals("ab", p.text());
        assertEquals(3, p.generatedTokens());
        assertEquals(ByteTokenizer.id('x'), deltas.getLast().stopReason());
        assertFalse(deltas.getLast().stoppedByText());

        TextOutputProcessor q = processor(List.of(), true, 0);
        feed(q, ByteTokenizer.ids("abx"), FinishReason.STOP, ByteTokenizer.id('x'));
        assertEquals("abx", q.text());
    }

    @Test
    void specialTokensAreSkipped() {
        TextOutputProcessor p = processor(List.of(), false, 0);
        p.accept(new int[] {ByteTokenizer.id('a'), ByteTokenizer.SPECIAL}, null, null);
        p.accept(new int[] {ByteTokenizer.EOS}, FinishReason.STOP, null);
        assertEquals("a", p.text());
        TextOutputProcessor keep = new TextOutputProcessor(tok.newDetokenizer(false), List.of(), false, 0);
        keep.accept(new int[] {ByteTokenizer.id('a'), ByteTokenizer.SPECIAL}, FinishReason.LENGTH, null);
        assertEquals("a<|x|>", keep.text());
    }

    @Test
    void releasedTextIsAlwaysAPrefixOfTheFinalText() {
        String[] outputs = {"the cat sat on the mat", "aaaaab", "abcabcabd", "Hello world again"};
        List<List<String>> stopSets = List.of(List.of("cat"), List.of("aab"), List.of("abd", "cabc"),
                List.of("x"), List.of("again", "wor"));
        for (String out : outputs) {
            for (List<String> stops : stopSets) {
                for (boolean include : new boolean[] {false, true}) {
                    TextOutputProcessor p = processor(stops, include, 0);
                    List<TextOutputProcessor.Delta> deltas = feed(p, ByteTokenizer.ids(out), FinishReason.LENGTH, null);
                    String released = "";
                    for (TextOutputProcessor.Delta d : deltas) {
                        released += d.text();
                        assertTrue(p.text().startsWith(released), out + " " + stops + " released " + released);
                    }
                    assertEquals(p.text(), released);
                    boolean stopped = deltas.getLast().stopReason() != null;
                    assertEquals(stops.stream().anyMatch(out::contains), stopped, out + " " + stops);
                }
            }
        }
    }
}
