// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.launcher.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class ProgressBarTest {

    private static final String SPACES_40 = "                                        ";
    private static final String HASHES_40 = "########################################";

    @Test
    void startLine() {
        assertEquals("  0%|" + SPACES_40 + "| 0/200 [00:00<00:00, 0.00it/s]", ProgressBar.render(0, 200, 0));
    }

    @Test
    void partLine() {
        // 50 of 200 after 25 s: 25 %, 10 of 40 cells, 2 it/s, 150 left at 2 it/s = 75 s
        assertEquals(" 25%|##########" + SPACES_40.substring(10) + "| 50/200 [00:25<01:15, 2.00it/s]",
                ProgressBar.render(50, 200, 25.0));
        // percentage and cells round down: 2/3 = 66.7 % -> 66, 26.67 cells -> 26
        assertEquals(" 66%|" + HASHES_40.substring(14) + SPACES_40.substring(26) + "| 2/3 [00:04<00:02, 0.50it/s]",
                ProgressBar.render(2, 3, 4.0));
    }

    @Test
    void finalLine() {
        // 200 requests in 200.5 s: 0.9975 it/s, printed with two decimals
        assertEquals("100%|" + HASHES_40 + "| 200/200 [03:20<00:00, 1.00it/s]", ProgressBar.render(200, 200, 200.5));
    }

    @Test
    void hoursInTheClock() {
        // 1 of 2 after 4096 s = 1 h 8 min 16 s; the other one needs as long again
        assertEquals(" 50%|" + HASHES_40.substring(20) + SPACES_40.substring(20) + "| 1/2 [1:08:16<1:08:16, 0.00it/s]",
                ProgressBar.render(1, 2, 4096));
    }

    @Test
    void emptyRunIsComplete() {
        assertEquals("100%|" + HASHES_40 + "| 0/0 [00:00<00:00, 0.00it/s]", ProgressBar.render(0, 0, 0));
    }

    @Test
    void stepsDrawTheBarAndEndWithTheFinalLine() {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        ProgressBar bar = new ProgressBar(new PrintStream(buf, true, StandardCharsets.UTF_8), 3, true);
        bar.step();
        bar.step();
        bar.step();
        String out = buf.toString(StandardCharsets.UTF_8);
        // The first step is drawn; the second may be skipped (redraws are rate-limited); the last is always drawn.
        assertTrue(out.startsWith("\r 33%|" + HASHES_40.substring(27) + SPACES_40.substring(13) + "| 1/3 ["), out);
        assertTrue(out.endsWith("\n"), "the final line ends the bar: " + out);
        assertEquals(1, out.chars().filter(c -> c == '\n').count(), out);
        long redraws = out.chars().filter(c -> c == '\r').count();
        assertTrue(redraws == 2 || redraws == 3, out);
        String last = out.substring(out.lastIndexOf('\r') + 1);
        assertTrue(last.matches("100%\\|#{40}\\| 3/3 \\[00:00<00:00, [0-9]+\\.[0-9]{2}it/s]\n"), last);
    }

    @Test
    void disabledBarPrintsNothing() {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        ProgressBar bar = new ProgressBar(new PrintStream(buf, true, StandardCharsets.UTF_8), 2, false);
        bar.step();
        bar.step();
        assertEquals("", buf.toString(StandardCharsets.UTF_8));
    }
}
