// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.transport;

/**
 * A frame that cannot be accepted: unknown tag, malformed CBOR, a body that does not fit the
 * record, a size limit exceeded, or a message type that is not allowed on the link it came from.
 * Receivers log it and drop the frame; it never ends a process.
 */
public final class ProtocolException extends Exception {
    private static final long serialVersionUID = 1L;

    public ProtocolException(String message) {
        super(message);
    }

    public ProtocolException(String message, Throwable cause) {
        super(message, cause);
    }
}
