// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tokenizer;

import java.text.Normalizer.Form;

/**
 * Unicode normalization (NFC, NFD, NFKC, NFKD) as the reference implementation computes it. HF
 * tokenizers normalizes with the Rust crate unicode-normalization-alignments, whose tables are
 * Unicode 9.0: to it, a character assigned later has combining class 0, no decomposition and no
 * composition, so it is left in place and blocks reordering and composition around it. The JDK
 * uses current tables; this class reproduces the old behaviour by normalizing the text between
 * such characters separately and keeping them unchanged.
 */
final class Unicode9Normalizer {

    /**
     * Inclusive code point ranges of characters assigned after Unicode 9.0 (up to Unicode 16)
     * whose normalization behaviour in current tables is non-trivial (a decomposition, a non-zero
     * combining class, or a part of a new composite). Other new characters behave identically
     * under both table versions. Generated once from Perl's {@code \p{In=9.0}} and JDK 25's
     * {@link java.text.Normalizer}.
     */
    private static final int[] POST_UNICODE_9 = {
            0x7FD, 0x7FD, 0x897, 0x89F, 0x8CA, 0x8D3, 0x9FE, 0x9FE, 0xC3C, 0xC3C, 0xD3B, 0xD3C,
            0xEBA, 0xEBA, 0x1715, 0x1715, 0x1ABF, 0x1ACE, 0x1DF6, 0x1DFA, 0x32FF, 0x32FF, 0xA7F2, 0xA7F4,
            0xA82C, 0xA82C, 0xAB66, 0xAB67, 0xAB69, 0xAB69, 0x105C9, 0x105C9, 0x105D2, 0x105D2, 0x105DA, 0x105DA,
            0x105E4, 0x105E4, 0x10781, 0x10785, 0x10787, 0x107B0, 0x107B2, 0x107BA, 0x10D24, 0x10D27, 0x10D69, 0x10D6D,
            0x10EAB, 0x10EAC, 0x10EFD, 0x10EFF, 0x10F46, 0x10F50, 0x10F82, 0x10F85, 0x11070, 0x11070, 0x1133B, 0x1133B,
            0x11382, 0x11385, 0x1138B, 0x1138B, 0x1138E, 0x1138E, 0x11390, 0x11391, 0x113B8, 0x113B8, 0x113BB, 0x113BB,
            0x113C2, 0x113C2, 0x113C5, 0x113C5, 0x113C7, 0x113C9, 0x113CE, 0x113D0, 0x1145E, 0x1145E, 0x11839, 0x1183A,
            0x11930, 0x11930, 0x11935, 0x11935, 0x11938, 0x11938, 0x1193D, 0x1193E, 0x11943, 0x11943, 0x119E0, 0x119E0,
            0x11A34, 0x11A34, 0x11A47, 0x11A47, 0x11A99, 0x11A99, 0x11D42, 0x11D42, 0x11D44, 0x11D45, 0x11D97, 0x11D97,
            0x11F41, 0x11F42, 0x1611E, 0x16129, 0x1612F, 0x1612F, 0x16D63, 0x16D63, 0x16D67, 0x16D6A, 0x16FF0, 0x16FF1,
            0x1CCD6, 0x1CCF9, 0x1DF04, 0x1DF06, 0x1DF08, 0x1DF08, 0x1DF0A, 0x1DF0A, 0x1DF1E, 0x1DF1E, 0x1E030, 0x1E06D,
            0x1E08F, 0x1E08F, 0x1E130, 0x1E136, 0x1E2AE, 0x1E2AE, 0x1E2EC, 0x1E2EF, 0x1E4EC, 0x1E4EF, 0x1E5EE, 0x1E5EF,
            0x1F16C, 0x1F16C, 0x1FBF0, 0x1FBF9
    };

    private Unicode9Normalizer() {}

    static String normalize(String text, Form form) {
        int first = firstPostUnicode9(text, 0);
        if (first < 0) {
            return java.text.Normalizer.normalize(text, form);
        }
        StringBuilder out = new StringBuilder(text.length() + 8);
        int start = 0;
        for (int i = first; i >= 0; i = firstPostUnicode9(text, start)) {
            out.append(java.text.Normalizer.normalize(text.substring(start, i), form));
            int cp = text.codePointAt(i);
            out.appendCodePoint(cp);
            start = i + Character.charCount(cp);
        }
        out.append(java.text.Normalizer.normalize(text.substring(start), form));
        return out.toString();
    }

    /** Index of the first listed character at or after {@code from}, or -1. */
    private static int firstPostUnicode9(String text, int from) {
        for (int i = from; i < text.length(); ) {
            int cp = text.codePointAt(i);
            if (cp >= POST_UNICODE_9[0] && isPostUnicode9(cp)) {
                return i;
            }
            i += Character.charCount(cp);
        }
        return -1;
    }

    static boolean isPostUnicode9(int cp) {
        // Binary search over range starts (even indices).
        int lo = 0;
        int hi = POST_UNICODE_9.length / 2 - 1;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            if (cp < POST_UNICODE_9[2 * mid]) hi = mid - 1;
            else if (cp > POST_UNICODE_9[2 * mid + 1]) lo = mid + 1;
            else return true;
        }
        return false;
    }
}
