// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.launcher.bench;

import java.io.IOException;

/** The server could not be reached (connection refused, timeout, bad host): exit code 1. */
final class ServerUnreachableException extends IOException {
    private static final long serialVersionUID = 1L;

    ServerUnreachableException(String message, Throwable cause) {
        super(message, cause);
    }
}
