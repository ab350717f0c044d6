// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tokenizer;

/**
 * Unicode White_Space, the definition the reference implementation uses (Rust's
 * {@code char::is_whitespace}); Java's {@link Character#isWhitespace} differs (it excludes
 * no-break spaces and U+0085).
 */
final class Whitespace {

    private Whitespace() {}

    static boolean is(int c) {
        return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680
                || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F
                || c == 0x205F || c == 0x3000;
    }

    static String strip(String text, boolean left, boolean right) {
        int start = 0;
        int end = text.length();
        if (left) {
            while (start < end && is(text.codePointAt(start))) {
                start += Character.charCount(text.codePointAt(start));
            }
        }
        if (right) {
            while (end > start && is(text.codePointBefore(end))) {
                end -= Character.charCount(text.codePointBefore(end));
            }
        }
        return text.substring(start, end);
    }
}
