// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.transport.dp;

import dev.dpserve.api.engine.OutputListener;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The front end's request → rank map (spec 3.3 step 4): where to send an abort, and whom to hand a
 * request's outputs. An entry lives from submit until its final output or until the engine lists
 * the id as finished, so the map never keeps requests the engines have forgotten.
 *
 * <p>Thread-safe: submit and abort threads add and look up, the receive thread removes.
 */
final class InFlightRequests {

    /** Where a request runs and who receives its outputs. */
    record Entry(String requestId, int rank, OutputListener listener) {}

    private final Map<String, Entry> byId = new ConcurrentHashMap<>();

    /** @return false if a request with this id is already in flight (nothing changed) */
    boolean add(String requestId, int rank, OutputListener listener) {
        return byId.putIfAbsent(requestId, new Entry(requestId, rank, listener)) == null;
    }

    /** The entry of a request in flight, or null. */
    Entry get(String requestId) { return byId.get(requestId); }

    /** The rank serving {@code requestId}, or -1 if it is not in flight (finished or unknown). */
    int rankOf(String requestId) {
        Entry e = byId.get(requestId);
        return e == null ? -1 : e.rank();
    }

    /** Forgets a request; returns its entry, or null if it was not in flight. */
    Entry remove(String requestId) { return byId.remove(requestId); }

    /** Forgets and returns every request of {@code rank} (the rank died). */
    List<Entry> removeRank(int rank) {
        List<Entry> out = new ArrayList<>();
        for (Entry e : List.copyOf(byId.values())) {
            if (e.rank() == rank && byId.remove(e.requestId(), e)) out.add(e);
        }
        return out;
    }

    /** Forgets and returns every request (shutdown). */
    List<Entry> removeAll() {
        List<Entry> out = new ArrayList<>();
        for (Entry e : List.copyOf(byId.values())) if (byId.remove(e.requestId(), e)) out.add(e);
        return out;
    }

    int size() { return byId.size(); }
}
