// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.dpserve.api.tensor.DType;
import dev.dpserve.api.tensor.PagedAttention;
import dev.dpserve.api.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The reference ops of {@link JavaKernelBackend} checked independently: hand-computed cases, and
 * random cases against naive double-precision computations written here (attention from unpaged
 * K/V arrays), never against the backend itself.
 */
class ReferenceOpsTest {

    private final JavaKernelBackend ref = new JavaKernelBackend();
    private final SplittableRandom rnd = new SplittableRandom(11);

    @Test
    void int8MatmulByHand() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocateFrom(java.lang.foreign.ValueLayout.JAVA_BYTE, new byte[] {1, 1, 1, 2, 0, -1});
            Tensor w = new Tensor("w", DType.I8, new long[] {2, 3}, seg);
            float[] out = new float[3];
            // q = (1, -2, 3): row 0 sums 2 (+10 bias) = 12, row 1 sums 2 - 3 = -1
            ref.matmulInt8(new byte[] {9, 1, -2, 3}, 1, 1, new float[] {0.5f}, w, new int[] {10, 0}, new float[] {1f, 2f}, out, 1);
            assertArrayEquals(new float[] {0f, 6f, -1f}, out);
            ref.matmulInt8(new byte[] {1, -2, 3}, 0, 1, null, w, null, new float[] {1f, 1f}, out, 0);
            assertArrayEquals(new float[] {2f, -1f, -1f}, out);
        }
    }

    @Test
    void quantizeRowsByHand() {
        float[] x = {127f, 2.5f, -0.5f, 1.5f, 0f, 0f, 0f, 0f, -254f, 127f, 1f, -3f};
        byte[] q = new byte[12];
        float[] scale = new float[3];
        ref.quantizeRows(x, 0, 3, 4, q, 0, scale, 0);
        // scale 1: round half to even; zero row: scale 1; scale 2: -127, 63.5 -> 64, 0.5 -> 0, -1.5 -> -2
        assertArrayEquals(new float[] {1f, 1f, 2f}, scale);
        assertArrayEquals(new byte[] {127, 2, 0, 2, 0, 0, 0, 0, -127, 64, 0, -2}, q);
    }

    @Test
    void rmsNormByHandAndAgainstDouble() {
        float[] out = new float[2];
        ref.rmsNorm(new float[] {3f, 4f}, 0, 2, 1, new float[] {1f, 2f}, 0f, out, 0, 2);
        double rms = Math.sqrt(12.5);
        assertArrayEquals(new float[] {(float) (3 / rms), (float) (8 / rms)}, out, 1e-6f);

        int dim = 37;
        int rows = 3;
        float[] x = random(5 + rows * 40, 3);
        float[] w = random(dim, 2);
        float[] o = new float[rows * dim];
        ref.rmsNorm(x, 5, 40, rows, w, 1e-5f, o, 0, dim);
        for (int r = 0; r < rows; r++) {
            double ss = 0;
            for (int i = 0; i < dim; i++) ss += (double) x[5 + r * 40 + i] * x[5 + r * 40 + i];
            double inv = 1 / Math.sqrt(ss / dim + 1e-5f);
            for (int i = 0; i < dim; i++) assertEquals(w[i] * x[5 + r * 40 + i] * inv, o[r * dim + i], 1e-5);
        }
    }

    @Test
    void ropeByHand() {
        float[] neox = {1, 2, 3, 4};
        ref.rope(neox, 0, 1, 4, 1, 4, 4, new float[] {0, 1}, new float[] {1, 0}, false);
        // pair (0, 2) turns by 90°: (1, 3) -> (-3, 1); pair (1, 3) by 0°
        assertArrayEquals(new float[] {-3, 2, 1, 4}, neox);
        float[] gptj = {1, 2, 3, 4};
        ref.rope(gptj, 0, 1, 4, 1, 4, 4, new float[] {0, 1}, new float[] {1, 0}, true);
        assertArrayEquals(new float[] {-2, 1, 3, 4}, gptj);
        // two heads, partial rotary (2 of 3 dims), an offset: the third dim of each head stays
        float[] x = {7, 1, 2, 9, 3, 4, 8};
        ref.rope(x, 1, 1, 6, 2, 3, 2, new float[] {-1}, new float[] {0}, false);
        assertArrayEquals(new float[] {7, -1, -2, 9, -3, -4, 8}, x);
    }

    @Test
    void softmaxSiluAndTopKByHand() {
        float[] s = {9, 0, (float) Math.log(3), 9, 1, 1, 1, 1};
        ref.softmax(s, 1, 1, 2, 2);
        assertArrayEquals(new float[] {0.25f, 0.75f}, new float[] {s[1], s[2]}, 1e-7f);
        assertEquals(9f, s[0]);
        assertEquals(9f, s[3]);
        ref.softmax(s, 4, 1, 4, 4);
        for (int i = 4; i < 8; i++) assertEquals(0.25f, s[i], 1e-7f);

        float[] gate = {0f, 2f, -1f};
        ref.siluMul(gate, 0, new float[] {5f, 3f, 1f}, 0, 3);
        assertEquals(0f, gate[0]);
        assertEquals(3 * 2 / (1 + Math.exp(-2)), gate[1], 1e-6);
        assertEquals(-1 / (1 + Math.E), gate[2], 1e-6);

        int[] idx = new int[3];
        float[] val = new float[3];
        ref.topK(new float[] {100, 3, 1, 3, 2}, 1, 4, 3, idx, val);
        assertArrayEquals(new int[] {0, 2, 3}, idx); // ties to the lower index
        assertArrayEquals(new float[] {3, 3, 2}, val);
        ref.topK(new float[] {Float.NaN, -1}, 0, 2, 1, idx, val);
        assertEquals(1, idx[0]);
    }

    @Test
    void attentionByHand() {
        // one head, kDim = vDim = 1, block size 2, blocks in reverse order; slot = [k, v]
        float[][] blocks = {{0, 30, 0, 0}, {0, 10, (float) Math.log(3), 20}};
        int[] table = {1, 0};
        float[] out = new float[1];
        ref.attention(new PagedAttention(new float[] {1}, 0, 1, 1, 1, 1, 1, 1, 1, blocks, table, 2, 0, 2,
                0, 1, 1, 1, 2, 0, 1f, out, 0, 1, 1));
        // weights (1, 3, 1) / 5 over values (10, 20, 30)
        assertEquals(20f, out[0], 1e-5f);
        ref.attention(new PagedAttention(new float[] {1}, 0, 1, 1, 1, 1, 1, 1, 1, blocks, table, 2, 0, 2,
                0, 1, 1, 1, 2, 2, 1f, out, 0, 1, 1));
        // window 2 at position 2: positions 1 and 2, weights (3, 1) / 4
        assertEquals(22.5f, out[0], 1e-5f);
    }

    @Test
    void attentionAgainstDoubleFromUnpagedArrays() {
        int heads = 6;
        int kvHeads = 2;
        int dim = 9;
        int blockSize = 3;
        int start = 4;
        int n = 5;
        int ctx = start + n;
        float[][] k = new float[kvHeads][];
        float[][] v = new float[kvHeads][];
        for (int h = 0; h < kvHeads; h++) {
            k[h] = random(ctx * dim, 1.5f);
            v[h] = random(ctx * dim, 1.5f);
        }
        // the paged layout: slot = [k heads | v heads], blocks in a scrambled order
        int slot = 2 * kvHeads * dim;
        int[] table = {2, 0, 3};
        float[][] blocks = new float[4][blockSize * slot];
        for (int p = 0; p < ctx; p++) {
            float[] b = blocks[table[p / blockSize]];
            for (int h = 0; h < kvHeads; h++) {
                System.arraycopy(k[h], p * dim, b, (p % blockSize) * slot + h * dim, dim);
                System.arraycopy(v[h], p * dim, b, (p % blockSize) * slot + (kvHeads + h) * dim, dim);
            }
        }
        float[] q = random(n * heads * dim, 1.5f);
        float scale = 0.3f;
        for (int window : new int[] {0, 4}) {
            float[] out = new float[n * heads * dim];
            ref.attention(new PagedAttention(q, 0, heads * dim, dim, n, heads, kvHeads, dim, dim, blocks, table, blockSize, 0, slot,
                    0, dim, kvHeads * dim, dim, start, window, scale, out, 0, heads * dim, dim));
            for (int t = 0; t < n; t++) {
                int pos = start + t;
                int from = window == 0 ? 0 : Math.max(0, pos - window + 1);
                for (int h = 0; h < heads; h++) {
                    int kv = h / (heads / kvHeads);
                    double[] w = new double[pos + 1];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int p = from; p <= pos; p++) {
                        double dot = 0;
                        for (int d = 0; d < dim; d++) dot += (double) q[(t * heads + h) * dim + d] * k[kv][p * dim + d];
                        w[p] = dot * scale;
                        max = Math.max(max, w[p]);
                    }
                    double sum = 0;
                    for (int p = from; p <= pos; p++) sum += w[p] = Math.exp(w[p] - max);
                    for (int d = 0; d < dim; d++) {
                        double o = 0;
                        for (int p = from; p <= pos; p++) o += w[p] / sum * v[kv][p * dim + d];
                        assertEquals(o, out[(t * heads + h) * dim + d], 1e-5, "t " + t + " h " + h + " d " + d + " window " + window);
                    }
                }
            }
        }
    }

    private float[] random(int n, float range) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) rnd.nextDouble(-range, range);
        return a;
    }
}
