// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.rest;

import jakarta.ws.rs.container.AsyncResponse;
import jakarta.ws.rs.core.Response;
import java.lang.System.Logger.Level;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * The request cycle both completion endpoints share: prepare (parse, validate, render; nothing
 * reaches the engine yet), submit, then either stream or wait for every choice on the HTTP thread.
 * Every failure becomes OpenAI's error shape; whatever was submitted is aborted.
 */
final class CompletionCalls {
    private static final System.Logger LOG = System.getLogger(CompletionCalls.class.getName());

    /** A job ready to submit and the shapes its results are written in. */
    record Prepared(CompletionJob job, CompletionFormat format) {
    }

    /**
     * A non-streaming call that has not finished after this long answers 200 at once and sends one
     * space (JSON's leading whitespace) per second until the body is ready: the only way to notice
     * a client that left (a failed write) and abort its engine requests, as vLLM does on disconnect.
     * Quicker calls keep a plain response with its real status and Content-Length.
     */
    static volatile long heartbeatAfterMillis = 2000;

    private CompletionCalls() {
    }

    /**
     * Runs a call up to its answer. A stream (a streaming call, or a long non-streaming one) is
     * not started yet: it is the entity of a 200 response, for {@link #answer} to start.
     */
    static Response run(Supplier<Prepared> prepare, ServingMetrics metrics) {
        CompletionJob job = null;
        try {
            Prepared prepared = prepare.get();
            job = prepared.job();
            job.submit(metrics);
            if (job.request.stream()) return streaming(new CompletionStream(job, prepared.format()));
            long heartbeatAt = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(heartbeatAfterMillis);
            while (!job.done()) {
                long left = TimeUnit.NANOSECONDS.toMillis(heartbeatAt - System.nanoTime());
                if (left <= 0) return streaming(new CompletionStream(job, prepared.format()).asJsonWithHeartbeat());
                if (!job.awaitOutput(left)) continue;
                CompletionJob.Update u = job.next();
                if (u != null && u.error() != null) {
                    job.abortUnfinished();
                    throw OpenAiError.internal(u.error());
                }
            }
            return Json.ok(prepared.format().response(job));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            job.abortUnfinished();
            return OpenAiError.unavailable("interrupted while waiting for the engine").toResponse();
        } catch (RuntimeException e) {
            if (job != null) job.abortUnfinished();
            OpenAiError error = OpenAiError.from(e);
            if (error.status() == 500) LOG.log(Level.ERROR, "completion failed", e);
            return error.toResponse();
        }
    }

    private static Response streaming(CompletionStream stream) {
        return Response.ok(stream, stream.contentType()).build();
    }

    /**
     * Answers a suspended JAX-RS request with the result of {@link #run}: a stream starts
     * streaming into it (see {@link CompletionStream#start}), any other response is sent at once.
     */
    static void answer(AsyncResponse response, Response result) {
        if (result.getEntity() instanceof CompletionStream stream) stream.start(response);
        else response.resume(result);
    }

    /** {@code prefix} + the X-Request-Id header, else the body's request_id, else 32 random hex digits. */
    static String responseId(String prefix, String header, String requestId) {
        String base = header != null && !header.isBlank() ? header
                : requestId != null && !requestId.isBlank() ? requestId
                : UUID.randomUUID().toString().replace("-", "");
        return prefix + base;
    }
}
