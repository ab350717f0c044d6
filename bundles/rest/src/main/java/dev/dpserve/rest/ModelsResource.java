// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.rest;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dpserve.api.engine.InferenceEngine;
import dev.dpserve.api.engine.ModelCard;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.core.Response;
import java.util.UUID;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ServiceScope;
import org.osgi.service.jakartars.whiteboard.propertytypes.JakartarsName;
import org.osgi.service.jakartars.whiteboard.propertytypes.JakartarsResource;

/** {@code GET /v1/models}: the served model as vLLM lists it (owned_by "vllm", kept for client compatibility). */
@Component(service = ModelsResource.class, scope = ServiceScope.PROTOTYPE)
@JakartarsResource
@JakartarsName("models")
@Path("/v1/models")
public class ModelsResource {
    @Reference
    private InferenceEngine engine;

    public ModelsResource() {
    }

    ModelsResource(InferenceEngine engine) { this.engine = engine; }

    @GET
    public Response list() {
        try {
            ModelCard card = engine.model();
            ObjectNode permission = Json.object();
            permission.put("id", "modelperm-" + UUID.randomUUID().toString().replace("-", ""));
            permission.put("object", "model_permission");
            permission.put("created", card.createdEpochSeconds());
            permission.put("allow_create_engine", false);
            permission.put("allow_sampling", true);
            permission.put("allow_logprobs", true);
            permission.put("allow_search_indices", false);
            permission.put("allow_view", true);
            permission.put("allow_fine_tuning", false);
            permission.put("organization", "*");
            permission.putNull("group");
            permission.put("is_blocking", false);

            ObjectNode model = Json.object();
            model.put("id", card.servedName());
            model.put("object", "model");
            model.put("created", card.createdEpochSeconds());
            model.put("owned_by", "vllm");
            model.put("root", card.root());
            model.putNull("parent");
            model.put("max_model_len", card.maxModelLen());
            model.set("permission", Json.array().add(permission));

            ObjectNode root = Json.object();
            root.put("object", "list");
            root.set("data", Json.array().add(model));
            return Json.ok(root);
        } catch (RuntimeException e) {
            return OpenAiError.from(e).toResponse();
        }
    }
}
