// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.protocol;

import java.util.List;

/**
 * Front end → engine: finish these requests as aborted and free their KV blocks. Unknown ids are
 * ignored (the request may have finished in the meantime). The engine reports them in
 * {@link EngineOutputs#finishedRequests()}.
 */
public record AbortRequests(List<String> requestIds) implements EngineInput {
    public AbortRequests {
        requestIds = List.copyOf(requestIds);
    }
}
