// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.tensor;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * A named, read-only view of a dense row-major tensor, usually memory-mapped straight from a
 * safetensors file (never copied for F32). {@code data} holds exactly numel × dtype.byteSize bytes,
 * little-endian.
 */
public record Tensor(String name, DType dtype, long[] shape, MemorySegment data) {

    public Tensor {
        shape = shape.clone();
        long expected = numel(shape) * dtype.byteSize();
        if (data.byteSize() != expected) {
            throw new IllegalArgumentException("tensor " + name + " " + Arrays.toString(shape) + " " + dtype
                    + " needs " + expected + " bytes, got " + data.byteSize());
        }
    }

    public long numel() { return numel(shape); }

    public int rank() { return shape.length; }

    /** Size of dimension {@code i}; negative i counts from the end. */
    public int dim(int i) {
        return Math.toIntExact(shape[i < 0 ? shape.length + i : i]);
    }

    @Override
    public long[] shape() { return shape.clone(); }

    private static long numel(long[] shape) {
        long n = 1;
        for (long d : shape) n *= d;
        return n;
    }

    @Override
    public String toString() {
        return "Tensor[" + name + " " + dtype + " " + Arrays.toString(shape) + "]";
    }
}
