// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.rest;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.dpserve.api.engine.InferenceEngine;
import dev.dpserve.api.tokenizer.Tokenizer;
import jakarta.ws.rs.HeaderParam;
import jakarta.ws.rs.POST;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.core.Response;
import java.util.List;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ServiceScope;
import org.osgi.service.jakartars.whiteboard.propertytypes.JakartarsName;
import org.osgi.service.jakartars.whiteboard.propertytypes.JakartarsResource;

/** vLLM's {@code POST /tokenize} (completion form only) and {@code POST /detokenize}. */
@Component(service = TokenizeResource.class, scope = ServiceScope.PROTOTYPE)
@JakartarsResource
@JakartarsName("tokenize")
@Path("/")
public class TokenizeResource {
    @Reference
    private InferenceEngine engine;

    public TokenizeResource() {
    }

    TokenizeResource(InferenceEngine engine) { this.engine = engine; }

    /** {@code {model?, prompt, add_special_tokens=true, return_token_strs=false}}. */
    @POST
    @Path("tokenize")
    public Response tokenize(String body, @HeaderParam("Content-Type") String contentType) {
        try {
            Json.requireJsonContentType(contentType);
            RequestFields f = RequestFields.parse(body);
            ModelNames.require(f.string("model", null), engine.model());
            if (f.has("messages")) {
                throw OpenAiError.badRequest("messages is not supported by /tokenize yet; send prompt",
                        "messages");
            }
            if (!f.has("prompt")) throw OpenAiError.badRequest("Field required: prompt", "prompt");
            String prompt = f.string("prompt", null);
            boolean addSpecial = f.bool("add_special_tokens", true);
            boolean returnStrs = f.bool("return_token_strs", false);
            Tokenizer tokenizer = engine.tokenizer();
            int[] ids = tokenizer.encode(prompt, addSpecial);

            ObjectNode out = Json.object();
            out.put("count", ids.length);
            out.put("max_model_len", engine.model().maxModelLen());
            ArrayNode tokens = out.putArray("tokens");
            for (int id : ids) tokens.add(id);
            if (returnStrs) {
                ArrayNode strs = out.putArray("token_strs");
                for (int id : ids) strs.add(tokenizer.idToToken(id));
            } else {
                out.putNull("token_strs");
            }
            return Json.ok(out);
        } catch (RuntimeException e) {
            return OpenAiError.from(e).toResponse();
        }
    }

    /** {@code {model?, tokens:[ids]}} to {@code {"prompt": text}}. */
    @POST
    @Path("detokenize")
    public Response detokenize(String body, @HeaderParam("Content-Type") String contentType) {
        try {
            Json.requireJsonContentType(contentType);
            RequestFields f = RequestFields.parse(body);
            ModelNames.require(f.string("model", null), engine.model());
            List<Integer> tokens = f.integerList("tokens");
            if (tokens == null) throw OpenAiError.badRequest("Field required: tokens", "tokens");
            Tokenizer tokenizer = engine.tokenizer();
            int vocab = Math.min(engine.model().vocabSize(), tokenizer.vocabSize());
            int[] ids = new int[tokens.size()];
            for (int i = 0; i < ids.length; i++) {
                ids[i] = tokens.get(i);
                if (ids[i] < 0 || ids[i] >= vocab) {
                    throw OpenAiError.badRequest("Token id " + ids[i] + " is out of vocabulary", "tokens");
                }
            }
            return Json.ok(Json.object().put("prompt", tokenizer.decode(ids, false)));
        } catch (RuntimeException e) {
            return OpenAiError.from(e).toResponse();
        }
    }
}
