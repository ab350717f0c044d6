// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model.safetensors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dpserve.api.tensor.DType;
import dev.dpserve.api.tensor.Tensor;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsFileTest {

    @TempDir
    Path tmp;

    @Test
    void writesAndMapsAllFloatDtypes() throws IOException {
        Path file = tmp.resolve("t.safetensors");
        SafetensorsWriter.write(file, List.of(
                new SafetensorsWriter.Entry("a", DType.F32, new long[] {2, 3}, counting(0.5f)),
                new SafetensorsWriter.Entry("b", DType.BF16, new long[] {3}, counting(1f)),
                new SafetensorsWriter.Entry("c", DType.F16, new long[] {1, 2}, counting(-2f))), Map.of("format", "pt"));
        try (Arena arena = Arena.ofConfined()) {
            SafetensorsFile f = SafetensorsFile.open(file, arena);
            assertEquals(Map.of("format", "pt"), f.metadata());
            Tensor a = f.tensors().get("a");
            assertEquals(DType.F32, a.dtype());
            assertEquals(6, a.numel());
            assertEquals(2.5f, Tensors.get(a, 5));
            float[] row = new float[3];
            Tensors.readRow(a, 1, row, 0);
            assertEquals(1.5f, row[0]);
            assertEquals(2f, Tensors.get(f.tensors().get("b"), 2));
            assertEquals(-2f, Tensors.get(f.tensors().get("c"), 1));
            Tensor bf = Tensors.convert(a, DType.BF16, arena);
            assertEquals(2.5f, Tensors.get(bf, 5));
        }
    }

    @Test
    void rejectsBadHeaders() throws IOException {
        assertRejected(raw(1L << 40, "{}"), "header length");
        assertRejected(raw(-1, "{}"), "header length");
        assertRejected(raw(0, ""), "header length");
        assertRejected(raw(-2, "not json"), "not valid JSON");
        assertRejected(raw(-2, "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}"), "outside the data");
        assertRejected(raw(-2, "{\"x\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,0]}}"), "F64");
        assertRejected(raw(-2, "{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,0]}}"), "bytes for shape");
        assertRejected(raw(-2, "{\"x\":{\"dtype\":\"F32\",\"shape\":[1]}}"), "data_offsets");
        Path tiny = tmp.resolve("tiny.safetensors");
        Files.write(tiny, new byte[3]);
        IOException e = assertThrows(IOException.class, () -> SafetensorsFile.open(tiny, Arena.ofAuto()));
        assertTrue(e.getMessage().contains("not a safetensors file"), e.getMessage());
    }

    @Test
    void checkpointNeedsWeights() {
        IOException e = assertThrows(IOException.class, () -> SafetensorsCheckpoint.open(tmp));
        assertTrue(e.getMessage().contains("no model.safetensors"), e.getMessage());
    }

    /** A file with the given header length field (-2 = the real length) and header text. */
    private Path raw(long length, String header) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(length == -2 ? h.length : length).put(h);
        Path p = Files.createTempFile(tmp, "bad", ".safetensors");
        Files.write(p, b.array());
        return p;
    }

    private static void assertRejected(Path file, String message) {
        IOException e = assertThrows(IOException.class, () -> SafetensorsFile.open(file, Arena.ofAuto()));
        assertTrue(e.getMessage().contains(message), e.getMessage());
        assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
    }

    private static SafetensorsWriter.Values counting(float step) {
        float[] next = {0};
        return (chunk, count) -> {
            for (int i = 0; i < count; i++) {
                chunk[i] = next[0];
                next[0] += step;
            }
        };
    }
}
