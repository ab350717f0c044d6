// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.engine;

/** A request the engine refuses as malformed (HTTP 400). {@link #param()} names the field, or null. */
public class InvalidRequestException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final String param;

    public InvalidRequestException(String message, String param) {
        super(message);
        this.param = param;
    }

    public String param() { return param; }
}
