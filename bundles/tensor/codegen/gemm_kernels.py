#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Prints the micro-kernels of VectorGemm (Java), one per weight dtype x tile shape.

The kernels are unrolled by hand because C2 keeps a tile in registers only when every accumulator
is its own local. Regenerate after changing a shape and paste the output at the end of
bundles/tensor/src/main/java/dev/dpserve/tensor/VectorGemm.java (after the marker comment):
    python3 bundles/tensor/codegen/gemm_kernels.py
"""

MR = 6
SHAPES = [(MR, 4), (MR, 3), (MR, 2), (MR, 1)]
# name prefix, Javadoc name, element bytes, scalar read of one weight at byte offset `off`
DTYPES = [
    ("f32", "F32", 4, "w.get(MatmulArgs.F32_LE, {off})"),
    ("bf16", "BF16", 2, "Float.intBitsToFloat(w.get(MatmulArgs.I16_LE, {off}) << 16)"),
    ("f16", "F16", 2, "Float.float16ToFloat(w.get(MatmulArgs.I16_LE, {off}))"),
]


def kernel(prefix, dname, es, read, mr, nr):
    out = []
    out.append(f"    /** C[{mr} rows][{nr} vectors] += W[{mr} rows][kc] ({dname}, row r at byte wo + r·rs) · B[kc][{nr} vectors] (row k at bo + k·bw). */")
    out.append(f"    private static void {prefix}Tile{mr}x{nr}(MemorySegment w, long wo, long rs, int kc, float[] b, int bo, int bw,")
    out.append(f"                                      float[] c, int co, int ldc) {{")
    for r in range(mr):
        out.append(f"        int o{r} = co + {r} * ldc;")
    for r in range(mr):
        for v in range(nr):
            out.append(f"        FloatVector c{r}{v} = FloatVector.fromArray(FS, c, o{r} + {v} * LANES);")
    for r in range(mr):
        out.append(f"        long w{r} = wo + {r} * rs;")
    out.append("        for (int k = 0; k < kc; k++) {")
    out.append("            int bk = bo + k * bw;")
    out.append(f"            long kb = {es}L * k;")
    for v in range(nr):
        out.append(f"            FloatVector b{v} = FloatVector.fromArray(FS, b, bk + {v} * LANES);")
    for r in range(mr):
        out.append(f"            FloatVector a{r} = FloatVector.broadcast(FS, {read.format(off=f'w{r} + kb')});")
        out.append("            " + " ".join(f"c{r}{v} = b{v}.fma(a{r}, c{r}{v});" for v in range(nr)))
    out.append("        }")
    for r in range(mr):
        out.append("        " + " ".join(f"c{r}{v}.intoArray(c, o{r} + {v} * LANES);" for v in range(nr)))
    out.append("    }")
    return "\n".join(out)


# pair kernels (small batches; F16 has none: its widening per broadcast costs more than the FMAs): one broadcast carries weights k and k+1 of a row as a (low, high)
# float pair in every 64-bit lane; the token vectors hold (x[t][k], x[t][k+1]) pairs
PAIR_SHAPES = [(8, 1), (8, 2)]
PAIR_DTYPES = [
    ("f32", "F32", 8, "w.get(I64_LE, {off})"),
    ("bf16", "BF16", 4, "IntVector.broadcast(IS, w.get(I32_LE, {off})).lanewise(VectorOperators.LSHL, shifts).and(HIGH_HALF).reinterpretAsFloats()"),
]


def pair_kernel(prefix, dname, pair_bytes, read, mr, nr):
    out = []
    out.append(f"    /** C[{mr} rows][{nr} vectors] += W[{mr} rows][2·kp] ({dname}, row r at byte wo + r·rs) · B[kp][{nr} vectors] (k pairs, row q at bo + q·bw). */")
    out.append(f"    private static void {prefix}Pair{mr}x{nr}(MemorySegment w, long wo, long rs, int kp, float[] b, int bo, int bw,")
    out.append(f"                                      float[] c, int co, int ldc) {{")
    for r in range(mr):
        out.append(f"        int o{r} = co + {r} * ldc;")
    for r in range(mr):
        for v in range(nr):
            out.append(f"        FloatVector c{r}_{v} = FloatVector.fromArray(FS, c, o{r} + {v} * LANES);")
    for r in range(mr):
        out.append(f"        long w{r} = wo + {r} * rs;")
    if read.startswith("IntVector"):
        out.append("        IntVector shifts = IntVector.fromArray(IS, BF16_PAIR_SHIFTS, 0);")
    out.append("        for (int q = 0; q < kp; q++) {")
    out.append("            int bq = bo + q * bw;")
    out.append(f"            long qb = {pair_bytes}L * q;")
    for v in range(nr):
        out.append(f"            FloatVector b{v} = FloatVector.fromArray(FS, b, bq + {v} * LANES);")
    for r in range(mr):
        if read.startswith("IntVector"):
            out.append(f"            FloatVector a{r} = {read.format(off=f'w{r} + qb')};")
        else:
            out.append(f"            FloatVector a{r} = LongVector.broadcast(LS, {read.format(off=f'w{r} + qb')}).reinterpretAsFloats();")
        out.append("            " + " ".join(f"c{r}_{v} = b{v}.fma(a{r}, c{r}_{v});" for v in range(nr)))
    out.append("        }")
    for r in range(mr):
        out.append("        " + " ".join(f"c{r}_{v}.intoArray(c, o{r} + {v} * LANES);" for v in range(nr)))
    out.append("    }")
    return "\n".join(out)


def main():
    parts = []
    for prefix, dname, es, read in DTYPES:
        for mr, nr in SHAPES:
            parts.append(kernel(prefix, dname, es, read, mr, nr))
    for prefix, dname, pb, read in PAIR_DTYPES:
        for mr, nr in PAIR_SHAPES:
            parts.append(pair_kernel(prefix, dname, pb, read, mr, nr))
    print("\n\n".join(parts))


if __name__ == "__main__":
    main()
