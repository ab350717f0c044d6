// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.rest;

import dev.dpserve.api.engine.ModelCard;

/** The {@code model} field: absent or empty means the served model; else the served name or the model path. */
final class ModelNames {
    private ModelNames() {
    }

    static void require(String requested, ModelCard card) {
        if (requested == null || requested.isEmpty()) return;
        if (requested.equals(card.servedName()) || requested.equals(card.root())) return;
        throw OpenAiError.notFound("The model `" + requested + "` does not exist.", "model");
    }
}
