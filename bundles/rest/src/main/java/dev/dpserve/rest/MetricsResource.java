// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.rest;

import jakarta.ws.rs.GET;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.core.Response;
import java.io.IOException;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ServiceScope;
import org.osgi.service.jakartars.whiteboard.propertytypes.JakartarsName;
import org.osgi.service.jakartars.whiteboard.propertytypes.JakartarsResource;

/** {@code GET /metrics}: Prometheus text format, as vLLM serves it. */
@Component(service = MetricsResource.class, scope = ServiceScope.PROTOTYPE)
@JakartarsResource
@JakartarsName("metrics")
@Path("/metrics")
public class MetricsResource {

    static final String CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

    @Reference
    private ServingMetrics metrics;

    public MetricsResource() {
    }

    MetricsResource(ServingMetrics metrics) { this.metrics = metrics; }

    @GET
    public Response get() throws IOException {
        return Response.ok(metrics.scrape(), CONTENT_TYPE).build();
    }
}
