// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.tokenizer;

import java.util.List;
import java.util.Map;
import org.osgi.annotation.versioning.ConsumerType;

/**
 * Renders a Hugging Face chat template (Jinja) into a prompt string, with the variables
 * transformers' {@code apply_chat_template} provides. Registered as a DS service; thread-safe.
 */
@ConsumerType
public interface ChatTemplateRenderer {

    /**
     * @param template            the Jinja source (e.g. {@link Tokenizer#chatTemplate()})
     * @param messages            the conversation: maps with "role", "content" (String, or a list of
     *                            parts) and optional "tool_calls", "name", ... as sent by the client
     * @param addGenerationPrompt transformers' add_generation_prompt
     * @param variables           further template variables: bos_token, eos_token, tools,
     *                            chat_template_kwargs entries, ...
     * @throws IllegalArgumentException with the template's message when rendering fails
     *                                  (syntax error, raise_exception(...), bad messages)
     */
    String render(String template, List<Map<String, Object>> messages, boolean addGenerationPrompt,
                  Map<String, Object> variables);
}
