// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tensor;

/**
 * The JNI entry points of {@code libdpserve_kernels} (the {@code linux-x86_64} native fragment's
 * C sources implement them; keep the two in step). Every method works on one block of the problem
 * and trusts its arguments: callers validate bounds first, since native code has no range checks.
 *
 * <p>The library is loaded with {@link System#loadLibrary} from this class, so inside OSGi the host
 * bundle's class loader finds it through the fragment's {@code Bundle-NativeCode} header; outside
 * OSGi (unit tests, benchmarks) {@code -Djava.library.path} must name its directory.
 *
 * <p>A JNI library binds to the class loader that loaded it, and a JVM refuses to load the same
 * file into a second loader. Refreshing the host (e.g. after installing the fragment into a
 * running server) creates a new class loader with a new {@code NativeKernels} class, which loads
 * the library again; this works as long as the framework hands the new loader a different file
 * (Felix extracts native code per bundle revision into its cache). {@code HotInstallNativeIT}
 * installs the fragment into a serving framework and refreshes the host.
 *
 * <p>Activations are pinned with {@code GetPrimitiveArrayCritical} for the length of one block of
 * work (well under a millisecond at decode sizes; for a prefill block of up to 256 tokens, the
 * block's share of one weight matrix: about 20 ms for 256 tokens × half of a 4096×4096 F32 weight);
 * with a GC that uses the GC locker (Parallel GC, as {@code bin/dpserve} runs) a collection waits
 * for that long.
 */
final class NativeKernels {

    /** The library name given to {@link System#loadLibrary}. */
    static final String LIBRARY = "dpserve_kernels";

    /** Dispatch levels reported by {@link #level()}. */
    static final int LEVEL_BASELINE = 0;
    static final int LEVEL_AVX2 = 1;
    static final int LEVEL_AVX2_VNNI = 2;
    static final int LEVEL_AVX512 = 3;

    static final int DT_F32 = 0;
    static final int DT_BF16 = 1;
    static final int DT_F16 = 2;

    private static volatile String loadError;
    private static volatile boolean loaded;

    private NativeKernels() {
    }

    /** Loads the library once; returns null when it is available, else why not. */
    static synchronized String load() {
        if (loaded) return null;
        if (loadError != null) return loadError;
        try {
            System.loadLibrary(LIBRARY);
            loaded = true;
            return null;
        } catch (UnsatisfiedLinkError | SecurityException e) {
            loadError = e.getClass().getSimpleName() + ": " + e.getMessage();
            return loadError;
        }
    }

    static String levelName(int level) {
        return switch (level) {
            case LEVEL_BASELINE -> "x86-64 baseline";
            case LEVEL_AVX2 -> "AVX2+FMA";
            case LEVEL_AVX2_VNNI -> "AVX2+FMA, AVX-VNNI";
            case LEVEL_AVX512 -> "AVX2+FMA, AVX-512 (F, BW, VL, VNNI)";
            default -> "level " + level;
        };
    }

    /** The code path chosen at load time from the CPU's features. */
    static native int level();

    /** Overrides the code path (tests: exercise the baseline and AVX2 paths on a newer CPU). */
    static native void forceLevel(int level);

    /** out[i][j] for weight rows [j0, j1) and tokens [i0, i1); x and out are offset by xOff/outOff. */
    static native void matmul(int dtype, float[] x, int xOff, int k, long w, int m, int j0, int j1, int i0, int i1,
                              float[] out, int outOff);

    static native void matmulInt8(byte[] q, int qOff, int k, long w, int m, int j0, int j1, int i0, int i1,
                                  float[] rowScale, int[] accBias, float[] colScale, float[] out, int outOff);

    static native void quantizeRows(float[] x, int xOff, int rows, int k, byte[] q, int qOff, float[] scale, int scaleOff);

    static native void rmsNorm(float[] x, int xOff, int xStride, int rows, float[] weight, float eps,
                               float[] out, int outOff, int outStride);

    static native void rope(float[] x, int off, int rows, int rowStride, int heads, int headStride, int rotaryDim,
                            float[] cos, float[] sin, boolean interleaved);

    static native void softmax(float[] x, int off, int rows, int len, int stride);

    static native void siluMul(float[] gate, int gOff, float[] up, int uOff, int n);

    static native void topK(float[] x, int off, int len, int k, int[] idx, float[] val);

    /**
     * Attention for the (token, head) pairs {@code [task0, task1)} (task = token × numHeads + head)
     * of one {@link dev.dpserve.api.tensor.PagedAttention} (its fields, in order). The caller has
     * checked every index. Returns 0, or -1 if the arrays could not be pinned (nothing written).
     */
    static native int attention(float[] q, int qOff, int qTokenStride, int qHeadStride, int numHeads, int numKvHeads,
                                int kDim, int vDim, float[][] blocks, int[] blockTable, int blockSize, int layerOffset,
                                int slotStride, int kOffset, int kHeadStride, int vOffset, int vHeadStride,
                                int startPosition, int window, float scale, float[] out, int outOff, int outTokenStride,
                                int outHeadStride, int task0, int task1);

    /** {@code iterations} × 12 independent 8-lane FMAs (benchmarks: the peak FMA rate). */
    static native double fmaLoop(long iterations);

    /** The same with 16-lane AVX-512 FMAs; NaN on a CPU without AVX-512F. */
    static native double fmaLoop512(long iterations);

    /** Sum of {@code bytes / 4} floats at {@code address} (benchmarks: streaming read bandwidth). */
    static native double streamSum(long address, long bytes);
}
