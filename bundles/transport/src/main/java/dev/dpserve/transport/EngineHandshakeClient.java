// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.transport;

import dev.dpserve.api.protocol.EngineHello;
import dev.dpserve.api.protocol.EngineInit;
import dev.dpserve.api.protocol.EngineReady;
import dev.dpserve.api.protocol.HandshakeRejected;
import dev.dpserve.api.protocol.ProtocolMessage;
import org.zeromq.SocketType;
import org.zeromq.ZContext;
import org.zeromq.ZMQ;

import java.lang.System.Logger.Level;
import java.time.Duration;

/**
 * An engine's side of the startup handshake: a DEALER with the 2-byte rank identity connected to
 * the head's rpc endpoint. {@link #hello} sends HELLO and waits for INIT; after loading the model
 * and connecting the steady-state sockets the engine calls {@link #ready}, then {@link #close()}.
 *
 * <p>Connect-before-bind is fine: an engine started before its head keeps retrying until the head
 * binds, within the timeout. A head that accepts TCP but drops the connection before answering
 * (what a failed security handshake looks like from here: a different cluster key, or a key on
 * one side only) is reported as soon as {@link ConnectionWatch} sees the pattern (about a second)
 * instead of waiting for the full timeout.
 *
 * <p>Not thread-safe: the engine's startup thread calls everything.
 */
public final class EngineHandshakeClient implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger(EngineHandshakeClient.class.getName());
    private static final int LINGER_MILLIS = 5000; // READY must reach the head even if we close right after
    private static final long HELLO_RESEND_MILLIS = 1000;
    private static final int SEND_TIMEOUT_MILLIS = 5000;

    private final ZContext ctx = new ZContext();
    private final ProtocolCodec codec;
    private final String headEndpoint;
    private final int dpRank;
    private final boolean curve;
    private final ZMQ.Socket dealer;
    private final ConnectionWatch watch;

    /**
     * @param headEndpoint the head's rpc endpoint, e.g. {@code tcp://10.0.0.1:13389}
     * @param keys         the cluster key, or null for a plain loopback deployment
     */
    public EngineHandshakeClient(String headEndpoint, int dpRank, ClusterKeys keys, ProtocolCodec codec) {
        this.codec = codec;
        this.headEndpoint = headEndpoint;
        this.dpRank = dpRank;
        this.curve = keys != null;
        ctx.setLinger(LINGER_MILLIS);
        this.dealer = Sockets.client(ctx, SocketType.DEALER, keys, Endpoints.rankIdentity(dpRank), codec.limits().maxControlFrameBytes());
        dealer.setSendTimeOut(SEND_TIMEOUT_MILLIS);
        this.watch = new ConnectionWatch(ctx, dealer);
        dealer.connect(headEndpoint);
    }

    /**
     * Sends HELLO and waits for the head's INIT.
     *
     * @throws HandshakeException if the head rejects this engine (with its reason), refuses the
     *                            connection (wrong cluster key), or does not answer in time
     */
    public EngineInit hello(boolean local, boolean headless, Duration timeout) throws HandshakeException {
        EngineHello hello = EngineHello.of(dpRank, local, headless);
        trySend(hello);
        long deadline = System.nanoTime() + timeout.toNanos();
        long nextResend = System.nanoTime() + HELLO_RESEND_MILLIS * 1_000_000;
        ZMQ.Poller poller = ctx.createPoller(2);
        poller.register(dealer, ZMQ.Poller.POLLIN);
        poller.register(watch.socket(), ZMQ.Poller.POLLIN);
        try {
            while (true) {
                long wait = Sockets.remainingMillis(deadline);
                if (wait <= 0) throw failed(noAnswer(timeout));
                // Short polls: the refusal check below is time-based (see ConnectionWatch).
                poller.poll(Math.min(wait, Math.min(HELLO_RESEND_MILLIS, ConnectionWatch.GIVE_UP_MILLIS / 2)));
                if (System.nanoTime() > nextResend) {
                    // HELLO is idempotent at the head (it answers a repeated HELLO with the same INIT). A HELLO sent
                    // before the connection exists is queued and delivered once it does, so this is only a safety net.
                    trySend(hello);
                    nextResend = System.nanoTime() + HELLO_RESEND_MILLIS * 1_000_000;
                }
                byte[] frame; // read even without a pollin flag: a missed wake-up must not cost a reply
                while ((frame = dealer.recv(ZMQ.DONTWAIT)) != null) {
                    ProtocolMessage m;
                    try {
                        m = codec.decode(frame);
                    } catch (ProtocolException e) {
                        LOG.log(Level.WARNING, "dropped a frame from the head: " + e.getMessage());
                        continue;
                    }
                    switch (m) {
                        case EngineInit init -> {
                            return init;
                        }
                        case HandshakeRejected r -> throw failed("the head at " + headEndpoint
                                + " rejected DP rank " + dpRank + ": " + r.reason());
                        default -> LOG.log(Level.WARNING, "ignored " + m.getClass().getSimpleName() + " during the handshake");
                    }
                }
                watch.update();
                if (watch.refused()) throw failed(refused());
            }
        } finally {
            poller.close();
        }
    }

    /** Tells the head that this engine is ready to serve (queued; delivered within the close linger). */
    public void ready(EngineReady ready) throws HandshakeException {
        send(ready);
    }

    private void send(ProtocolMessage m) throws HandshakeException {
        try {
            if (!dealer.send(codec.encode(m), 0)) {
                throw new HandshakeException("could not send " + m.getClass().getSimpleName() + " to the head at " + headEndpoint
                        + " within " + SEND_TIMEOUT_MILLIS + " ms");
            }
        } catch (ProtocolException e) {
            throw new HandshakeException("cannot send " + m.getClass().getSimpleName() + ": " + e.getMessage());
        }
    }

    // A DEALER whose only connection is mid-handshake (or refused) blocks in send; HELLO is repeated anyway.
    private void trySend(EngineHello hello) throws HandshakeException {
        try {
            dealer.send(codec.encode(hello), ZMQ.DONTWAIT);
        } catch (ProtocolException e) {
            throw new HandshakeException("cannot send HELLO: " + e.getMessage());
        }
    }

    // Nothing queued on the dealer is worth delivering after a failed handshake: close() must not linger on it.
    private HandshakeException failed(String message) {
        dealer.setLinger(0);
        return new HandshakeException(message);
    }

    // Both failure messages start with the same diagnosis; the parenthesis says what was observed.
    private String refused() {
        return "no reply from the head at " + headEndpoint + ": refused: wrong cluster key or unreachable head (the head"
                + " accepted TCP and dropped the connection " + watch.drops() + " time(s) before answering, as it does when the "
                + (curve ? "CurveZMQ" : "ZMTP") + " security handshake fails). "
                + (curve ? "Check that --cluster-key-file holds the same key as on the head"
                         : "The head requires a cluster key: pass --cluster-key-file with the head's key file");
    }

    private String noAnswer(Duration timeout) {
        watch.update();
        String seen = watch.connects() == 0 ? "no TCP connection could be made"
                : watch.drops() > 0 ? "TCP connected " + watch.connects() + " times and was dropped " + watch.drops() + " times"
                : "TCP is connected but the head never answered, which is what a head with a different"
                        + " --cluster-key-file (or with none, or one where we have none) looks like";
        return "no reply from the head at " + headEndpoint + " within " + timeout.toSeconds()
                + " s: refused: wrong cluster key or unreachable head (" + seen + ")";
    }

    @Override
    public void close() {
        ctx.close();
    }
}
