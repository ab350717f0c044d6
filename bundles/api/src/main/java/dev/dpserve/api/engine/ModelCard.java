// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.engine;

/**
 * @param servedName  the name clients pass as {@code model}
 * @param root        the model directory
 * @param maxModelLen prompt + output token limit
 * @param vocabSize   valid token ids are [0, vocabSize)
 */
public record ModelCard(String servedName, String root, int maxModelLen, int vocabSize, String modelType,
                        long createdEpochSeconds) {
}
