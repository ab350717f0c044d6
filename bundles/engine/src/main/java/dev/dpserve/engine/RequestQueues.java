// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.engine;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The engine's requests: the waiting queue (front = next to admit), the running queue (admission
 * order) and the KV blocks they hold. Scheduling policies act on it through a {@link StepContext};
 * the engine loop thread owns it.
 */
final class RequestQueues {

    final ArrayDeque<RequestState> waiting = new ArrayDeque<>();
    final List<RequestState> running = new ArrayList<>();
    final Map<String, RequestState> byId = new LinkedHashMap<>();
    final KvCacheManager kv;

    // loop-thread counters, published by the engine after each step
    long preemptions;
    long prefixQueries;
    long prefixHits;
    long promptTokens;

    RequestQueues(KvCacheManager kv) {
        this.kv = kv;
    }

    /** Queues a new request at the back of the waiting queue. */
    void add(RequestState s) {
        if (byId.putIfAbsent(s.id, s) != null) throw new IllegalArgumentException("duplicate request id " + s.id);
        waiting.addLast(s);
    }

    RequestState get(String id) {
        return byId.get(id);
    }

    /** Takes a request out of the engine (finished or aborted) and frees its KV blocks. False if it was not here. */
    boolean remove(RequestState s) {
        if (byId.remove(s.id) != s) return false;
        if (s.status == RequestState.Status.RUNNING) running.remove(s);
        else waiting.remove(s);
        kv.remove(s.id);
        s.status = RequestState.Status.FINISHED;
        return true;
    }

    boolean isEmpty() {
        return byId.isEmpty();
    }
}
