// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.transport;

import org.zeromq.SocketType;
import org.zeromq.ZContext;
import org.zeromq.ZMQ;
import org.zeromq.ZMQException;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

/** Socket creation with the options every link shares, and the bind-side security rule. */
final class Sockets {
    private Sockets() {}

    private static final AtomicLong MONITOR_IDS = new AtomicLong();

    /**
     * Longest time a new connection may spend in the ZMTP/CurveZMQ handshake before it is closed
     * (and, on the connecting side, retried). JeroMQ's default is 30 s. We need a short bound
     * because JeroMQ 0.6.0's I/O poller has a race on the connecting side: when the connecter's
     * selector key is cancelled and the stream engine registers the same channel in the same
     * poller pass, the engine's key is lost and the connection sits TCP-connected but silent (no
     * greeting is ever sent) until this timer tears it down and reconnects. Queued messages
     * survive the reconnect (the pipe is kept), so the only cost of a hit is this delay.
     * A handshake on a healthy network takes milliseconds, even with CURVE and ZAP.
     */
    static final int HANDSHAKE_IVL_MILLIS = 2000;

    /** The ZAP domain our server sockets authenticate in. */
    static final String ZAP_DOMAIN = "dpserve";

    /**
     * Creates a socket that binds {@code endpoint}. With keys it is a CurveZMQ server watched by
     * {@code authenticator} (which must exist in the same context); without keys the endpoint must
     * be loopback.
     *
     * @param maxMessageBytes ZeroMQ drops larger inbound messages (and the connection); 0 = no receiving on this socket
     * @return the socket, bound; its actual endpoint is {@link #boundEndpoint}
     */
    static ZMQ.Socket bind(ZContext ctx, SocketType type, String endpoint, ClusterKeys keys,
                           CurveAuthenticator authenticator, int maxMessageBytes) {
        requireKeyForBind(endpoint, keys);
        ZMQ.Socket s = ctx.createSocket(type);
        common(s, maxMessageBytes);
        if (keys != null) {
            s.setZAPDomain(ZAP_DOMAIN);
            s.setCurveSecretKey(keys.secretKey());
            s.setCurveServer(true);
            authenticator.watch(s, type + " " + endpoint);
        }
        try {
            s.bind(endpoint);
        } catch (ZMQException e) {
            throw new IllegalStateException("cannot bind " + type + " to " + endpoint + ": " + e.getMessage(), e);
        }
        return s;
    }

    /** Creates a socket that will connect; the caller connects it (after any monitoring is set up). */
    static ZMQ.Socket client(ZContext ctx, SocketType type, ClusterKeys keys, byte[] identity, int maxMessageBytes) {
        ZMQ.Socket s = ctx.createSocket(type);
        common(s, maxMessageBytes);
        if (identity != null) s.setIdentity(identity);
        if (keys != null) {
            // The cluster keypair is every client's own keypair, and its public key is every server's.
            s.setCurvePublicKey(keys.publicKey());
            s.setCurveSecretKey(keys.secretKey());
            s.setCurveServerKey(keys.publicKey());
        }
        return s;
    }

    static void requireKeyForBind(String endpoint, ClusterKeys keys) {
        if (keys == null && !Endpoints.isLoopback(endpoint)) {
            throw new IllegalArgumentException("binding " + endpoint + " (not a loopback address) requires a cluster key: "
                    + "create one with `dpserve keygen --out FILE`, copy FILE to every node and pass "
                    + "--cluster-key-file FILE to every dpserve process");
        }
    }

    static String boundEndpoint(ZMQ.Socket s) {
        return s.getLastEndpoint();
    }

    private static void common(ZMQ.Socket s, int maxMessageBytes) {
        // Unlimited queues as in vLLM: a request or output must never be dropped by a high-water mark.
        s.setSndHWM(0);
        s.setRcvHWM(0);
        s.setHandshakeIvl(HANDSHAKE_IVL_MILLIS);
        if (maxMessageBytes > 0) s.setMaxMsgSize(maxMessageBytes);
    }

    /** Starts an event monitor on {@code s} and returns the PAIR that receives its events (same thread as the caller). */
    static ZMQ.Socket monitor(ZContext ctx, ZMQ.Socket s, int events) {
        String address = "inproc://dpserve-monitor-" + MONITOR_IDS.incrementAndGet();
        if (!s.monitor(address, events)) throw new IllegalStateException("cannot monitor socket at " + address);
        ZMQ.Socket pair = ctx.createSocket(SocketType.PAIR);
        pair.connect(address);
        return pair;
    }

    /**
     * Receives one multipart message without waiting, or null if none is queued.
     * Frames beyond {@code maxFrames} are drained and the message is reported as oversized by
     * returning a list of {@code maxFrames + 1} entries (the caller rejects it).
     */
    static List<byte[]> receiveMultipart(ZMQ.Socket s, int maxFrames) {
        byte[] first = s.recv(ZMQ.DONTWAIT);
        if (first == null) return null;
        List<byte[]> frames = new ArrayList<>(2);
        frames.add(first);
        while (s.hasReceiveMore()) {
            byte[] next = s.recv(0);
            if (frames.size() <= maxFrames) frames.add(next);
        }
        return frames;
    }

    static long remainingMillis(long deadlineNanos) {
        return Math.max(0, (deadlineNanos - System.nanoTime() + 999_999) / 1_000_000);
    }
}
