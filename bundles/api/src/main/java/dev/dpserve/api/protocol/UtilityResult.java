// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.protocol;

/**
 * The answer to a {@link UtilityCall}: exactly one of {@code result} (JSON text or plain text, as the
 * method defines) and {@code error} is non-null.
 */
public record UtilityResult(long callId, String result, String error) {
    public UtilityResult {
        if ((result == null) == (error == null)) throw new IllegalArgumentException("exactly one of result and error must be set");
    }
}
