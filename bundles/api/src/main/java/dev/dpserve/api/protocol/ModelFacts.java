// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.protocol;

import java.util.Objects;

/**
 * What an engine reports about the model it loaded, so the head can check that all ranks serve
 * the same model and validate requests before routing them.
 *
 * @param modelType   config.json {@code model_type}, e.g. "deepseek_v3"
 * @param maxModelLen prompt + output token limit
 * @param vocabSize   valid token ids are [0, vocabSize)
 * @param blockSize   KV cache block size in tokens
 * @param moe         true if the model has expert layers, i.e. DP ranks must step in lockstep
 */
public record ModelFacts(String modelType, int maxModelLen, int vocabSize, int blockSize, boolean moe) {
    public ModelFacts {
        Objects.requireNonNull(modelType, "modelType");
        if (maxModelLen < 1 || vocabSize < 1 || blockSize < 1) {
            throw new IllegalArgumentException("maxModelLen, vocabSize and blockSize must be >= 1");
        }
    }
}
