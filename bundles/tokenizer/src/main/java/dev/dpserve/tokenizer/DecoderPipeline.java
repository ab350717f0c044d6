// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The {@code decoder} section of tokenizer.json (plus transformers' optional
 * {@code clean_up_tokenization_spaces}) as a chain of streaming stages. Each stage receives
 * either separate token strings or, after a fusing step (ByteLevel, Fuse), consecutive fragments
 * of one string, and may hold text back until it is final. Decoding a whole sequence and
 * streaming it token by token run the same code, so their results agree by construction.
 * The pipeline description is immutable; {@link #open(StringBuilder)} creates per-stream state.
 */
final class DecoderPipeline {

    /** One step's per-stream state. */
    abstract static class Stage {
        /** Receives the next token (or fragment of the fused string). */
        abstract void accept(String piece);

        /** End of input: release anything held back. */
        abstract void end();
    }

    /** Immutable description of one step. */
    private interface Step {
        /** Whether this step's output is one fused string, given whether its input is. */
        boolean outputFused(boolean inputFused);

        Stage open(Stage downstream, boolean inputFused);
    }

    private final List<Step> steps;
    private final boolean[] inputFused;

    private DecoderPipeline(List<Step> steps) {
        this.steps = List.copyOf(steps);
        inputFused = new boolean[steps.size()];
        boolean fused = false;
        for (int i = 0; i < steps.size(); i++) {
            inputFused[i] = fused;
            fused = steps.get(i).outputFused(fused);
        }
    }

    /** Builds the pipeline; {@code cleanUpSpaces} appends transformers' clean-up step. */
    static DecoderPipeline fromJson(JsonNode decoder, boolean cleanUpSpaces) {
        List<Step> steps = new ArrayList<>();
        if (decoder == null || decoder.isNull()) {
            steps.add(new JoinWithSpace());
        } else {
            addSteps(decoder, steps);
        }
        if (cleanUpSpaces) {
            steps.add(new CleanUp());
        }
        DecoderPipeline p = new DecoderPipeline(steps);
        p.open(new StringBuilder()); // validates that every step supports its input kind
        return p;
    }

    private static void addSteps(JsonNode node, List<Step> steps) {
        String type = JsonUtil.type(node, "decoder");
        switch (type) {
            case "Sequence" -> {
                for (JsonNode n : node.path("decoders")) addSteps(n, steps);
            }
            case "ByteLevel" -> steps.add(new ByteLevelStep());
            case "ByteFallback" -> steps.add(new ByteFallbackStep());
            case "Fuse" -> steps.add(new FuseStep());
            case "Strip" -> steps.add(new StripStep(node.path("content").asText(" ").codePointAt(0),
                    node.path("start").asInt(0), node.path("stop").asInt(0)));
            case "Replace" -> {
                JsonNode pattern = node.path("pattern");
                if (!pattern.has("String")) {
                    throw new IllegalArgumentException("Replace decoder supports String patterns only: " + JsonUtil.abbreviate(node));
                }
                steps.add(new ReplaceStep(pattern.get("String").asText(), node.path("content").asText()));
            }
            case "Metaspace" -> {
                String scheme = node.has("prepend_scheme") ? node.get("prepend_scheme").asText()
                        : node.path("add_prefix_space").asBoolean(true) ? "always" : "never";
                steps.add(new MetaspaceStep(node.path("replacement").asText("\u2581").codePointAt(0), !scheme.equals("never")));
            }
            default -> throw new IllegalArgumentException("unsupported decoder type: " + type);
        }
    }

    /** Opens a stream whose final text is appended to {@code sink}. */
    Stage open(StringBuilder sink) {
        Stage downstream = new Stage() {
            @Override
            void accept(String piece) {
                sink.append(piece);
            }

            @Override
            void end() {}
        };
        for (int i = steps.size() - 1; i >= 0; i--) {
            downstream = steps.get(i).open(downstream, inputFused[i]);
        }
        return downstream;
    }

    private static IllegalArgumentException fusedInput(String step) {
        return new IllegalArgumentException("decoder step " + step + " after a fusing step is not supported");
    }

    /** No decoder: tokens joined with single spaces. */
    private record JoinWithSpace() implements Step {
        public boolean outputFused(boolean inputFused) {
            return true;
        }

        public Stage open(Stage downstream, boolean inputFused) {
            return new Stage() {
                boolean first = !inputFused;

                void accept(String piece) {
                    if (inputFused) {
                        downstream.accept(piece);
                        return;
                    }
                    downstream.accept(first ? piece : " " + piece);
                    first = false;
                }

                void end() {
                    downstream.end();
                }
            };
        }
    }

    /**
     * Table characters back to bytes, then lossy UTF-8 over the whole sequence. A token with a
     * character outside the table (an added token such as {@code <｜User｜>}) contributes its own
     * UTF-8 bytes.
     */
    private record ByteLevelStep() implements Step {
        public boolean outputFused(boolean inputFused) {
            return true;
        }

        public Stage open(Stage downstream, boolean inputFused) {
            if (inputFused) throw fusedInput("ByteLevel");
            return new Stage() {
                final Utf8StreamDecoder utf8 = new Utf8StreamDecoder();
                final StringBuilder text = new StringBuilder();

                void accept(String token) {
                    boolean allMapped = true;
                    for (int i = 0; i < token.length() && allMapped; i++) {
                        allMapped = ByteLevel.byteOf(token.charAt(i)) >= 0;
                    }
                    if (allMapped) {
                        for (int i = 0; i < token.length(); i++) utf8.accept(ByteLevel.byteOf(token.charAt(i)), text);
                    } else {
                        utf8.accept(token.getBytes(StandardCharsets.UTF_8), text);
                    }
                    emit();
                }

                void end() {
                    utf8.finish(text);
                    emit();
                    downstream.end();
                }

                private void emit() {
                    if (!text.isEmpty()) {
                        downstream.accept(text.toString());
                        text.setLength(0);
                    }
                }
            };
        }
    }

    /**
     * {@code <0xXX>} tokens to bytes. A run of them decodes as UTF-8 when valid; otherwise each
     * byte of the run becomes one U+FFFD. A run is held until a non-byte token or the end.
     */
    private record ByteFallbackStep() implements Step {
        public boolean outputFused(boolean inputFused) {
            return false;
        }

        public Stage open(Stage downstream, boolean inputFused) {
            if (inputFused) throw fusedInput("ByteFallback");
            return new Stage() {
                byte[] run = new byte[8];
                int runLength;

                void accept(String token) {
                    int b = byteToken(token);
                    if (b >= 0) {
                        if (runLength == run.length) run = java.util.Arrays.copyOf(run, runLength * 2);
                        run[runLength++] = (byte) b;
                        return;
                    }
                    flushRun();
                    downstream.accept(token);
                }

                void end() {
                    flushRun();
                    downstream.end();
                }

                private void flushRun() {
                    if (runLength == 0) return;
                    Utf8StreamDecoder d = new Utf8StreamDecoder();
                    StringBuilder sb = new StringBuilder(runLength);
                    for (int i = 0; i < runLength; i++) d.accept(run[i] & 0xFF, sb);
                    if (d.errors() == 0 && !d.hasPending()) {
                        downstream.accept(sb.toString());
                    } else {
                        for (int i = 0; i < runLength; i++) downstream.accept("\uFFFD");
                    }
                    runLength = 0;
                }
            };
        }

        /** The byte of a {@code <0xXX>} token, or -1. */
        static int byteToken(String token) {
            if (token.length() != 6 || !token.startsWith("<0x") || token.charAt(5) != '>') return -1;
            int hi = Character.digit(token.charAt(3), 16);
            int lo = Character.digit(token.charAt(4), 16);
            return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
        }
    }

    private record FuseStep() implements Step {
        public boolean outputFused(boolean inputFused) {
            return true;
        }

        public Stage open(Stage downstream, boolean inputFused) {
            return new Stage() {
                void accept(String piece) {
                    downstream.accept(piece);
                }

                void end() {
                    downstream.end();
                }
            };
        }
    }

    /**
     * Removes up to {@code start} leading and {@code stop} trailing {@code content} characters, per
     * token, or once for the whole text after a fusing step (trailing ones are then held back).
     */
    private record StripStep(int content, int start, int stop) implements Step {
        public boolean outputFused(boolean inputFused) {
            return inputFused;
        }

        public Stage open(Stage downstream, boolean inputFused) {
            if (!inputFused) {
                return new Stage() {
                    void accept(String token) {
                        int[] cps = token.codePoints().toArray();
                        int from = 0;
                        while (from < Math.min(start, cps.length) && cps[from] == content) from++;
                        int to = cps.length;
                        for (int i = 0; i < stop && to > from && cps[to - 1] == content; i++) to--;
                        downstream.accept(new String(cps, from, to - from));
                    }

                    void end() {
                        downstream.end();
                    }
                };
            }
            return new Stage() {
                int strippedLeading;
                boolean leading = true;
                int held; // trailing content chars not yet known to be interior

                void accept(String piece) {
                    StringBuilder out = new StringBuilder(piece.length());
                    for (int i = 0; i < piece.length(); ) {
                        int cp = piece.codePointAt(i);
                        i += Character.charCount(cp);
                        if (leading) {
                            if (cp == content && strippedLeading < start) {
                                strippedLeading++;
                                continue;
                            }
                            leading = false;
                        }
                        if (cp == content) {
                            held++;
                        } else {
                            for (; held > 0; held--) out.appendCodePoint(content);
                            out.appendCodePoint(cp);
                        }
                    }
                    if (!out.isEmpty()) downstream.accept(out.toString());
                }

                void end() {
                    StringBuilder out = new StringBuilder();
                    for (int i = stop; i < held; i++) out.appendCodePoint(content);
                    held = 0;
                    if (!out.isEmpty()) downstream.accept(out.toString());
                    downstream.end();
                }
            };
        }
    }

    /** Literal replacement, per token or across fragments of the fused text. */
    private record ReplaceStep(String pattern, String content) implements Step {
        public boolean outputFused(boolean inputFused) {
            return inputFused;
        }

        public Stage open(Stage downstream, boolean inputFused) {
            if (!inputFused || pattern.length() <= 1) {
                return new Stage() {
                    void accept(String piece) {
                        downstream.accept(pattern.isEmpty() ? piece : piece.replace(pattern, content));
                    }

                    void end() {
                        downstream.end();
                    }
                };
            }
            return new Stage() {
                final StringBuilder buffer = new StringBuilder();

                void accept(String piece) {
                    buffer.append(piece);
                    // Hold back the longest suffix that could still start a match.
                    int keep = Math.min(pattern.length() - 1, buffer.length());
                    while (keep > 0 && !pattern.startsWith(buffer.substring(buffer.length() - keep))) keep--;
                    String ready = buffer.substring(0, buffer.length() - keep);
                    buffer.delete(0, buffer.length() - keep);
                    if (!ready.isEmpty()) downstream.accept(ready.replace(pattern, content));
                }

                void end() {
                    if (!buffer.isEmpty()) downstream.accept(buffer.toString().replace(pattern, content));
                    buffer.setLength(0);
                    downstream.end();
                }
            };
        }
    }

    /** The replacement char becomes a space; in the first token it is dropped (unless prepend scheme is never). */
    private record MetaspaceStep(int replacement, boolean dropInFirst) implements Step {
        public boolean outputFused(boolean inputFused) {
            return false;
        }

        public Stage open(Stage downstream, boolean inputFused) {
            if (inputFused) throw fusedInput("Metaspace");
            return new Stage() {
                boolean first = true;

                void accept(String token) {
                    StringBuilder out = new StringBuilder(token.length());
                    token.codePoints().forEach(cp -> {
                        if (cp != replacement) out.appendCodePoint(cp);
                        else if (!(first && dropInFirst)) out.append(' ');
                    });
                    first = false;
                    downstream.accept(out.toString());
                }

                void end() {
                    downstream.end();
                }
            };
        }
    }

    /**
     * transformers' {@code clean_up_tokenization}: removes the space before punctuation and
     * English contractions. Text is released up to the last character that cannot take part in a
     * pattern at a non-final position, so streamed and whole results agree.
     */
    private record CleanUp() implements Step {
        public boolean outputFused(boolean inputFused) {
            return true;
        }

        public Stage open(Stage downstream, boolean inputFused) {
            return new Stage() {
                final StringBuilder buffer = new StringBuilder();

                void accept(String piece) {
                    // Everything already buffered is unsafe, so only the new piece can hold a cut point.
                    int base = buffer.length();
                    buffer.append(piece);
                    int cut = buffer.length();
                    while (cut > base && "' nvr".indexOf(buffer.charAt(cut - 1)) >= 0) cut--;
                    if (cut > base) {
                        downstream.accept(cleanUp(buffer.substring(0, cut)));
                        buffer.delete(0, cut);
                    }
                }

                void end() {
                    if (!buffer.isEmpty()) downstream.accept(cleanUp(buffer.toString()));
                    buffer.setLength(0);
                    downstream.end();
                }
            };
        }

        static String cleanUp(String s) {
            return s.replace(" .", ".").replace(" ?", "?").replace(" !", "!").replace(" ,", ",")
                    .replace(" ' ", "'").replace(" n't", "n't").replace(" 'm", "'m").replace(" 's", "'s")
                    .replace(" 've", "'ve").replace(" 're", "'re");
        }
    }
}
