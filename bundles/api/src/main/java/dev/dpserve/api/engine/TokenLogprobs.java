// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.engine;

/**
 * Log-probabilities (natural log, of the unmodified softmax over logits) for one generated token.
 *
 * @param topIds      the {@code k} most likely ids, most likely first
 * @param topLogprobs their logprobs
 */
public record TokenLogprobs(int tokenId, float logprob, int rank, int[] topIds, float[] topLogprobs) {
}
