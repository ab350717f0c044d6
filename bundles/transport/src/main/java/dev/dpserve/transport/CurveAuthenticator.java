// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.transport;

import org.zeromq.SocketType;
import org.zeromq.ZContext;
import org.zeromq.ZMQ;

import java.lang.System.Logger.Level;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * The server side of the cluster-key check for one ZeroMQ context: a ZAP handler (RFC 27) on
 * {@code inproc://zeromq.zap.01} that admits only CURVE clients presenting the cluster public key,
 * plus an event hook on each of the context's CURVE server sockets, because a client with a
 * different keypair also uses a different server key and fails in the CURVE handshake before ZAP
 * is asked. The hook runs on JeroMQ's I/O thread, where the failed connection's channel is still
 * known, so a refusal names the peer's address (a monitor socket only gets a channel number).
 * Every refusal is logged at WARNING and kept in {@link #refusals()}.
 *
 * <p>Lifecycle: construct (binds the ZAP socket, so it must precede any bind of a server socket
 * in the context), {@link #watch} each server socket before binding it, {@link #start()}, and
 * {@link #close()} before the context is closed. One daemon thread; it blocks in poll when idle.
 */
final class CurveAuthenticator implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger(CurveAuthenticator.class.getName());
    private static final int MAX_KEPT_REFUSALS = 100;
    private static final int FAILURE_EVENTS = ZMQ.HANDSHAKE_FAILED_PROTOCOL | ZMQ.HANDSHAKE_FAILED_NO_DETAIL;

    private final ZContext ctx;
    private final ClusterKeys keys;
    private final String owner;
    private final ZMQ.Socket zap;
    private final ZMQ.Socket stopReceiver;
    private final ZMQ.Socket stopSender;
    private final List<String> refusals = new CopyOnWriteArrayList<>();
    /** Per I/O thread: the failed handshake whose DISCONNECTED event (which carries the channel) comes next. */
    private final ThreadLocal<String> pendingFailure = new ThreadLocal<>();
    private Thread thread;

    CurveAuthenticator(ZContext ctx, ClusterKeys keys, String owner) {
        this.ctx = ctx;
        this.keys = keys;
        this.owner = owner;
        this.zap = ctx.createSocket(SocketType.REP);
        zap.bind("inproc://zeromq.zap.01");
        String stopAddress = "inproc://dpserve-zap-stop-" + System.identityHashCode(this);
        this.stopReceiver = ctx.createSocket(SocketType.PAIR);
        stopReceiver.bind(stopAddress);
        this.stopSender = ctx.createSocket(SocketType.PAIR);
        stopSender.connect(stopAddress);
    }

    /** Watches a CURVE server socket for failed handshakes; call before binding it. */
    void watch(ZMQ.Socket server, String name) {
        if (thread != null) throw new IllegalStateException("watch() after start()");
        // JeroMQ reports a failed handshake, then DISCONNECTED with the connection's channel, on the same I/O thread.
        server.base().setEventHook(event -> onEvent(event, name), FAILURE_EVENTS | ZMQ.EVENT_DISCONNECTED);
    }

    private void onEvent(zmq.ZMQ.Event event, String name) {
        if ((event.event & FAILURE_EVENTS) != 0) {
            pendingFailure.set(errorName(event.arg));
            return;
        }
        String failure = pendingFailure.get();
        if (failure == null) return; // an ordinary disconnect
        pendingFailure.remove();
        String peer = "an unknown peer";
        if (event.arg instanceof java.nio.channels.SocketChannel channel) {
            try {
                peer = String.valueOf(channel.getRemoteAddress()).replaceFirst("^/", "");
            } catch (java.io.IOException | RuntimeException e) {
                // closed already: the address is gone
            }
        }
        refuse("refused a connection from " + peer + " to " + owner + " (" + name + "): the CurveZMQ handshake failed ("
                + failure + "), the peer uses a different cluster key; check --cluster-key-file on that node");
    }

    void start() {
        thread = new Thread(this::run, "dpserve-zap-" + owner);
        thread.setDaemon(true);
        thread.start();
    }

    /** Refusal messages so far (the latest {@value #MAX_KEPT_REFUSALS}). Thread-safe. */
    List<String> refusals() { return List.copyOf(refusals); }

    @Override
    public void close() {
        if (thread != null) {
            stopSender.send(new byte[] {0}, 0);
            try {
                thread.join(5000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    private void run() {
        ZMQ.Poller poller = ctx.createPoller(2);
        int zapIndex = poller.register(zap, ZMQ.Poller.POLLIN);
        int stopIndex = poller.register(stopReceiver, ZMQ.Poller.POLLIN);
        try {
            while (!Thread.currentThread().isInterrupted()) {
                poller.poll(-1);
                if (poller.pollin(stopIndex)) return;
                if (poller.pollin(zapIndex)) handleZap();
            }
        } catch (RuntimeException e) {
            // The context is closing under us (ETERM) or a ZAP frame was malformed beyond repair.
            if (!ctx.isClosed()) LOG.log(Level.ERROR, "ZAP handler of " + owner + " stopped", e);
        } finally {
            poller.close();
        }
    }

    private void handleZap() {
        List<byte[]> f = new ArrayList<>();
        do {
            f.add(zap.recv(0));
        } while (zap.hasReceiveMore());
        // version, request id, domain, address, identity, mechanism, credentials...
        String requestId = f.size() > 1 ? new String(f.get(1), StandardCharsets.UTF_8) : "";
        String address = f.size() > 3 ? new String(f.get(3), StandardCharsets.UTF_8) : "?";
        String mechanism = f.size() > 5 ? new String(f.get(5), StandardCharsets.UTF_8) : "?";
        boolean ok = f.size() > 6 && "CURVE".equals(mechanism) && keys.isClusterPublicKey(f.get(6));
        if (!ok) {
            refuse("refused " + mechanism + " client from " + address + " on " + owner
                    + ": it did not present this cluster's key (check --cluster-key-file on that node)");
        }
        zap.sendMore("1.0");
        zap.sendMore(requestId);
        zap.sendMore(ok ? "200" : "400");
        zap.sendMore(ok ? "OK" : "wrong cluster key");
        zap.sendMore("");
        zap.send("");
    }

    private static String errorName(Object arg) {
        if (!(arg instanceof Integer code)) return String.valueOf(arg);
        try {
            return org.zeromq.ZMonitor.ProtocolCode.findByCode(code).name();
        } catch (RuntimeException e) {
            try {
                return ZMQ.Error.findByCode(code).name();
            } catch (RuntimeException e2) {
                return "error " + code;
            }
        }
    }

    private synchronized void refuse(String message) {
        LOG.log(Level.WARNING, message);
        if (refusals.size() >= MAX_KEPT_REFUSALS) refusals.removeFirst();
        refusals.add(message);
    }
}
