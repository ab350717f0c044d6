// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.transport;

import org.zeromq.ZContext;
import org.zeromq.ZMQ;

/**
 * Follows a connecting socket's TCP events so a client can tell "nobody answers" from "the server
 * accepts TCP and then drops us". JeroMQ reports a refused security handshake (a wrong cluster
 * key, or a key on one side only) to the client only as a disconnect, and has no event for a
 * completed CURVE handshake; while a client waits for its first reply, a dropped connection is
 * therefore a refusal when either
 * <ul>
 *   <li>the socket gave up on the endpoint: JeroMQ does not reconnect after a handshake that
 *       failed with a protocol error (mechanism mismatch, CURVE ERROR command), so a drop that is
 *       not followed by a reconnect attempt within {@link #GIVE_UP_MILLIS} is final; or</li>
 *   <li>the server keeps closing fresh connections: {@link #FAST_DROPS_FOR_REFUSAL} drops, each
 *       soon after its connect (a connection we closed ourselves on the handshake timer, see
 *       {@link Sockets#HANDSHAKE_IVL_MILLIS}, lived that long and is not counted).</li>
 * </ul>
 * Used by the thread that owns the watched socket.
 */
final class ConnectionWatch {
    private static final int EVENTS = ZMQ.EVENT_CONNECTED | ZMQ.EVENT_DISCONNECTED
            | ZMQ.EVENT_CONNECT_DELAYED | ZMQ.EVENT_CONNECT_RETRIED;
    /** JeroMQ emits CONNECT_RETRIED within milliseconds of a drop it will retry; this is a wide margin. */
    static final long GIVE_UP_MILLIS = 1000;
    static final int FAST_DROPS_FOR_REFUSAL = 3;
    private static final long FAST_DROP_NANOS = Sockets.HANDSHAKE_IVL_MILLIS * 1_000_000L / 2;

    private final ZMQ.Socket events;
    private int connects;
    private int drops;
    private int fastDrops;
    private long connectedAt;
    private long droppedAt = -1; // a drop not (yet) followed by a reconnect attempt, or -1

    ConnectionWatch(ZContext ctx, ZMQ.Socket watched) {
        this.events = Sockets.monitor(ctx, watched, EVENTS);
    }

    /** The monitor socket, for the owner's poller. */
    ZMQ.Socket socket() { return events; }

    /** Drains pending events. */
    void update() {
        ZMQ.Event e;
        while ((e = ZMQ.Event.recv(events, ZMQ.DONTWAIT)) != null) {
            long now = System.nanoTime();
            switch (e.getEvent()) {
                case ZMQ.EVENT_CONNECTED -> {
                    connects++;
                    connectedAt = now;
                    droppedAt = -1;
                }
                case ZMQ.EVENT_DISCONNECTED -> {
                    drops++;
                    if (now - connectedAt < FAST_DROP_NANOS) fastDrops++;
                    droppedAt = now;
                }
                case ZMQ.EVENT_CONNECT_DELAYED, ZMQ.EVENT_CONNECT_RETRIED -> droppedAt = -1;
                default -> { }
            }
        }
    }

    /** True once the pattern of drops says the server refuses us (call {@link #update()} first). */
    boolean refused() {
        if (fastDrops >= FAST_DROPS_FOR_REFUSAL) return true;
        return droppedAt >= 0 && System.nanoTime() - droppedAt >= GIVE_UP_MILLIS * 1_000_000;
    }

    /** TCP connections made. */
    int connects() { return connects; }

    /** Connections closed (by the server, or by our own handshake timer). */
    int drops() { return drops; }
}
