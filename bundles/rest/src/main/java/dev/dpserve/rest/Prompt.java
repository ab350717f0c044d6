// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.rest;

/** One prompt of a completion request: text to tokenize, or token ids as given. Exactly one is set. */
record Prompt(String text, int[] tokenIds) {

    static Prompt ofText(String text) { return new Prompt(text, null); }

    static Prompt ofTokens(int[] ids) { return new Prompt(null, ids); }

    boolean isText() { return text != null; }
}
