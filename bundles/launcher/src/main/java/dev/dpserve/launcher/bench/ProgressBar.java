// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.launcher.bench;

import java.io.PrintStream;
import java.util.Locale;

/** A tqdm-like one-line progress bar on stderr: {@code  37%|####      | 370/1000 [00:12<00:20, 30.10it/s]}. */
final class ProgressBar {

    private final PrintStream err;
    private final int total;
    private final boolean enabled;
    private final long start = System.nanoTime();
    private final long minIntervalNanos;
    private int done;
    private long lastPrint;

    ProgressBar(PrintStream err, int total, boolean enabled) {
        this.err = err;
        this.total = total;
        this.enabled = enabled;
        // On a terminal redraw often; into a file or pipe, a line every few seconds is enough.
        this.minIntervalNanos = System.console() != null && System.console().isTerminal() ? 100_000_000L : 2_000_000_000L;
    }

    synchronized void step() {
        done++;
        long now = System.nanoTime();
        if (enabled && (done == total || now - lastPrint >= minIntervalNanos)) {
            lastPrint = now;
            err.print("\r" + render(done, total, (now - start) / 1e9));
            if (done == total) err.println();
            err.flush();
        }
    }

    static String render(int done, int total, double elapsedS) {
        int width = 40;
        int filled = total == 0 ? width : (int) ((long) done * width / total);
        double rate = elapsedS > 0 ? done / elapsedS : 0;
        double remaining = rate > 0 ? (total - done) / rate : 0;
        return String.format(Locale.ROOT, "%3d%%|%s%s| %d/%d [%s<%s, %.2fit/s]", total == 0 ? 100 : done * 100L / total,
                "#".repeat(filled), " ".repeat(width - filled), done, total, clock(elapsedS), clock(remaining), rate);
    }

    private static String clock(double s) {
        long t = (long) s;
        return t >= 3600 ? String.format(Locale.ROOT, "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60)
                : String.format(Locale.ROOT, "%02d:%02d", t / 60, t % 60);
    }
}
