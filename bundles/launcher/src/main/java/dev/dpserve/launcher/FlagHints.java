// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.launcher;

import java.util.Collection;

/** "Did you mean" hints for mistyped command-line flags, shared by every dpserve command. */
public final class FlagHints {

    private FlagHints() {
    }

    /** " (did you mean --x?)" for the closest known flag, else " (see {@code helpCommand} --help)". */
    public static String hint(String name, Collection<String> known, String helpCommand) {
        String best = null;
        int bestDistance = Integer.MAX_VALUE;
        for (String candidate : known) {
            int d = editDistance(name, candidate);
            if (d < bestDistance) {
                bestDistance = d;
                best = candidate;
            }
        }
        return best != null && bestDistance <= Math.max(2, name.length() / 3)
                ? " (did you mean " + best + "?)" : " (see " + helpCommand + " --help)";
    }

    /** Levenshtein distance. */
    static int editDistance(String a, String b) {
        int[] prev = new int[b.length() + 1];
        int[] cur = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++) prev[j] = j;
        for (int i = 1; i <= a.length(); i++) {
            cur[0] = i;
            for (int j = 1; j <= b.length(); j++) {
                int cost = a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1;
                cur[j] = Math.min(Math.min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + cost);
            }
            int[] t = prev;
            prev = cur;
            cur = t;
        }
        return prev[b.length()];
    }
}
