// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.rest;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dpserve.api.engine.EngineUnavailableException;
import dev.dpserve.api.engine.InvalidRequestException;
import jakarta.ws.rs.core.MediaType;
import jakarta.ws.rs.core.Response;

/**
 * An error in OpenAI's shape (vLLM 0.10.1+): {@code {"error":{"message","type","param","code"}}}.
 * Thrown anywhere in request handling and turned into a response (or an SSE event) at the edge.
 */
final class OpenAiError extends RuntimeException {
    private static final long serialVersionUID = 1L;

    static final String BAD_REQUEST = "BadRequestError";
    static final String NOT_FOUND = "NotFoundError";
    static final String UNAVAILABLE = "ServiceUnavailableError";
    static final String INTERNAL = "InternalServerError";

    private final int status;
    private final String type;
    private final String param;

    OpenAiError(int status, String type, String message, String param) {
        super(message, null, false, false);
        this.status = status;
        this.type = type;
        this.param = param;
    }

    static OpenAiError badRequest(String message, String param) {
        return new OpenAiError(400, BAD_REQUEST, message, param);
    }

    static OpenAiError notFound(String message, String param) {
        return new OpenAiError(404, NOT_FOUND, message, param);
    }

    static OpenAiError unavailable(String message) {
        return new OpenAiError(503, UNAVAILABLE, message, null);
    }

    static OpenAiError internal(String message) {
        return new OpenAiError(500, INTERNAL, message, null);
    }

    /** Maps engine exceptions to their HTTP meaning; anything unexpected becomes a 500. */
    static OpenAiError from(Throwable t) {
        return switch (t) {
            case OpenAiError e -> e;
            case InvalidRequestException e -> badRequest(e.getMessage(), e.param());
            case EngineUnavailableException e -> unavailable(e.getMessage());
            default -> internal(t.getClass().getSimpleName() + (t.getMessage() == null ? "" : ": " + t.getMessage()));
        };
    }

    int status() { return status; }

    String type() { return type; }

    String param() { return param; }

    ObjectNode toJsonNode() {
        ObjectNode error = Json.object();
        error.put("message", getMessage());
        error.put("type", type);
        error.put("param", param);
        error.put("code", status);
        ObjectNode root = Json.object();
        root.set("error", error);
        return root;
    }

    String toJson() { return Json.write(toJsonNode()); }

    Response toResponse() {
        return Response.status(status).type(MediaType.APPLICATION_JSON_TYPE).entity(toJson()).build();
    }
}
