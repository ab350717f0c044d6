// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.rest;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A parsed, type-checked {@code POST /v1/chat/completions} body.
 *
 * @param messages            the conversation as the template sees it: maps of plain Java values,
 *                            content as a string (text parts joined) or null
 * @param chatTemplate        the request's template override, or null for the tokenizer's
 * @param templateVariables   tools, documents and chat_template_kwargs, merged in vLLM's order
 * @param echo                prepend the last message's content (chat echo, see {@link #echoText()})
 * @param completion          sampling, n, stop, streaming and the other fields shared with
 *                            completions; its prompts are empty until the template is rendered, and
 *                            its echo is off (completions' echo would repeat the whole prompt)
 */
record ChatRequest(List<Map<String, Object>> messages, boolean addGenerationPrompt, boolean continueFinalMessage,
                   String chatTemplate, Map<String, Object> templateVariables, boolean echo,
                   CompletionRequest completion) {

    ChatRequest {
        messages = List.copyOf(messages);
        // values may be null (a template kwarg set to None), which Map.copyOf refuses
        templateVariables = Collections.unmodifiableMap(new LinkedHashMap<>(templateVariables));
    }

    /** The role of the generated message: assistant, or the last message's role when continuing it. */
    String responseRole() {
        return addGenerationPrompt ? "assistant" : String.valueOf(messages.getLast().get("role"));
    }

    /** What {@code echo} prepends: the last message's content when it has the response role. */
    String echoText() {
        if (!echo) return null;
        Map<String, Object> last = messages.getLast();
        return responseRole().equals(last.get("role")) && last.get("content") instanceof String s ? s : "";
    }
}
