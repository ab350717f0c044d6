// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.launcher.bench;

/** A command-line error of {@code dpserve bench}: message for the user, exit code 2. */
public final class BenchUsageException extends Exception {
    private static final long serialVersionUID = 1L;

    public BenchUsageException(String message) {
        super(message);
    }
}
