// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.rest;

import com.fasterxml.jackson.databind.node.ObjectNode;
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

    /**
     * Streams on a virtual thread into a Jersey {@link ChunkedOutput}, which Jersey never buffers
     * and flushes chunk by chunk (a StreamingOutput's flush is a no-op until 8 KiB are written).
     * Returns at once.
     */
    Response start() {
        ChunkedOutput<String> out = new ChunkedOutput<>(String.class);
        Thread.ofVirtual().name("completion-stream").start(() -> {
            try {
                awaitAttached(out);
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
        return Response.ok(out, jsonHeartbeat ? Json.CONTENT_TYPE : SseWriter.CONTENT_TYPE).build();
    }

    private static final java.lang.reflect.Field RESPONSE_CONTEXT = chunkedOutputField("responseContext");
    private static final java.lang.reflect.Field TOUCHING_ENTITY_STREAM = chunkedOutputField("touchingEntityStream");
    private static final java.lang.reflect.Field FLUSHING = chunkedOutputField("flushing");
    private static final java.lang.reflect.Field RESUMED = chunkedOutputField("resumed");
    private static final long ATTACH_TIMEOUT_NANOS = TimeUnit.SECONDS.toNanos(10);

    private static java.lang.reflect.Field chunkedOutputField(String name) {
        try {
            java.lang.reflect.Field f = ChunkedOutput.class.getDeclaredField(name);
            f.setAccessible(true);
            return f;
        } catch (ReflectiveOperationException | RuntimeException e) {
            LOG.log(Level.WARNING, "ChunkedOutput." + name + " not found (Jersey changed?); streams start without waiting for it: " + e);
            return null;
        }
    }

    /**
     * Waits until Jersey has attached the output to the response and finished its first flush.
     * Written and closed before that, a ChunkedOutput may never end its response (jersey #2964:
     * mostly the first streams after a start, while Jersey's classes still load; the client then
     * waits forever). Writing only after the attach leaves our thread the only one that flushes.
     * Bounded: after 10 s the stream goes ahead as before.
     */
    private static void awaitAttached(ChunkedOutput<String> out) {
        if (RESPONSE_CONTEXT == null || TOUCHING_ENTITY_STREAM == null || FLUSHING == null || RESUMED == null) return;
        long deadline = System.nanoTime() + ATTACH_TIMEOUT_NANOS;
        try {
            // attached, Jersey's first flush begun (resumed) and over, and still so a moment later
            int quiet = 0;
            while (quiet < 2 && System.nanoTime() < deadline) {
                boolean settled = RESPONSE_CONTEXT.get(out) != null && ((java.util.concurrent.atomic.AtomicBoolean) RESUMED.get(out)).get()
                        && !(boolean) FLUSHING.get(out) && !(boolean) TOUCHING_ENTITY_STREAM.get(out);
                quiet = settled ? quiet + 1 : 0;
                java.util.concurrent.locks.LockSupport.parkNanos(500_000);
            }
        } catch (IllegalAccessException | RuntimeException e) {
            // not readable after all: go ahead
        }
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
