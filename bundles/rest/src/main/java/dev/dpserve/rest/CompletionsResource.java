// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.rest;

import dev.dpserve.api.engine.InferenceEngine;
import jakarta.ws.rs.HeaderParam;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.container.AsyncResponse;
import jakarta.ws.rs.container.Suspended;
import jakarta.ws.rs.core.Response;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ReferenceCardinality;
import org.osgi.service.component.annotations.ReferencePolicyOption;
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
    @Reference
    private InferenceEngine engine;

    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policyOption = ReferencePolicyOption.GREEDY)
    private ServingMetrics metrics;

    public CompletionsResource() {
    }

    CompletionsResource(InferenceEngine engine) { this.engine = engine; }

    CompletionsResource(InferenceEngine engine, ServingMetrics metrics) {
        this.engine = engine;
        this.metrics = metrics;
    }

    /** Suspends the request first: a stream then answers it from its own thread (see {@link CompletionStream#start}). */
    @POST
    public void create(String body, @HeaderParam("Content-Type") String contentType,
                       @HeaderParam("X-Request-Id") String requestIdHeader, @Suspended AsyncResponse response) {
        CompletionCalls.answer(response, create(body, contentType, requestIdHeader));
    }

    /** The answer; a stream is the not yet started entity of a 200 response (tests run it directly). */
    Response create(String body, String contentType, String requestIdHeader) {
        return CompletionCalls.run(() -> {
            Json.requireJsonContentType(contentType);
            CompletionRequest request = CompletionRequestParser.parse(body);
            ModelNames.require(request.model(), engine.model());
            String id = CompletionCalls.responseId("cmpl-", requestIdHeader, request.requestId());
            return new CompletionCalls.Prepared(CompletionJob.prepare(id, request, engine), CompletionJson.INSTANCE);
        }, metrics);
    }
}
