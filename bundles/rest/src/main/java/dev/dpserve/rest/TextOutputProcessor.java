// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.rest;

import dev.dpserve.api.engine.FinishReason;
import dev.dpserve.api.tokenizer.IncrementalDetokenizer;
import java.util.List;

/**
 * The text side of one generated sequence, as vLLM's front-end output processor does it:
 * incremental detokenization, stop strings and the hold-back that keeps a possible stop-string
 * prefix out of streamed text.
 *
 * <p>Stop strings are checked only once more than {@code minTokens} tokens were generated, and only
 * against text that is new since the previous check (plus the overlap a stop string can straddle).
 * When one matches, the text is cut before it (after it with {@code includeStopStr}), the
 * sequence finishes with "stop" and the stop string as stop_reason; the caller must abort the
 * engine request. When the engine itself stops (EOS or a stop token id), that last token is
 * counted but not rendered, unless {@code includeStopStr}.
 *
 * <p>Not thread-safe: one instance per sequence, fed in engine order.
 */
final class TextOutputProcessor {

    /**
     * What one engine output changed.
     *
     * @param text         newly releasable text (possibly empty)
     * @param consumed     how many of the output's token ids belong to the sequence (fewer than given
     *                     when a stop string ended it mid-output)
     * @param finishReason null while running
     * @param stopReason   the matched stop string, the engine's stop token id, or null
     * @param stoppedByText true when a stop string ended the sequence (the engine does not know yet)
     */
    record Delta(String text, int consumed, String finishReason, Object stopReason, boolean stoppedByText) {
        boolean finished() { return finishReason != null; }
    }

    private final IncrementalDetokenizer detokenizer;
    private final List<String> stops;
    private final boolean includeStopStr;
    private final int minTokens;
    private final int holdBack;

    private final StringBuilder text = new StringBuilder();
    private int checkedUpTo;   // text before this index has been searched for stop strings
    private int emitted;       // text before this index has been released
    private int generated;     // token ids consumed
    private boolean finished;

    TextOutputProcessor(IncrementalDetokenizer detokenizer, List<String> stops, boolean includeStopStr, int minTokens) {
        this.detokenizer = detokenizer;
        this.stops = List.copyOf(stops);
        this.includeStopStr = includeStopStr;
        this.minTokens = minTokens;
        int longest = this.stops.stream().mapToInt(String::length).max().orElse(0);
        // With include_stop_str_in_output, released text is always a prefix of the final text.
        this.holdBack = includeStopStr ? 0 : Math.max(0, longest - 1);
    }

    Delta accept(int[] newTokenIds, FinishReason engineFinish, Integer engineStopReason) {
        if (finished) throw new IllegalStateException("sequence already finished");
        int[] ids = newTokenIds == null ? new int[0] : newTokenIds;
        boolean skipLast = engineFinish == FinishReason.STOP && !includeStopStr;
        String matched = null;
        int consumed = 0;
        for (int i = 0; i < ids.length && matched == null; i++) {
            consumed++;
            generated++;
            if (skipLast && i == ids.length - 1) break;
            text.append(detokenizer.push(ids[i]));
            matched = checkStops();
        }
        if (matched != null) {
            finished = true;
            return new Delta(release(), consumed, FinishReason.STOP.openAi(), matched, true);
        }
        if (engineFinish == null) {
            return new Delta(release(), consumed, null, null, false);
        }
        text.append(detokenizer.flush());
        matched = checkStops();
        finished = true;
        if (matched != null) return new Delta(release(), consumed, FinishReason.STOP.openAi(), matched, false);
        return new Delta(release(), consumed, engineFinish.openAi(), engineStopReason, false);
    }

    /** All text of the sequence so far (the final text once finished). */
    String text() { return text.toString(); }

    int generatedTokens() { return generated; }

    boolean finished() { return finished; }

    /** Searches the new text for the earliest stop string; on a match, truncates and returns it. */
    private String checkStops() {
        if (stops.isEmpty()) return null;
        if (generated <= minTokens) {
            checkedUpTo = text.length();
            return null;
        }
        int bestAt = -1;
        String best = null;
        for (String stop : stops) {
            // A match must end in the new text, so start at most len-1 chars before it.
            int from = Math.max(0, checkedUpTo - stop.length() + 1);
            int at = text.indexOf(stop, from);
            if (at >= 0 && (bestAt < 0 || at < bestAt)) {
                bestAt = at;
                best = stop;
            }
        }
        checkedUpTo = text.length();
        if (best != null) {
            text.setLength(includeStopStr ? bestAt + best.length() : bestAt);
            checkedUpTo = text.length();
        }
        return best;
    }

    private String release() {
        int end = finished ? text.length() : text.length() - holdBack;
        // Never split a surrogate pair between two deltas.
        if (!finished && end > 0 && end < text.length() && Character.isHighSurrogate(text.charAt(end - 1))) end--;
        if (end <= emitted) return "";
        String delta = text.substring(emitted, end);
        emitted = end;
        return delta;
    }
}
