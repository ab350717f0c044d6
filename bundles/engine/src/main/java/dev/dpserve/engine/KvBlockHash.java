// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.engine;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HexFormat;

/**
 * The identity of a full KV block's contents: SHA-256 over a canonical encoding of
 * {@code parent hash ‖ the block's token ids (int32 little-endian) ‖ extra keys}. The chain starts
 * at a fixed root, so equal prefixes hash equally in every process and across restarts.
 */
final class KvBlockHash {

    /** The parent of a request's first block. */
    static final KvBlockHash ROOT = new KvBlockHash(sha256("dpserve.kv.block-hash.v1".getBytes(StandardCharsets.US_ASCII)));

    private final byte[] digest; // 32 bytes
    private final int hashCode;

    private KvBlockHash(byte[] digest) {
        this.digest = digest;
        this.hashCode = Arrays.hashCode(digest);
    }

    /**
     * The hash of the block holding {@code tokens[from, from + blockSize)} after {@code parent}.
     * {@code extraKeys} (may be empty) distinguishes equal tokens with different meaning, e.g. a
     * LoRA adapter or a cache salt; it is length-prefixed so that no two encodings collide.
     */
    static KvBlockHash of(KvBlockHash parent, int[] tokens, int from, int blockSize, byte[] extraKeys) {
        ByteBuffer b = ByteBuffer.allocate(parent.digest.length + 4 * blockSize + 4 + extraKeys.length)
                .order(ByteOrder.LITTLE_ENDIAN);
        b.put(parent.digest);
        for (int i = 0; i < blockSize; i++) b.putInt(tokens[from + i]);
        b.putInt(extraKeys.length);
        b.put(extraKeys);
        return new KvBlockHash(sha256(b.array()));
    }

    private static byte[] sha256(byte[] data) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(data);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every Java platform has SHA-256", e);
        }
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof KvBlockHash other && hashCode == other.hashCode && Arrays.equals(digest, other.digest);
    }

    @Override
    public int hashCode() {
        return hashCode;
    }

    @Override
    public String toString() {
        return HexFormat.of().formatHex(digest, 0, 8);
    }
}
