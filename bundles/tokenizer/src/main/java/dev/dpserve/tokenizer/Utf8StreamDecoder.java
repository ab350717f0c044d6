// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tokenizer;

/**
 * Incremental, lossy UTF-8 decoder. Each maximal ill-formed subpart becomes one U+FFFD (the
 * Unicode "best practice" also used by WHATWG and Rust's {@code String::from_utf8_lossy}), so
 * feeding bytes one at a time gives the same text as decoding them all at once. Bytes of an
 * incomplete character are held until they complete or turn out invalid. Not thread-safe.
 */
final class Utf8StreamDecoder {

    private int needed;   // continuation bytes still expected
    private int codePoint;
    private int lower = 0x80;
    private int upper = 0xBF;
    private int errors;

    /** Decodes one byte, appending whatever characters became complete. */
    void accept(int unsignedByte, StringBuilder out) {
        int b = unsignedByte & 0xFF;
        if (needed > 0) {
            if (b >= lower && b <= upper) {
                lower = 0x80;
                upper = 0xBF;
                codePoint = (codePoint << 6) | (b & 0x3F);
                if (--needed == 0) {
                    out.appendCodePoint(codePoint);
                }
                return;
            }
            // The partial sequence so far is a maximal ill-formed subpart; b starts afresh.
            reset();
            replacement(out);
        }
        if (b < 0x80) {
            out.append((char) b);
        } else if (b >= 0xC2 && b <= 0xDF) {
            needed = 1;
            codePoint = b & 0x1F;
        } else if (b >= 0xE0 && b <= 0xEF) {
            needed = 2;
            codePoint = b & 0x0F;
            if (b == 0xE0) lower = 0xA0;
            if (b == 0xED) upper = 0x9F;
        } else if (b >= 0xF0 && b <= 0xF4) {
            needed = 3;
            codePoint = b & 0x07;
            if (b == 0xF0) lower = 0x90;
            if (b == 0xF4) upper = 0x8F;
        } else {
            replacement(out);
        }
    }

    void accept(byte[] bytes, StringBuilder out) {
        for (byte b : bytes) {
            accept(b & 0xFF, out);
        }
    }

    /** Ends the input: an incomplete trailing character becomes one U+FFFD. */
    void finish(StringBuilder out) {
        if (needed > 0) {
            reset();
            replacement(out);
        }
    }

    /** Whether bytes of an incomplete character are being held. */
    boolean hasPending() {
        return needed > 0;
    }

    /** Number of U+FFFD emitted so far. */
    int errors() {
        return errors;
    }

    private void replacement(StringBuilder out) {
        errors++;
        out.append('\uFFFD');
    }

    private void reset() {
        needed = 0;
        codePoint = 0;
        lower = 0x80;
        upper = 0xBF;
    }

    /** Decodes a whole byte array, replacing ill-formed subparts. */
    static String decodeLossy(byte[] bytes) {
        Utf8StreamDecoder d = new Utf8StreamDecoder();
        StringBuilder sb = new StringBuilder(bytes.length);
        d.accept(bytes, sb);
        d.finish(sb);
        return sb.toString();
    }
}
