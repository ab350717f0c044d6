// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.tensor;

/** Element types of tensors, with their safetensors names and sizes in bytes. */
public enum DType {
    F32("F32", 4), F16("F16", 2), BF16("BF16", 2), I8("I8", 1), I32("I32", 4), I64("I64", 8), U8("U8", 1), BOOL("BOOL", 1);

    private final String safetensorsName;
    private final int byteSize;

    DType(String safetensorsName, int byteSize) {
        this.safetensorsName = safetensorsName;
        this.byteSize = byteSize;
    }

    public String safetensorsName() { return safetensorsName; }

    public int byteSize() { return byteSize; }

    /** The dtype for a safetensors header "dtype" value; IllegalArgumentException names unsupported ones. */
    public static DType fromSafetensors(String name) {
        for (DType t : values()) {
            if (t.safetensorsName.equals(name)) return t;
        }
        throw new IllegalArgumentException("unsupported safetensors dtype " + name);
    }
}
