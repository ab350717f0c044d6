// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.engine;

/** Why a request ended; {@link #openAi()} is the API's finish_reason string. */
public enum FinishReason {
    STOP("stop"), LENGTH("length"), ABORT("abort");

    private final String openAi;

    FinishReason(String openAi) { this.openAi = openAi; }

    public String openAi() { return openAi; }
}
