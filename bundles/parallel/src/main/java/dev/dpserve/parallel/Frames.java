// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.parallel;

import dev.dpserve.api.parallel.ReduceOp;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * The group's wire format: one frame per message, {@code [type byte][little-endian fields]}.
 * <pre>
 * HELLO   0x50 int rank, int size                  rank r → rank 0, repeated until WELCOME
 * WELCOME 0x51 int size                            rank 0 → r, once all ranks said HELLO
 * CALL    0x52 long seq, byte op, int n, n × long  r → rank 0
 * RESULT  0x53 long seq, int n, n × long           rank 0 → r
 * ABORT   0x54 UTF-8 reason (≤ 1024 bytes)         rank 0 → r: the call failed for everyone
 * </pre>
 * {@link #check} validates a frame's type and exact length before any field is read.
 */
final class Frames {
    private Frames() {}

    static final byte HELLO = 0x50;
    static final byte WELCOME = 0x51;
    static final byte CALL = 0x52;
    static final byte RESULT = 0x53;
    static final byte ABORT = 0x54;

    /** Most values in one collective. */
    static final int MAX_VALUES = 4096;
    static final int MAX_REASON_BYTES = 1024;
    static final int MAX_FRAME_BYTES = 1 + 8 + 1 + 4 + 8 * MAX_VALUES;

    private static ByteBuffer buf(int n) { return ByteBuffer.allocate(n).order(ByteOrder.LITTLE_ENDIAN); }

    private static ByteBuffer read(byte[] f) { return ByteBuffer.wrap(f).order(ByteOrder.LITTLE_ENDIAN).position(1); }

    static byte[] hello(int rank, int size) { return buf(9).put(HELLO).putInt(rank).putInt(size).array(); }

    static int helloRank(byte[] f) { return read(f).getInt(); }

    static int helloSize(byte[] f) { return read(f).getInt(5); }

    static byte[] welcome(int size) { return buf(5).put(WELCOME).putInt(size).array(); }

    static int welcomeSize(byte[] f) { return read(f).getInt(); }

    static byte[] call(long seq, ReduceOp op, long[] values) {
        ByteBuffer b = buf(14 + 8 * values.length).put(CALL).putLong(seq).put((byte) op.ordinal()).putInt(values.length);
        for (long v : values) b.putLong(v);
        return b.array();
    }

    static long callSeq(byte[] f) { return read(f).getLong(); }

    static ReduceOp callOp(byte[] f) { return ReduceOp.values()[f[9]]; }

    static long[] callValues(byte[] f) { return longs(f, 10); }

    static byte[] result(long seq, long[] values) {
        ByteBuffer b = buf(13 + 8 * values.length).put(RESULT).putLong(seq).putInt(values.length);
        for (long v : values) b.putLong(v);
        return b.array();
    }

    static long resultSeq(byte[] f) { return read(f).getLong(); }

    static long[] resultValues(byte[] f) { return longs(f, 9); }

    static byte[] abort(String reason) {
        byte[] text = reason.getBytes(StandardCharsets.UTF_8);
        int n = Math.min(text.length, MAX_REASON_BYTES);
        return buf(1 + n).put(ABORT).put(text, 0, n).array();
    }

    static String abortMessage(byte[] f) { return new String(f, 1, f.length - 1, StandardCharsets.UTF_8); }

    private static long[] longs(byte[] f, int countAt) {
        ByteBuffer b = ByteBuffer.wrap(f).order(ByteOrder.LITTLE_ENDIAN);
        int n = b.getInt(countAt);
        long[] out = new long[n];
        b.position(countAt + 4);
        for (int i = 0; i < n; i++) out[i] = b.getLong();
        return out;
    }

    /** Null if {@code f} is a well-formed frame, else what is wrong with it. */
    static String check(byte[] f) {
        if (f.length == 0) return "empty frame";
        if (f.length > MAX_FRAME_BYTES) return f.length + " bytes exceed " + MAX_FRAME_BYTES;
        ByteBuffer b = ByteBuffer.wrap(f).order(ByteOrder.LITTLE_ENDIAN);
        return switch (f[0]) {
            case HELLO -> f.length == 9 ? null : "HELLO of " + f.length + " bytes";
            case WELCOME -> f.length == 5 ? null : "WELCOME of " + f.length + " bytes";
            case CALL -> {
                if (f.length < 14) yield "CALL of " + f.length + " bytes";
                if (f[9] < 0 || f[9] >= ReduceOp.values().length) yield "unknown reduce op " + f[9];
                int n = b.getInt(10);
                yield n >= 0 && n <= MAX_VALUES && f.length == 14 + 8L * n ? null : "CALL with count " + n + " in " + f.length + " bytes";
            }
            case RESULT -> {
                if (f.length < 13) yield "RESULT of " + f.length + " bytes";
                int n = b.getInt(9);
                yield n >= 0 && n <= MAX_VALUES && f.length == 13 + 8L * n ? null : "RESULT with count " + n + " in " + f.length + " bytes";
            }
            case ABORT -> f.length <= 1 + MAX_REASON_BYTES ? null : "ABORT of " + f.length + " bytes";
            default -> "unknown frame type " + f[0];
        };
    }

    /** The rank of a 2-byte little-endian identity, or -1. */
    static int rankOf(byte[] identity) {
        if (identity == null || identity.length != 2) return -1;
        return (identity[0] & 0xff) | (identity[1] & 0xff) << 8;
    }
}
