// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.transport;

/**
 * Startup failed: a peer did not join in time, was refused (wrong cluster key, unknown rank,
 * mismatched flags) or the head rejected this engine. The message is written for the operator:
 * it names the ranks or addresses involved and what to check.
 */
public final class HandshakeException extends Exception {
    private static final long serialVersionUID = 1L;

    public HandshakeException(String message) {
        super(message);
    }
}
