// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.launcher.bench;

import java.util.ArrayList;
import java.util.List;

/**
 * What one benchmark request measured (vLLM's RequestFuncOutput). Times are in seconds;
 * {@code startNanos} is the System.nanoTime() just before the request was sent.
 */
final class RequestOutput {
    boolean success;
    long startNanos;
    double ttft;                          // send -> first chunk with non-empty choices
    double latency;                       // send -> last chunk with non-empty choices (E2EL)
    final List<Double> itl = new ArrayList<>();
    int outputTokens = -1;                // usage.completion_tokens; -1 when the server sent no usage
    int promptLen;
    final StringBuilder generatedText = new StringBuilder();
    String error = "";

    static RequestOutput failed(long startNanos, int promptLen, String error) {
        RequestOutput o = new RequestOutput();
        o.startNanos = startNanos;
        o.promptLen = promptLen;
        o.error = error;
        return o;
    }
}
