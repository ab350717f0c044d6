// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model.safetensors;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.dpserve.api.tensor.DType;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Writes a safetensors file from tensors whose values are produced on the fly (so multi-GB files
 * need no heap copy). Tensors are written in the given order; the header is padded with spaces to
 * a multiple of 8 bytes so that data offsets stay aligned. The output is a pure function of the
 * inputs (byte-identical for equal inputs).
 */
public final class SafetensorsWriter {

    /** Produces a tensor's values in row-major order, chunk by chunk. */
    @FunctionalInterface
    public interface Values {
        /** Fills {@code chunk[0, count)} with the next values. */
        void next(float[] chunk, int count);
    }

    /** One tensor to write: values are converted to {@code dtype} (BF16 rounds to nearest even). */
    public record Entry(String name, DType dtype, long[] shape, Values values) {
        public Entry {
            if (dtype != DType.F32 && dtype != DType.BF16 && dtype != DType.F16) {
                throw new IllegalArgumentException("can only write float tensors, not " + dtype);
            }
            shape = shape.clone();
        }

        public long numel() {
            long n = 1;
            for (long d : shape) n *= d;
            return n;
        }

        public long byteSize() {
            return numel() * dtype.byteSize();
        }
    }

    private SafetensorsWriter() {
    }

    public static void write(Path file, List<Entry> entries, Map<String, String> metadata) throws IOException {
        Map<String, Object> header = new LinkedHashMap<>();
        if (!metadata.isEmpty()) header.put("__metadata__", new TreeMap<>(metadata));
        long offset = 0;
        for (Entry e : entries) {
            Map<String, Object> info = new LinkedHashMap<>();
            info.put("dtype", e.dtype().safetensorsName());
            info.put("shape", e.shape());
            info.put("data_offsets", new long[] {offset, offset + e.byteSize()});
            if (header.put(e.name(), info) != null) throw new IllegalArgumentException("duplicate tensor " + e.name());
            offset += e.byteSize();
        }
        byte[] json = new ObjectMapper().writeValueAsString(header).getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) / 8 * 8;
        ByteBuffer buf = ByteBuffer.allocateDirect(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            ByteBuffer head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
            head.putLong(padded).put(json);
            while (head.hasRemaining()) head.put((byte) ' ');
            head.flip();
            writeFully(ch, head);
            float[] chunk = new float[buf.capacity() / 4];
            for (Entry e : entries) {
                long left = e.numel();
                while (left > 0) {
                    int count = (int) Math.min(left, chunk.length);
                    e.values().next(chunk, count);
                    for (int i = 0; i < count; i++) {
                        switch (e.dtype()) {
                            case F32 -> buf.putFloat(chunk[i]);
                            case BF16 -> buf.putShort(Tensors.toBf16(chunk[i]));
                            default -> buf.putShort(Float.floatToFloat16(chunk[i]));
                        }
                        if (!buf.hasRemaining()) {
                            buf.flip();
                            writeFully(ch, buf);
                            buf.clear();
                        }
                    }
                    left -= count;
                }
            }
            buf.flip();
            writeFully(ch, buf);
        }
    }

    private static void writeFully(FileChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) ch.write(b);
    }
}
