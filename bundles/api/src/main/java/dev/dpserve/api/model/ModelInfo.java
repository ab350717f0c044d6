// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.model;

/**
 * Facts about a loaded model.
 *
 * @param modelType             config.json model_type
 * @param vocabSize             rows of the output projection (logits length)
 * @param maxPositionEmbeddings the model's context limit from config.json
 * @param parameterCount        number of weight elements loaded
 * @param weightBytes           bytes of weights as stored (memory-mapped)
 * @param kvBytesPerToken       KV cache bytes one token takes over all layers
 */
public record ModelInfo(String modelType, String architecture, int vocabSize, int maxPositionEmbeddings,
                        int hiddenSize, int numLayers, long parameterCount, long weightBytes,
                        String weightDtype, long kvBytesPerToken) {
}
