// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class EngineJavaOptsTest {

    @Test
    void eachLocalEngineGetsItsShareOfTheCores() {
        assertEquals("-XX:ActiveProcessorCount=1", Main.engineJavaOpts(2, 2, null));
        assertEquals("-XX:ActiveProcessorCount=2", Main.engineJavaOpts(2, 1, ""));
        assertEquals("-XX:ActiveProcessorCount=4", Main.engineJavaOpts(16, 4, "  "));
        assertEquals("-XX:ActiveProcessorCount=3", Main.engineJavaOpts(7, 2, null), "the remainder stays free");
    }

    @Test
    void neverLessThanOneProcessor() {
        assertEquals("-XX:ActiveProcessorCount=1", Main.engineJavaOpts(2, 4, null));
        assertEquals("-XX:ActiveProcessorCount=2", Main.engineJavaOpts(2, 0, null), "no local engine: no split");
    }

    @Test
    void theUsersOptionsComeLastAndSoWin() {
        assertEquals("-XX:ActiveProcessorCount=1 -Xmx8g -XX:ActiveProcessorCount=2",
                Main.engineJavaOpts(2, 2, " -Xmx8g -XX:ActiveProcessorCount=2 "));
    }
}
