// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.engine;

/** The engine cannot take requests now (HTTP 503); retry later. */
public class EngineUnavailableException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public EngineUnavailableException(String message) {
        super(message);
    }
}
