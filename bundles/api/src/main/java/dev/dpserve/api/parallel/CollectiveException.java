// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.parallel;

/**
 * A collective could not complete: a peer did not answer within the timeout (its process is gone
 * or hung), sent something malformed, or the communicator was closed. The group is unusable
 * afterwards (ranks may disagree about how many calls completed); the caller reports itself
 * unhealthy rather than retrying.
 */
public class CollectiveException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public CollectiveException(String message) {
        super(message);
    }

    public CollectiveException(String message, Throwable cause) {
        super(message, cause);
    }
}
