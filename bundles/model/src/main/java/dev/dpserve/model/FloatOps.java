// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model;

/** The small element-wise pieces of a decoder step the kernel backends do not cover, on F32 row-major arrays. */
public final class FloatOps {

    private FloatOps() {
    }

    public static void addInPlace(float[] acc, float[] delta, int n) {
        for (int i = 0; i < n; i++) acc[i] += delta[i];
    }

    /**
     * RoPE cos/sin rows of the batch's tokens: row t holds {@code mscale·cos(position·invFreq[i])}
     * and the sine alike, for token t at its position.
     */
    public static void ropeAngles(BatchLayout batch, double[] invFreq, double mscale, float[] cos, float[] sin) {
        int half = invFreq.length;
        for (int e = 0, t = 0; e < batch.size(); e++) {
            int start = batch.start(e);
            for (int j = 0; j < batch.count(e); j++, t++) {
                int position = start + j;
                for (int i = 0; i < half; i++) {
                    double angle = position * invFreq[i];
                    cos[t * half + i] = (float) (Math.cos(angle) * mscale);
                    sin[t * half + i] = (float) (Math.sin(angle) * mscale);
                }
            }
        }
    }
}
