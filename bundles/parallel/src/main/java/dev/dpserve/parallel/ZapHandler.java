// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.parallel;

import org.zeromq.SocketType;
import org.zeromq.ZContext;
import org.zeromq.ZMQ;

import java.lang.System.Logger.Level;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.List;

/**
 * ZAP (RFC 27) for one context: admits CURVE clients that present the cluster public key, refuses
 * everyone else with a log line. Bound before the server socket; one daemon thread, blocked in
 * poll when idle; {@link #close()} before the context closes.
 */
final class ZapHandler implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger(ZapHandler.class.getName());

    private final byte[] clusterPublicKey;
    private final ZMQ.Socket rep;
    private final ZMQ.Socket stopIn;
    private final ZMQ.Socket stopOut;
    private final Thread thread;
    private final ZContext ctx;

    ZapHandler(ZContext ctx, byte[] clusterPublicKey) {
        this.ctx = ctx;
        this.clusterPublicKey = clusterPublicKey.clone();
        rep = ctx.createSocket(SocketType.REP);
        rep.bind("inproc://zeromq.zap.01");
        String stop = "inproc://dpserve-parallel-zap-stop-" + System.identityHashCode(this);
        stopIn = ctx.createSocket(SocketType.PAIR);
        stopIn.bind(stop);
        stopOut = ctx.createSocket(SocketType.PAIR);
        stopOut.connect(stop);
        thread = Thread.ofPlatform().name("dpserve-dp-group-zap").daemon().start(this::run);
    }

    private void run() {
        ZMQ.Poller poller = ctx.createPoller(2);
        int repIndex = poller.register(rep, ZMQ.Poller.POLLIN);
        int stopIndex = poller.register(stopIn, ZMQ.Poller.POLLIN);
        try {
            while (true) {
                poller.poll(-1);
                if (poller.pollin(stopIndex)) return;
                if (poller.pollin(repIndex)) answer();
            }
        } catch (RuntimeException e) {
            if (!ctx.isClosed()) LOG.log(Level.ERROR, "DP group ZAP handler stopped", e);
        } finally {
            poller.close();
        }
    }

    private void answer() {
        List<byte[]> f = new ArrayList<>();
        do {
            f.add(rep.recv(0));
        } while (rep.hasReceiveMore());
        String requestId = f.size() > 1 ? new String(f.get(1), StandardCharsets.UTF_8) : "";
        String address = f.size() > 3 ? new String(f.get(3), StandardCharsets.UTF_8) : "?";
        boolean ok = f.size() > 6 && "CURVE".equals(new String(f.get(5), StandardCharsets.UTF_8))
                && MessageDigest.isEqual(clusterPublicKey, f.get(6));
        if (!ok) LOG.log(Level.WARNING, "DP group: refused a client from " + address + " without this cluster's key");
        rep.sendMore("1.0");
        rep.sendMore(requestId);
        rep.sendMore(ok ? "200" : "400");
        rep.sendMore(ok ? "OK" : "wrong cluster key");
        rep.sendMore("");
        rep.send("");
    }

    @Override
    public void close() {
        stopOut.send(new byte[] {0}, 0);
        try {
            thread.join(2000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
