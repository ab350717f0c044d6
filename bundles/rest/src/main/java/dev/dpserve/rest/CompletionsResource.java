// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.rest;

import dev.dpserve.api.engine.InferenceEngine;
import jakarta.ws.rs.HeaderParam;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.core.Response;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.util.UUID;
import org.glassfish.jersey.server.ChunkedOutput;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ServiceScope;
import org.osgi.service.jakartars.whiteboard.propertytypes.JakartarsName;
import org.osgi.service.jakartars.whiteboard.propertytypes.JakartarsResource;

/**
 * {@code POST /v1/completions}: vLLM's OpenAI-compatible text completions, plain JSON or SSE.
 *
 * <p>The body is read as a String and parsed here, so every malformed request gets OpenAI's error
 * shape. Everything that can be refused is refused before the first engine submission; a
 * non-streaming call then waits for all its choices on the HTTP thread, a streaming call returns
 * at once and streams from a virtual thread.
 */
@Component(service = CompletionsResource.class, scope = ServiceScope.PROTOTYPE)
@JakartarsResource
@JakartarsName("completions")
@Path("/v1/completions")
public class CompletionsResource {
    private static final System.Logger LOG = System.getLogger(CompletionsResource.class.getName());

    @Reference
    private InferenceEngine engine;

    public CompletionsResource() {
    }

    CompletionsResource(InferenceEngine engine) { this.engine = engine; }

    @POST
    public Response create(String body, @HeaderParam("Content-Type") String contentType,
                           @HeaderParam("X-Request-Id") String requestIdHeader) {
        CompletionJob job = null;
        try {
            Json.requireJsonContentType(contentType);
            CompletionRequest request = CompletionRequestParser.parse(body);
            ModelNames.require(request.model(), engine.model());
            String unhealthy = engine.unhealthyReason();
            if (unhealthy != null) throw OpenAiError.unavailable(unhealthy);
            job = CompletionJob.prepare(responseId(requestIdHeader, request.requestId()), request, engine);
            job.submit();
            if (request.stream()) return startStream(new CompletionStream(job));
            while (!job.done()) {
                CompletionJob.Update u = job.next();
                if (u != null && u.error() != null) {
                    job.abortUnfinished();
                    throw OpenAiError.internal(u.error());
                }
            }
            return Json.ok(CompletionJson.response(job));
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

    /**
     * Streams on a virtual thread into a Jersey {@link ChunkedOutput}, which Jersey never buffers
     * and flushes chunk by chunk (a StreamingOutput's flush is a no-op until 8 KiB are written).
     * The HTTP thread returns at once.
     */
    Response startStream(CompletionStream stream) {
        ChunkedOutput<String> out = new ChunkedOutput<>(String.class);
        Thread.ofVirtual().name("completion-stream").start(() -> {
            try {
                stream.run(new SseWriter(out::write));
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

    /** {@code cmpl-} + the X-Request-Id header, else the body's request_id, else 32 random hex digits. */
    static String responseId(String header, String requestId) {
        String base = header != null && !header.isBlank() ? header
                : requestId != null && !requestId.isBlank() ? requestId
                : UUID.randomUUID().toString().replace("-", "");
        return "cmpl-" + base;
    }
}
