// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model.safetensors;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.dpserve.api.tensor.DType;
import dev.dpserve.api.tensor.Tensor;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One memory-mapped safetensors file: an 8-byte little-endian header length, a JSON header
 * {@code {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}}, then the data
 * (offsets are relative to the end of the header). Tensors are slices of the mapping, never copies;
 * they stay valid until the arena given to {@link #open} is closed.
 */
public final class SafetensorsFile {

    /** Largest header accepted (the reference implementation's limit). */
    public static final long MAX_HEADER_BYTES = 100L << 20;

    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path path;
    private final Map<String, Tensor> tensors;
    private final Map<String, String> metadata;

    private SafetensorsFile(Path path, Map<String, Tensor> tensors, Map<String, String> metadata) {
        this.path = path;
        this.tensors = tensors;
        this.metadata = metadata;
    }

    /**
     * Maps {@code path} read-only into {@code arena} and indexes its tensors. Throws IOException
     * naming the file for a malformed header: bad length, offsets outside the data, overlapping or
     * size-mismatched tensors, unknown dtypes.
     */
    public static SafetensorsFile open(Path path, Arena arena) throws IOException {
        MemorySegment file;
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < 8) throw new IOException(path + ": not a safetensors file (" + size + " bytes)");
            file = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
        }
        long size = file.byteSize();
        long headerLen = file.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
        if (headerLen <= 0 || headerLen > MAX_HEADER_BYTES || headerLen > size - 8) {
            throw new IOException(path + ": invalid safetensors header length " + headerLen + " (file has " + size + " bytes)");
        }
        byte[] headerBytes = file.asSlice(8, headerLen).toArray(ValueLayout.JAVA_BYTE);
        JsonNode header;
        try {
            header = JSON.readTree(new String(headerBytes, StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new IOException(path + ": safetensors header is not valid JSON: " + e.getMessage(), e);
        }
        if (header == null || !header.isObject()) throw new IOException(path + ": safetensors header is not a JSON object");
        long dataStart = 8 + headerLen;
        long dataSize = size - dataStart;
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        Map<String, String> metadata = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = header.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            String name = e.getKey();
            JsonNode info = e.getValue();
            if (name.equals("__metadata__")) {
                info.fields().forEachRemaining(m -> metadata.put(m.getKey(), m.getValue().asText()));
                continue;
            }
            String where = path + ": tensor " + name;
            JsonNode dtypeNode = info.get("dtype");
            JsonNode shapeNode = info.get("shape");
            JsonNode offsets = info.get("data_offsets");
            if (dtypeNode == null || shapeNode == null || !shapeNode.isArray() || offsets == null || !offsets.isArray()
                    || offsets.size() != 2) {
                throw new IOException(where + ": needs dtype, shape and data_offsets [begin, end]");
            }
            DType dtype;
            try {
                dtype = DType.fromSafetensors(dtypeNode.asText());
            } catch (IllegalArgumentException ex) {
                throw new IOException(where + ": " + ex.getMessage(), ex);
            }
            long[] shape = new long[shapeNode.size()];
            long numel = 1;
            for (int i = 0; i < shape.length; i++) {
                JsonNode d = shapeNode.get(i);
                if (!d.canConvertToLong() || d.asLong() < 0) throw new IOException(where + ": bad shape " + shapeNode);
                shape[i] = d.asLong();
                numel = Math.multiplyExact(numel, shape[i]);
            }
            long begin = offsets.get(0).asLong(-1);
            long end = offsets.get(1).asLong(-1);
            if (begin < 0 || end < begin || end > dataSize) {
                throw new IOException(where + ": data_offsets " + offsets + " outside the data (" + dataSize + " bytes)");
            }
            if (end - begin != numel * dtype.byteSize()) {
                throw new IOException(where + ": " + (end - begin) + " bytes for shape " + shapeNode + " " + dtype);
            }
            if (tensors.put(name, new Tensor(name, dtype, shape, file.asSlice(dataStart + begin, end - begin))) != null) {
                throw new IOException(where + ": duplicate name");
            }
        }
        return new SafetensorsFile(path, Collections.unmodifiableMap(tensors), Collections.unmodifiableMap(metadata));
    }

    public Path path() {
        return path;
    }

    /** Tensors by name, in header order. */
    public Map<String, Tensor> tensors() {
        return tensors;
    }

    /** The {@code __metadata__} string map (often {@code {"format": "pt"}}). */
    public Map<String, String> metadata() {
        return metadata;
    }
}
