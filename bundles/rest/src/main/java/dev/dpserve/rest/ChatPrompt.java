// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.rest;

import dev.dpserve.api.tokenizer.ChatTemplateRenderer;
import dev.dpserve.api.tokenizer.Tokenizer;
import java.util.HashMap;
import java.util.Map;

/**
 * A chat request's conversation rendered to prompt text, as transformers' apply_chat_template
 * does it: the request's template or the tokenizer's, with bos_token and eos_token, the request's
 * template variables, and continue_final_message. Template failures are the client's: 400.
 */
final class ChatPrompt {
    static final String NO_TEMPLATE = "As of transformers v4.44, default chat template is no longer allowed, so you "
            + "must provide a chat template if the tokenizer does not define one.";

    private ChatPrompt() {
    }

    static String render(ChatRequest request, Tokenizer tokenizer, ChatTemplateRenderer renderer) {
        String template = request.chatTemplate() != null ? request.chatTemplate()
                : tokenizer.chatTemplate().orElseThrow(() -> OpenAiError.badRequest(NO_TEMPLATE, null));
        Map<String, Object> variables = new HashMap<>();
        tokenizer.bosTokenId().ifPresent(id -> variables.put("bos_token", tokenizer.idToToken(id)));
        tokenizer.eosTokenId().ifPresent(id -> variables.put("eos_token", tokenizer.idToToken(id)));
        variables.putAll(request.templateVariables());
        String text;
        try {
            text = renderer.render(template, request.messages(), request.addGenerationPrompt(), variables);
        } catch (IllegalArgumentException e) {
            throw OpenAiError.badRequest(e.getMessage(), null);
        }
        return request.continueFinalMessage() ? continueFinal(text, request.messages().getLast()) : text;
    }

    /**
     * Cuts the rendered chat right after the final message's text, dropping the end-of-turn markup
     * the template put after it, so the model continues that message. A template may have
     * trimmed the message, so its text is looked up stripped; trailing whitespace is kept only
     * when the template kept it.
     */
    static String continueFinal(String rendered, Map<String, Object> finalMessage) {
        if (!(finalMessage.get("content") instanceof String text) || text.isEmpty()) {
            throw OpenAiError.badRequest("continue_final_message is set but the final message has no text to "
                    + "continue", "continue_final_message");
        }
        String core = text.strip();
        int at = rendered.lastIndexOf(core);
        if (at < 0) {
            throw OpenAiError.badRequest("continue_final_message is set but the chat template does not render the "
                    + "final message's text, so it cannot be continued", "continue_final_message");
        }
        boolean keptAsSent = text.equals(text.stripLeading()) && rendered.startsWith(text, at);
        return rendered.substring(0, at + (keptAsSent ? text.length() : core.length()));
    }
}
