// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.rest;

import dev.dpserve.api.tokenizer.IncrementalDetokenizer;
import dev.dpserve.api.tokenizer.Tokenizer;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.Set;

/**
 * A byte-level test tokenizer. Ids: 0 {@code <s>} (BOS, special), 1 {@code </s>} (EOS, special),
 * 2..96 printable ASCII (id = byte - 30), 97 newline, 98 and 99 the two UTF-8 bytes of "é" (so one
 * character spans two tokens), 100 "Hello", 101 " world", 102 {@code <|x|>} (special). Encoding is
 * per character and never produces 100/101.
 */
final class ByteTokenizer implements Tokenizer {
    static final int BOS = 0;
    static final int EOS = 1;
    static final int E_ACUTE_1 = 98;
    static final int E_ACUTE_2 = 99;
    static final int HELLO = 100;
    static final int WORLD = 101;
    static final int SPECIAL = 102;
    static final int VOCAB = 103;

    static int id(char c) {
        if (c == '\n') return 97;
        if (c >= 0x20 && c <= 0x7e) return c - 30;
        throw new IllegalArgumentException("no id for " + c);
    }

    /** Ids of text without BOS ("é" becomes two ids). */
    static int[] ids(String text) {
        return new ByteTokenizer().encode(text, false);
    }

    static byte[] bytes(int id) {
        return switch (id) {
            case BOS -> "<s>".getBytes(StandardCharsets.US_ASCII);
            case EOS -> "</s>".getBytes(StandardCharsets.US_ASCII);
            case 97 -> new byte[] {'\n'};
            case E_ACUTE_1 -> new byte[] {(byte) 0xC3};
            case E_ACUTE_2 -> new byte[] {(byte) 0xA9};
            case HELLO -> "Hello".getBytes(StandardCharsets.US_ASCII);
            case WORLD -> " world".getBytes(StandardCharsets.US_ASCII);
            case SPECIAL -> "<|x|>".getBytes(StandardCharsets.US_ASCII);
            default -> {
                if (id >= 2 && id <= 96) yield new byte[] {(byte) (id + 30)};
                throw new IllegalArgumentException("unknown id " + id);
            }
        };
    }

    @Override
    public int[] encode(String text, boolean addSpecialTokens) {
        int[] out = new int[text.length() * 2 + 1];
        int n = 0;
        if (addSpecialTokens) out[n++] = BOS;
        for (char c : text.toCharArray()) {
            if (c == 'é') {
                out[n++] = E_ACUTE_1;
                out[n++] = E_ACUTE_2;
            } else if (c == '\n' || (c >= 0x20 && c <= 0x7e)) {
                out[n++] = id(c);
            } else {
                out[n++] = id('?');
            }
        }
        return Arrays.copyOf(out, n);
    }

    @Override
    public String decode(int[] ids, boolean skipSpecialTokens) {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        for (int id : ids) {
            if (!(skipSpecialTokens && isSpecial(id))) buf.writeBytes(bytes(id));
        }
        return buf.toString(StandardCharsets.UTF_8);
    }

    @Override
    public IncrementalDetokenizer newDetokenizer(boolean skipSpecialTokens) {
        return new IncrementalDetokenizer() {
            private final ByteArrayOutputStream pending = new ByteArrayOutputStream();

            @Override
            public String push(int id) {
                if (skipSpecialTokens && isSpecial(id)) return "";
                pending.writeBytes(bytes(id));
                byte[] b = pending.toByteArray();
                int complete = completePrefix(b);
                pending.reset();
                pending.write(b, complete, b.length - complete);
                return new String(b, 0, complete, StandardCharsets.UTF_8);
            }

            @Override
            public String flush() {
                String rest = pending.toString(StandardCharsets.UTF_8);
                pending.reset();
                return rest;
            }
        };
    }

    /** Length of the longest prefix that does not end inside a UTF-8 sequence. */
    private static int completePrefix(byte[] b) {
        int i = b.length;
        int back = 0;
        while (i > 0 && back < 4 && (b[i - 1] & 0xC0) == 0x80) {
            i--;
            back++;
        }
        if (i == 0) return b.length;
        int lead = b[i - 1] & 0xFF;
        int need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
        return need == back + 1 || need == 1 ? b.length : i - 1;
    }

    @Override
    public int vocabSize() { return VOCAB; }

    @Override
    public OptionalInt bosTokenId() { return OptionalInt.of(BOS); }

    @Override
    public OptionalInt eosTokenId() { return OptionalInt.of(EOS); }

    @Override
    public boolean isSpecial(int id) { return id == BOS || id == EOS || id == SPECIAL; }

    @Override
    public String idToToken(int id) {
        return id == E_ACUTE_1 ? "<0xC3>" : id == E_ACUTE_2 ? "<0xA9>" : new String(bytes(id), StandardCharsets.UTF_8);
    }

    @Override
    public OptionalInt tokenToId(String token) {
        for (int id = 0; id < VOCAB; id++) {
            if (idToToken(id).equals(token)) return OptionalInt.of(id);
        }
        return OptionalInt.empty();
    }

    /** The tokenizer's chat template; none unless a test sets one. */
    volatile String chatTemplate;

    @Override
    public Optional<String> chatTemplate() { return Optional.ofNullable(chatTemplate); }

    @Override
    public Set<String> specialTokens() { return Set.of("<s>", "</s>", "<|x|>"); }
}
