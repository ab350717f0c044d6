// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tokenizer;

import java.util.regex.Pattern;

/**
 * Compiles tokenizer.json regexes (written for Oniguruma) with java.util.regex. Oniguruma's
 * {@code \s}, {@code \w}, {@code \d} and case folding are Unicode-aware, so the Java pattern needs
 * {@link Pattern#UNICODE_CHARACTER_CLASS}; the property classes ({@code \p{L}}, {@code \p{N}}, ...)
 * and backtracking semantics used by the published pre-tokenizers are otherwise the same.
 */
final class OnigRegex {

    private OnigRegex() {}

    static Pattern compile(String regex) {
        try {
            return Pattern.compile(regex, Pattern.UNICODE_CHARACTER_CLASS);
        } catch (java.util.regex.PatternSyntaxException e) {
            throw new IllegalArgumentException("unsupported regex in tokenizer.json: " + regex, e);
        }
    }
}
