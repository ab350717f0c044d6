// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.tensor;

/**
 * One sequence's causal attention over a paged KV cache, in a form that covers both cache layouts
 * the models use. The new tokens sit at positions {@code [startPosition, startPosition + numTokens)};
 * the cache already holds positions {@code [0, startPosition + numTokens)} (the new tokens' K/V
 * are written before the call). Token t attends to positions {@code [max(0, p - window + 1), p]}
 * where {@code p = startPosition + t} (window 0 = unlimited).
 *
 * <p>Cache addressing: position p of this layer lives in {@code blocks[blockTable[p / blockSize]]}
 * starting at {@code layerOffset + (p % blockSize) * slotStride}; from there the K of KV head h
 * starts at {@code kOffset + h * kHeadStride} ({@code kDim} floats) and its V at
 * {@code vOffset + h * vHeadStride} ({@code vDim} floats).
 * <ul>
 *   <li>Dense (GQA): {@code kDim = vDim = headDim}, K at 0, V at {@code numKvHeads·headDim},
 *       head strides {@code headDim}.</li>
 *   <li>MLA absorbed: one KV head, K = [latent, rope key] ({@code kDim = kvLoraRank + ropeDim}),
 *       V = the latent ({@code vOffset = 0, vDim = kvLoraRank}): V is a prefix of K.</li>
 * </ul>
 * Query head i uses KV head {@code i / (numHeads / numKvHeads)}. Scores are
 * {@code scale · q·k}, softmax in F32, output {@code Σ p·v}.
 *
 * @param q            queries: token t, head i at {@code qOff + t·qTokenStride + i·qHeadStride}, kDim floats
 * @param out          outputs: token t, head i at {@code outOff + t·outTokenStride + i·outHeadStride}, vDim floats
 */
public record PagedAttention(
        float[] q, int qOff, int qTokenStride, int qHeadStride,
        int numTokens, int numHeads, int numKvHeads, int kDim, int vDim,
        float[][] blocks, int[] blockTable, int blockSize, int layerOffset, int slotStride,
        int kOffset, int kHeadStride, int vOffset, int vHeadStride,
        int startPosition, int window, float scale,
        float[] out, int outOff, int outTokenStride, int outHeadStride) {

    public PagedAttention {
        if (numTokens < 1 || numHeads < 1 || numKvHeads < 1 || numHeads % numKvHeads != 0) {
            throw new IllegalArgumentException("attention of " + numTokens + " tokens, " + numHeads + " heads over "
                    + numKvHeads + " KV heads");
        }
        if (kDim < 1 || vDim < 1 || blockSize < 1 || startPosition < 0 || window < 0) {
            throw new IllegalArgumentException("attention with kDim " + kDim + ", vDim " + vDim + ", block size "
                    + blockSize + ", start " + startPosition + ", window " + window);
        }
        if ((long) blockTable.length * blockSize < (long) startPosition + numTokens) {
            throw new IllegalArgumentException("a block table of " + blockTable.length + " blocks cannot hold "
                    + (startPosition + numTokens) + " positions");
        }
    }

    /** Number of positions the last token sees (the cache length). */
    public int contextLength() {
        return startPosition + numTokens;
    }
}
