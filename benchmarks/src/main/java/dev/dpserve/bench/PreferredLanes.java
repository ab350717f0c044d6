// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.bench;

/** Prints the lane count of the Vector API's preferred float species on this machine (for {@link Report}). */
public final class PreferredLanes {

    private PreferredLanes() {
    }

    public static void main(String[] args) {
        System.out.println(MachineLimitsBench.preferredLanes());
    }
}
