// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.rest;

import com.fasterxml.jackson.databind.node.ObjectNode;
import jakarta.ws.rs.container.AsyncResponse;
import jakarta.ws.rs.core.Response;
import java.io.IOException;
import java.util.concurrent.TimeUnit;
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
    private final boolean jsonHeartbeat;

    CompletionStream(CompletionJob job, CompletionFormat format) {
        this(job, format, false);
    }

    private CompletionStream(CompletionJob job, CompletionFormat format, boolean jsonHeartbeat) {
        this.job = job;
        this.format = format;
        this.jsonHeartbeat = jsonHeartbeat;
    }

    /** The same job answered as one JSON body, preceded by a space per second while it runs. */
    CompletionStream asJsonWithHeartbeat() {
        return new CompletionStream(job, format, true);
    }

    /** The media type of the answer: SSE, or JSON for a heartbeat-led non-streaming body. */
    String contentType() {
        return jsonHeartbeat ? Json.CONTENT_TYPE : SseWriter.CONTENT_TYPE;
    }

    /**
     * Answers a suspended JAX-RS request with this stream and returns at once. Everything that
     * touches the response happens on one virtual thread, in order: resume with a Jersey
     * {@link ChunkedOutput} (Jersey commits the headers and attaches the output before
     * {@code resume} returns), write the chunks (each flushed at once; a StreamingOutput's flush
     * is a no-op until 8 KiB are written), close.
     *
     * <p>The request must have been suspended ({@code @Suspended AsyncResponse}) before this is
     * called. Returning a ChunkedOutput from the resource method instead lets Jersey's request
     * thread suspend the servlet request after the output is attached, while this thread may
     * already close it: Jersey's servlet async delegate checks "not completed yet", starts the
     * async context, and only then stores it, so a completion in between finds nothing to
     * complete and the response never ends (the client waits forever for the last chunk).
     */
    void start(AsyncResponse response) {
        Thread.ofVirtual().name("completion-stream").start(() -> {
            ChunkedOutput<String> out = new ChunkedOutput<>(String.class);
            boolean resumed;
            try {
                resumed = response.resume(Response.ok(out, contentType()).build());
            } catch (RuntimeException e) {
                LOG.log(Level.WARNING, "could not start stream " + job.id, e);
                resumed = false;
            }
            if (!resumed) {
                // cancelled or already answered: nobody will read this stream
                job.abortUnfinished();
                return;
            }
            try {
                if (jsonHeartbeat) runJson(out::write);
                else run(new SseWriter(out::write));
            } finally {
                try {
                    out.close();
                } catch (IOException ignored) {
                    // the client is gone
                }
            }
        });
    }

    /** Writes one piece of the response; IOException when the client is gone. */
    interface ChunkSink {
        void write(String chunk) throws IOException;
    }

    /**
     * The non-streaming answer of a long call: a space per second while the job runs (a failed
     * write aborts it), then the complete JSON body, or an OpenAI error body (status already 200).
     */
    void runJson(ChunkSink out) {
        try {
            out.write(" "); // commits the 200 now; every later space probes the connection
            long nextSpace = System.nanoTime() + TimeUnit.SECONDS.toNanos(1);
            while (!job.done()) {
                long now = System.nanoTime();
                if (now >= nextSpace) {
                    out.write(" ");
                    nextSpace = now + TimeUnit.SECONDS.toNanos(1);
                }
                if (!job.awaitOutput(Math.max(1, TimeUnit.NANOSECONDS.toMillis(nextSpace - now)))) continue;
                CompletionJob.Update u = job.next();
                if (u != null && u.error() != null) {
                    job.abortUnfinished();
                    out.write(OpenAiError.internal(u.error()).toJson());
                    return;
                }
            }
            out.write(Json.write(format.response(job)));
        } catch (IOException e) {
            LOG.log(Level.DEBUG, "client left {0}: {1}", job.id, e.toString());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (RuntimeException e) {
            LOG.log(Level.ERROR, "completion " + job.id + " failed", e);
            try {
                out.write(OpenAiError.from(e).toJson());
            } catch (IOException ignored) {
                // the client is gone as well
            }
        } finally {
            job.abortUnfinished();
        }
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
