// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model;

import dev.dpserve.api.tensor.DType;
import dev.dpserve.api.tensor.KernelBackend;
import dev.dpserve.api.tensor.Tensor;
import dev.dpserve.model.safetensors.SafetensorsCheckpoint;
import dev.dpserve.model.safetensors.Tensors;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;

/**
 * Takes a model's weights from a checkpoint with their shapes checked against the config: matrices
 * stay mapped in their stored dtype or are converted once, into the model's arena, to the
 * requested one; norm vectors and biases are read as floats. Counts what it hands out.
 */
public final class WeightLoader {

    private final SafetensorsCheckpoint checkpoint;
    private final DType requested; // null: as stored
    private final Set<DType> matmulTypes = EnumSet.noneOf(DType.class);
    private final boolean quantize;
    private final Arena arena;
    private boolean quantized;
    private long parameterCount;
    private long weightBytes;

    /** {@code requested} as {@link #requestedDtype} gives it; converted matrices are allocated in {@code arena}. */
    public WeightLoader(SafetensorsCheckpoint checkpoint, DType requested, Arena arena) {
        this(checkpoint, requested, false, arena);
    }

    /**
     * With {@code quantize} (see {@link #quantizeWeights}) the projections {@link #linear(String, int, int, boolean)}
     * hands out are int8 with per-channel scales (dynamic W8A8); embeddings, norms, the LM head and
     * whatever a model takes through {@link #linearFloat} or {@link #matrix} stay floats.
     */
    public WeightLoader(SafetensorsCheckpoint checkpoint, DType requested, boolean quantize, Arena arena) {
        this.checkpoint = checkpoint;
        this.requested = requested;
        this.quantize = quantize;
        this.arena = arena;
    }

    /** Whether a ModelSource's quantization asks for int8 weights: "none" no, "w8a8" yes. */
    public static boolean quantizeWeights(String quantization) {
        return switch (quantization == null ? "none" : quantization) {
            case "none" -> false;
            case "w8a8" -> true;
            default -> throw new IllegalArgumentException("quantization " + quantization + " is not supported (none, w8a8)");
        };
    }

    /** The weight dtype a ModelSource names; null for "auto" (as stored). */
    public static DType requestedDtype(String dtype) {
        return switch (dtype == null ? "auto" : dtype) {
            case "auto" -> null;
            case "float32", "float" -> DType.F32;
            case "bfloat16" -> DType.BF16;
            case "float16", "half" -> DType.F16;
            default -> throw new IllegalArgumentException("dtype " + dtype + " is not supported (auto, float32, bfloat16, float16)");
        };
    }

    /** A (rows, cols) matrix in the requested dtype. */
    public Tensor matrix(String name, int rows, int cols) {
        return matrix(name, rows, cols, true);
    }

    /** A (rows, cols) matrix as stored (for weights whose precision matters more than their speed). */
    public Tensor storedMatrix(String name, int rows, int cols) {
        return matrix(name, rows, cols, false);
    }

    private Tensor matrix(String name, int rows, int cols, boolean convert) {
        Tensor t = checkpoint.get(name);
        checkShape(t, rows, cols);
        if (convert && requested != null) t = Tensors.convert(t, requested, arena);
        parameterCount += t.numel();
        weightBytes += t.data().byteSize();
        return t;
    }

    private static void checkShape(Tensor t, int rows, int cols) {
        if (t.rank() != 2 || t.dim(0) != rows || t.dim(1) != cols) {
            throw new IllegalArgumentException(t.name() + " has shape " + Arrays.toString(t.shape()) + ", config needs [" + rows + ", " + cols + "]");
        }
    }

    public float[] vector(String name, int size) {
        Tensor t = checkpoint.get(name);
        if (t.rank() != 1 || t.dim(0) != size) {
            throw new IllegalArgumentException(name + " has shape " + Arrays.toString(t.shape()) + ", config needs [" + size + "]");
        }
        parameterCount += t.numel();
        weightBytes += t.data().byteSize();
        return Tensors.toFloats(t);
    }

