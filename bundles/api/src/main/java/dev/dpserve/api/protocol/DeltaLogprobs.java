// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.protocol;

import dev.dpserve.api.engine.TokenLogprobs;

import java.util.Arrays;
import java.util.Objects;

/** The wire form of {@link TokenLogprobs}: one generated token's logprob and the top alternatives. */
public record DeltaLogprobs(int tokenId, float logprob, int rank, int[] topIds, float[] topLogprobs) {
    public DeltaLogprobs {
        if (topIds.length != topLogprobs.length) {
            throw new IllegalArgumentException("topIds and topLogprobs differ in length: " + topIds.length + " vs " + topLogprobs.length);
        }
        topIds = topIds.clone();
        topLogprobs = topLogprobs.clone();
    }

    public static DeltaLogprobs of(TokenLogprobs t) {
        return new DeltaLogprobs(t.tokenId(), t.logprob(), t.rank(), t.topIds(), t.topLogprobs());
    }

    public TokenLogprobs toTokenLogprobs() { return new TokenLogprobs(tokenId, logprob, rank, topIds.clone(), topLogprobs.clone()); }

    @Override
    public int[] topIds() { return topIds.clone(); }

    @Override
    public float[] topLogprobs() { return topLogprobs.clone(); }

    @Override
    public boolean equals(Object o) {
        return o instanceof DeltaLogprobs d && tokenId == d.tokenId && Float.compare(logprob, d.logprob) == 0
                && rank == d.rank && Arrays.equals(topIds, d.topIds) && Arrays.equals(topLogprobs, d.topLogprobs);
    }

    @Override
    public int hashCode() { return Objects.hash(tokenId, logprob, rank, Arrays.hashCode(topIds), Arrays.hashCode(topLogprobs)); }

    @Override
    public String toString() {
        return "DeltaLogprobs[" + tokenId + ", " + logprob + ", rank " + rank + ", top " + Arrays.toString(topIds) + "]";
    }
}
