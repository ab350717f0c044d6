// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.rest;

import dev.dpserve.api.engine.InferenceEngine;
import dev.dpserve.api.tokenizer.ChatTemplateRenderer;
import jakarta.ws.rs.HeaderParam;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.container.AsyncResponse;
import jakarta.ws.rs.container.Suspended;
import jakarta.ws.rs.core.Response;
import java.util.List;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ReferenceCardinality;
import org.osgi.service.component.annotations.ReferencePolicyOption;
import org.osgi.service.component.annotations.ServiceScope;
import org.osgi.service.jakartars.whiteboard.propertytypes.JakartarsName;
import org.osgi.service.jakartars.whiteboard.propertytypes.JakartarsResource;

/**
 * {@code POST /v1/chat/completions}: vLLM's OpenAI-compatible chat, plain JSON or SSE. The
 * conversation is rendered with the model's Hugging Face chat template (or the request's) and
 * tokenized without special tokens by default, since the template writes them; from there it
 * runs exactly like a one-prompt completion (see {@link CompletionCalls}), with chat's length
 * rule and chat's JSON shapes.
 */
@Component(service = ChatCompletionsResource.class, scope = ServiceScope.PROTOTYPE)
@JakartarsResource
@JakartarsName("chat-completions")
@Path("/v1/chat/completions")
public class ChatCompletionsResource {
    @Reference
    private InferenceEngine engine;

    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policyOption = ReferencePolicyOption.GREEDY)
    private ServingMetrics metrics;

    @Reference
    private ChatTemplateRenderer renderer;

    public ChatCompletionsResource() {
    }

    ChatCompletionsResource(InferenceEngine engine, ChatTemplateRenderer renderer) {
        this.engine = engine;
        this.renderer = renderer;
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
            ChatRequest request = ChatRequestParser.parse(body);
            ModelNames.require(request.completion().model(), engine.model());
            String prompt = ChatPrompt.render(request, engine.tokenizer(), renderer);
            String id = CompletionCalls.responseId("chatcmpl-", requestIdHeader, request.completion().requestId());
            CompletionJob job = CompletionJob.prepare(id, request.completion().withPrompts(List.of(Prompt.ofText(prompt))),
                    engine, CompletionJob.LengthRule.CHAT);
            return new CompletionCalls.Prepared(job, new ChatCompletionJson(request.responseRole(), request.echoText()));
        }, metrics);
    }
}
