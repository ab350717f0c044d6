// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.model;

/**
 * What one token's KV cache entry looks like in a model, so that the engine can size the paged
 * cache from a memory budget. Storage is F32.
 *
 * @param numLayers              attention layers that cache KV
 * @param floatsPerTokenPerLayer floats one token takes in one layer: {@code 2 × numKvHeads × headDim}
 *                               for {@link #DENSE}; {@code kvLoraRank + qkRopeHeadDim} for {@link #MLA}
 * @param kind                   {@link #DENSE} or {@link #MLA}
 */
public record KvCacheLayout(int numLayers, int floatsPerTokenPerLayer, String kind) {

    /** Per-KV-head keys and values. */
    public static final String DENSE = "dense";
    /** DeepSeek multi-head latent attention: the compressed latent and the rope key. */
    public static final String MLA = "mla";

    public KvCacheLayout {
        if (numLayers < 1 || floatsPerTokenPerLayer < 1) {
            throw new IllegalArgumentException("layout must be positive: " + numLayers + " layers, " + floatsPerTokenPerLayer + " floats");
        }
        if (!DENSE.equals(kind) && !MLA.equals(kind)) throw new IllegalArgumentException("unknown KV layout kind " + kind);
    }

    /** Bytes one token takes over all layers. */
    public long bytesPerToken() {
        return (long) Float.BYTES * numLayers * floatsPerTokenPerLayer;
    }
}
