// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.rest;

import com.fasterxml.jackson.databind.node.ObjectNode;
import jakarta.ws.rs.core.Response;
import java.io.IOException;
import java.lang.System.Logger.Level;
import org.glassfish.jersey.server.ChunkedOutput;

/**
 * Streams a submitted {@link CompletionJob} as SSE: one chunk per engine output and choice,
 * flushed at once. A failed write means the client left: every unfinished engine request is
 * aborted. Failures after the headers went out become an error event, then {@code [DONE]}.
 */
final class CompletionStream {
    private static final System.Logger LOG = System.getLogger(CompletionStream.class.getName());

    private final CompletionJob job;
    private final CompletionFormat format;

    CompletionStream(CompletionJob job, CompletionFormat format) {
        this.job = job;
        this.format = format;
    }

    /**
     * Streams on a virtual thread into a Jersey {@link ChunkedOutput}, which Jersey never buffers
     * and flushes chunk by chunk (a StreamingOutput's flush is a no-op until 8 KiB are written).
     * Returns at once.
     */
    Response start() {
        ChunkedOutput<String> out = new ChunkedOutput<>(String.class);
        Thread.ofVirtual().name("completion-stream").start(() -> {
            try {
                run(new SseWriter(out::write));
            } finally {
                try {
                    out.close();
                } catch (IOException ignored) {
                    // the client is gone
                }
            }
        });
        return Response.ok(out, SseWriter.CONTENT_TYPE).build();
    }

    /** Runs until every choice finished or the client left; call from a thread of its own. */
    void run(SseWriter sse) {
        try {
            for (ObjectNode chunk : format.openingChunks(job)) sse.data(Json.write(chunk));
            while (!job.done()) {
                CompletionJob.Update u = job.next();
                if (u == null) continue;
                if (u.error() != null) {
                    job.abortUnfinished();
                    sse.data(OpenAiError.internal(u.error()).toJson());
                    sse.done();
                    return;
                }
                CompletionJob.Choice c = u.choice();
                boolean first = !c.started;
                String text = u.text();
                String echo = job.prompts.get(c.promptIndex).echoText();
                if (first && echo != null) text = echo + text;
                if (text.isEmpty() && u.tokenIds().length == 0 && !u.finished()) continue;  // nothing to say
                int offset = c.releasedCodePoints;
                if (first && echo != null) offset += echo.codePointCount(0, echo.length());
                sse.data(Json.write(format.chunk(job, u, text, first, offset)));
                c.started = true;
                c.releasedCodePoints += text.codePointCount(0, text.length());
            }
            if (job.request.includeUsage()) sse.data(Json.write(format.usageChunk(job)));
            sse.done();
        } catch (IOException e) {
            LOG.log(Level.DEBUG, "client left stream {0}: {1}", job.id, e.toString());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (RuntimeException e) {
            LOG.log(Level.ERROR, "stream " + job.id + " failed", e);
            job.abortUnfinished();
            try {
                sse.data(OpenAiError.from(e).toJson());
                sse.done();
            } catch (IOException ignored) {
                // the client is gone as well
            }
        } finally {
            job.abortUnfinished();
        }
    }
}
