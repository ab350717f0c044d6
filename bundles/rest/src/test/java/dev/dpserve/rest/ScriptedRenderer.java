// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.rest;

import dev.dpserve.api.tokenizer.ChatTemplateRenderer;
import java.util.List;
import java.util.Map;

/**
 * A test renderer with a fixed format whatever the template says: {@code <|role|>content<|end|>}
 * per message, then {@code <|assistant|>} with the generation prompt. A template starting with
 * {@code raise:} fails with the rest as message. Records the last call.
 */
final class ScriptedRenderer implements ChatTemplateRenderer {
    static final String TEMPLATE = "{# scripted #}";

    volatile String template;
    volatile List<Map<String, Object>> messages;
    volatile boolean addGenerationPrompt;
    volatile Map<String, Object> variables;

    @Override
    public String render(String template, List<Map<String, Object>> messages, boolean addGenerationPrompt,
                         Map<String, Object> variables) {
        this.template = template;
        this.messages = messages;
        this.addGenerationPrompt = addGenerationPrompt;
        this.variables = variables;
        if (template.startsWith("raise:")) throw new IllegalArgumentException(template.substring("raise:".length()));
        StringBuilder out = new StringBuilder();
        for (Map<String, Object> m : messages) {
            out.append("<|").append(m.get("role")).append("|>").append(m.get("content")).append("<|end|>");
        }
        if (addGenerationPrompt) out.append("<|assistant|>");
        return out.toString();
    }
}
