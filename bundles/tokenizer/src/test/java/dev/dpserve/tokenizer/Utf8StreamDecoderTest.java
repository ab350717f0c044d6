// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.charset.StandardCharsets;
import java.util.Random;
import org.junit.jupiter.api.Test;

class Utf8StreamDecoderTest {

    private static String decode(int... bytes) {
        byte[] b = new byte[bytes.length];
        for (int i = 0; i < b.length; i++) b[i] = (byte) bytes[i];
        return Utf8StreamDecoder.decodeLossy(b);
    }

    @Test
    void maximalSubpartsBecomeOneReplacementEach() {
        // Examples from the Unicode Standard, section 3.9 (U+FFFD substitution of maximal subparts).
        assertEquals("a\uFFFD\uFFFD\uFFFDb", decode('a', 0xF1, 0x80, 0x80, 0xE1, 0x80, 0xC2, 'b'));
        assertEquals("\uFFFD\uFFFD\uFFFD", decode(0xED, 0xA0, 0x80));   // surrogate: each byte
        assertEquals("\uFFFD\uFFFD", decode(0xC0, 0xAF));               // overlong
        assertEquals("\uFFFD", decode(0xF0, 0x9F, 0x98));               // truncated 4-byte
        assertEquals("\uFFFD\uFFFD\uFFFD", decode(0xF4, 0x90, 0x80));   // above U+10FFFF
        assertEquals("\uFFFD\uFFFD\uFFFD\uFFFDA", decode(0xED, 0xA0, 0xCE, 0xE4, 'A'));
        assertEquals("\uFFFDA", decode(0xE4, 'A'));
        assertEquals("😀", decode(0xF0, 0x9F, 0x98, 0x80));
    }

    @Test
    void agreesWithATableDrivenReferenceOnRandomBytes() {
        Random r = new Random(42);
        int[] interesting = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0,
                0xE4, 0xED, 0xEF, 0xF0, 0xF1, 0xF4, 0xF5, 0xFF};
        for (int round = 0; round < 20_000; round++) {
            byte[] b = new byte[1 + r.nextInt(12)];
            for (int i = 0; i < b.length; i++) {
                b[i] = (byte) (r.nextBoolean() ? interesting[r.nextInt(interesting.length)] : r.nextInt(256));
            }
            assertEquals(reference(b), Utf8StreamDecoder.decodeLossy(b), () -> java.util.HexFormat.of().formatHex(b));
        }
    }

    /**
     * Independent oracle: Unicode Table 3-7 (well-formed byte sequences); an ill-formed position
     * emits one U+FFFD and skips the longest prefix of a well-formed sequence found there.
     */
    private static String reference(byte[] b) {
        StringBuilder sb = new StringBuilder();
        int i = 0;
        while (i < b.length) {
            int lead = b[i] & 0xFF;
            int need = lead < 0x80 ? 1 : lead >= 0xC2 && lead <= 0xDF ? 2 : lead >= 0xE0 && lead <= 0xEF ? 3
                    : lead >= 0xF0 && lead <= 0xF4 ? 4 : 0;
            int len = need == 0 ? 0 : 1;
            while (len > 0 && len < need && i + len < b.length && inRange(lead, len, b[i + len] & 0xFF)) len++;
            if (need > 0 && len == need) {
                sb.append(new String(b, i, need, StandardCharsets.UTF_8));
                i += need;
            } else {
                sb.append('\uFFFD');
                i += Math.max(1, len);
            }
        }
        return sb.toString();
    }

    private static boolean inRange(int lead, int position, int x) {
        if (position == 1) {
            if (lead == 0xE0) return x >= 0xA0 && x <= 0xBF;
            if (lead == 0xED) return x >= 0x80 && x <= 0x9F;
            if (lead == 0xF0) return x >= 0x90 && x <= 0xBF;
            if (lead == 0xF4) return x >= 0x80 && x <= 0x8F;
        }
        return x >= 0x80 && x <= 0xBF;
    }

    @Test
    void wellFormedTextAgreesWithTheJdk() {
        Random r = new Random(7);
        for (int round = 0; round < 2_000; round++) {
            StringBuilder s = new StringBuilder();
            for (int i = 0; i < 10; i++) {
                int cp = r.nextInt(0x110000);
                if (cp >= 0xD800 && cp <= 0xDFFF) cp = 'x';
                s.appendCodePoint(cp);
            }
            assertEquals(s.toString(), Utf8StreamDecoder.decodeLossy(s.toString().getBytes(StandardCharsets.UTF_8)));
        }
    }

    @Test
    void byteAtATimeEqualsWhole() {
        byte[] b = "héllo 你好 😀 \uFFFD".getBytes(StandardCharsets.UTF_8);
        Utf8StreamDecoder d = new Utf8StreamDecoder();
        StringBuilder sb = new StringBuilder();
        for (byte x : b) d.accept(x & 0xFF, sb);
        d.finish(sb);
        assertEquals("héllo 你好 😀 \uFFFD", sb.toString());
    }
}