    /**
     * {@code prefix.weight} (out, in) and, with {@code bias}, {@code prefix.bias} (out,): int8 with
     * per-channel scales when this loader quantizes, else in the requested dtype.
     */
    public Linear linear(String prefix, int out, int in, boolean bias) {
        if (!quantize) return linearFloat(prefix, out, in, bias);
        Tensor stored = checkpoint.get(prefix + ".weight");
        checkShape(stored, out, in);
        float[] scale = new float[out];
        Tensor q = quantizePerRow(stored, scale, arena);
        quantized = true;
        parameterCount += q.numel();
        weightBytes += q.data().byteSize() + 4L * out;
        return new Linear(q, bias ? vector(prefix + ".bias", out) : null, scale);
    }

    /** As {@link #linear(String, int, int, boolean)}, never quantized (weights read in ways int8 cannot serve). */
    public Linear linearFloat(String prefix, int out, int in, boolean bias) {
        Tensor w = matrix(prefix + ".weight", out, in);
        matmulTypes.add(w.dtype());
        return new Linear(w, bias ? vector(prefix + ".bias", out) : null);
    }

    /**
     * Symmetric per-row int8 quantization of a float matrix: {@code scale[r] = max|w_r| / 127} (1 for
     * an all-zero row), {@code q = clamp(round-half-even(w / scale), -127, 127)}; q is allocated in {@code arena}.
     */
    public static Tensor quantizePerRow(Tensor w, float[] scale, Arena arena) {
        int rows = w.dim(0);
        int cols = w.dim(1);
        MemorySegment q = arena.allocate((long) rows * cols, 64);
        float[] row = new float[cols];
        byte[] qr = new byte[cols];
        for (int r = 0; r < rows; r++) {
            Tensors.readRow(w, r, row, 0);
            float max = 0;
            for (float v : row) max = Math.max(max, Math.abs(v));
            float s = max == 0 ? 1f : max / 127f;
            for (int c = 0; c < cols; c++) qr[c] = (byte) Math.max(-127, Math.min(127, Math.rint(row[c] / s)));
            MemorySegment.copy(qr, 0, q, ValueLayout.JAVA_BYTE, (long) r * cols, cols);
            scale[r] = s;
        }
        return new Tensor(w.name() + "[int8]", DType.I8, new long[] {rows, cols}, q);
    }

    /** A bias-free projection by an already loaded (or derived) weight. */
    public Linear linear(Tensor weight) {
        matmulTypes.add(weight.dtype());
        return new Linear(weight, null);
    }

    /** {@code prefix.gate_proj}, {@code up_proj} and {@code down_proj}. */
    public SwiGlu swiGlu(String prefix, int intermediate, int hidden, boolean bias) {
        return new SwiGlu(linear(prefix + "gate_proj", intermediate, hidden, bias),
                linear(prefix + "up_proj", intermediate, hidden, bias),
                linear(prefix + "down_proj", hidden, intermediate, bias));
    }

    /** The kernel ops a model with these projections needs: MATMUL on each weight dtype handed out, plus {@code others}. */
    public List<Kernels.Need> needs(KernelBackend.Op... others) {
        List<Kernels.Need> out = new ArrayList<>();
        for (DType t : matmulTypes) out.add(new Kernels.Need(KernelBackend.Op.MATMUL, t));
        if (quantized) {
            out.add(new Kernels.Need(KernelBackend.Op.MATMUL_INT8, DType.I8));
            out.add(Kernels.Need.of(KernelBackend.Op.QUANTIZE_ROWS));
        }
        for (KernelBackend.Op op : others) out.add(Kernels.Need.of(op));
        return List.copyOf(out);
    }

    public long parameterCount() {
        return parameterCount;
    }

    public long weightBytes() {
        return weightBytes;
    }
}
