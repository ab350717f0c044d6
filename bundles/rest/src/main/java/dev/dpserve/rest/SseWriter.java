// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.rest;

import java.io.IOException;

/**
 * Server-sent events as OpenAI streams them: {@code data: <json>\n\n} per event, each written as
 * one chunk that the transport flushes at once, ending with {@code data: [DONE]\n\n}. An
 * IOException means the client is gone.
 */
final class SseWriter {
    static final String CONTENT_TYPE = "text/event-stream";

    /** Where chunks go; each call must reach the client before it returns (flushed). */
    @FunctionalInterface
    interface Chunks {
        void write(String chunk) throws IOException;
    }

    private final Chunks out;

    SseWriter(Chunks out) { this.out = out; }

    void data(String json) throws IOException {
        out.write("data: " + json + "\n\n");
    }

    void done() throws IOException {
        out.write("data: [DONE]\n\n");
    }
}
