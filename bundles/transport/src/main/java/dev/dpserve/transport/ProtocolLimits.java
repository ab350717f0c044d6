// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.transport;

/**
 * Upper bounds that every decoded frame must respect. Frame limits are also installed as
 * ZeroMQ's max message size on receiving sockets, so an oversized frame is dropped before it is
 * buffered whole (the sender's connection is closed).
 *
 * @param maxControlFrameBytes handshake, abort, utility, wave and coordinator frames
 * @param maxRequestFrameBytes ADD frames (a prompt of {@code maxSequenceTokens} ids must fit)
 * @param maxOutputFrameBytes  output batches
 * @param maxSequenceTokens    token ids in one prompt or one delta; set it to max_model_len
 * @param maxBatchEntries      request deltas per batch, ids per abort, finished ids per batch
 * @param maxIdChars           a request id, method name or address
 * @param maxTextChars         any other string (error messages, utility results)
 * @param maxTopLogprobs       alternatives per token
 * @param maxRanks             DP ranks, addresses and front ends
 */
public record ProtocolLimits(int maxControlFrameBytes, int maxRequestFrameBytes, int maxOutputFrameBytes,
                             int maxSequenceTokens, int maxBatchEntries, int maxIdChars, int maxTextChars,
                             int maxTopLogprobs, int maxRanks) {

    private static final int MIB = 1 << 20;

    public ProtocolLimits {
        if (maxControlFrameBytes < 1024 || maxRequestFrameBytes < 1024 || maxOutputFrameBytes < 1024) {
            throw new IllegalArgumentException("frame limits must be at least 1 KiB");
        }
        if (maxSequenceTokens < 1 || maxBatchEntries < 1 || maxIdChars < 16 || maxTextChars < maxIdChars
                || maxTopLogprobs < 0 || maxRanks < 1) {
            throw new IllegalArgumentException("collection and string limits out of range");
        }
    }

    /**
     * 1 MiB control, 16 MiB requests, 64 MiB outputs, 1 Mi tokens per sequence; replace the
     * sequence bound with the model's max_model_len once it is known.
     */
    public static ProtocolLimits defaults() {
        return new ProtocolLimits(MIB, 16 * MIB, 64 * MIB, MIB, 65_536, 1024, 256 * 1024, 1024, 4096);
    }

    public ProtocolLimits withMaxSequenceTokens(int tokens) {
        return new ProtocolLimits(maxControlFrameBytes, maxRequestFrameBytes, maxOutputFrameBytes, tokens,
                maxBatchEntries, maxIdChars, maxTextChars, maxTopLogprobs, maxRanks);
    }

    public ProtocolLimits withFrameBytes(int control, int request, int output) {
        return new ProtocolLimits(control, request, output, maxSequenceTokens, maxBatchEntries, maxIdChars,
                maxTextChars, maxTopLogprobs, maxRanks);
    }

    /** The largest frame any link may carry. */
    public int maxFrameBytes() { return Math.max(maxControlFrameBytes, Math.max(maxRequestFrameBytes, maxOutputFrameBytes)); }
}
