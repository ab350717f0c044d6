// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.rest;

import dev.dpserve.api.engine.InferenceEngine;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.core.Response;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ReferenceCardinality;
import org.osgi.service.component.annotations.ReferencePolicy;
import org.osgi.service.component.annotations.ServiceScope;
import org.osgi.service.jakartars.whiteboard.propertytypes.JakartarsName;
import org.osgi.service.jakartars.whiteboard.propertytypes.JakartarsResource;

/**
 * {@code GET /health}, {@code GET|POST /ping} and {@code GET /version}. Unlike the other resources
 * the engine is optional here, so a load balancer sees 503 (not 404) while the engine is absent.
 */
@Component(service = HealthResource.class, scope = ServiceScope.PROTOTYPE)
@JakartarsResource
@JakartarsName("health")
@Path("/")
public class HealthResource {
    static final String VERSION = "0.1.0";

    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC)
    private volatile InferenceEngine engine;

    public HealthResource() {
    }

    HealthResource(InferenceEngine engine) { this.engine = engine; }

    @GET
    @Path("health")
    public Response health() {
        InferenceEngine e = engine;
        if (e == null) return OpenAiError.unavailable("no inference engine is registered").toResponse();
        try {
            String reason = e.unhealthyReason();
            return reason == null ? Response.ok().build() : OpenAiError.unavailable(reason).toResponse();
        } catch (RuntimeException ex) {
            return OpenAiError.unavailable(String.valueOf(ex.getMessage())).toResponse();
        }
    }

    @GET
    @Path("ping")
    public Response getPing() { return health(); }

    @POST
    @Path("ping")
    public Response postPing() { return health(); }

    @GET
    @Path("version")
    public Response version() {
        return Json.ok(Json.object().put("version", VERSION));
    }
}
