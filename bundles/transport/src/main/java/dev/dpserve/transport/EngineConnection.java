// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.transport;

import dev.dpserve.api.protocol.AddRequest;
import dev.dpserve.api.protocol.CoordinatorReady;
import dev.dpserve.api.protocol.EngineDead;
import dev.dpserve.api.protocol.EngineInit;
import dev.dpserve.api.protocol.EngineInput;
import dev.dpserve.api.protocol.EngineOutputs;
import dev.dpserve.api.protocol.ProtocolMessage;
import dev.dpserve.api.protocol.StartDpWave;
import dev.dpserve.api.protocol.UtilityCall;
import dev.dpserve.api.protocol.AbortRequests;
import org.zeromq.SocketType;
import org.zeromq.ZContext;
import org.zeromq.ZMQ;

import java.lang.System.Logger.Level;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

/**
 * An engine's steady-state sockets, built from the head's {@link EngineInit} (spec 2.2): per front
 * end a DEALER (rank identity) to its request ROUTER and a PUSH to its output PULL; with a
 * coordinator an XSUB to its wave-control XPUB and a PUSH to its stats PULL. Everything connects;
 * nothing binds, so an engine node needs no open ports.
 *
 * <p>Threading: {@link #receive} and {@link #awaitCoordinatorReady} from one thread (the engine's
 * input loop), the {@code send*} methods from one thread (its output path); the two may differ
 * because they use disjoint sockets. {@link #close()} after both have stopped.
 */
public final class EngineConnection implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger(EngineConnection.class.getName());
    private static final int LINGER_MILLIS = 4000; // last outputs and ENGINE_DEAD still reach the front end

    private final ZContext ctx = new ZContext();
    private final ProtocolCodec codec;
    private final int dpRank;
    private final List<ZMQ.Socket> requestSockets = new ArrayList<>();
    private final List<ZMQ.Socket> outputSockets = new ArrayList<>();
    private final ZMQ.Socket coordinatorControl;  // XSUB, or null
    private final ZMQ.Socket coordinatorOutput;   // PUSH, or null
    private final ZMQ.Poller poller;
    private final int coordinatorIndex;
    private final int[] requestIndex;
    private final AtomicLong rejectedFrames = new AtomicLong();
    private boolean coordinatorReady;

    /**
     * Connects every socket and announces this engine's identity on each request link (the empty
     * frame of spec 2.3 step 5).
     *
     * @param keys the cluster key, or null for a plain loopback deployment
     */
    public EngineConnection(int dpRank, EngineInit init, ClusterKeys keys, ProtocolCodec codec) {
        this.codec = codec;
        this.dpRank = dpRank;
        ctx.setLinger(LINGER_MILLIS);
        byte[] identity = Endpoints.rankIdentity(dpRank);
        ProtocolLimits limits = codec.limits();
        for (String address : init.requestAddresses()) {
            ZMQ.Socket dealer = Sockets.client(ctx, SocketType.DEALER, keys, identity,
                    Math.max(limits.maxRequestFrameBytes(), limits.maxControlFrameBytes()));
            dealer.connect(address);
            dealer.send(new byte[0], 0); // lets the front end's ROUTER learn our identity
            requestSockets.add(dealer);
        }
        for (String address : init.outputAddresses()) {
            ZMQ.Socket push = Sockets.client(ctx, SocketType.PUSH, keys, null, 0);
            push.connect(address);
            outputSockets.add(push);
        }
        if (init.hasCoordinator()) {
            coordinatorControl = Sockets.client(ctx, SocketType.XSUB, keys, null, limits.maxControlFrameBytes());
            coordinatorControl.connect(init.coordinatorInputAddress());
            coordinatorControl.send(new byte[] {1}, 0); // subscribe to everything
            coordinatorOutput = Sockets.client(ctx, SocketType.PUSH, keys, null, 0);
            coordinatorOutput.connect(init.coordinatorOutputAddress());
        } else {
            coordinatorControl = null;
            coordinatorOutput = null;
            coordinatorReady = true;
        }
        poller = ctx.createPoller(requestSockets.size() + 1);
        coordinatorIndex = coordinatorControl == null ? -1 : poller.register(coordinatorControl, ZMQ.Poller.POLLIN);
        requestIndex = new int[requestSockets.size()];
        for (int i = 0; i < requestSockets.size(); i++) requestIndex[i] = poller.register(requestSockets.get(i), ZMQ.Poller.POLLIN);
    }

    public int dpRank() { return dpRank; }

    /** Frames dropped because they were malformed, oversized or not allowed on their link. */
    public long rejectedFrames() { return rejectedFrames.get(); }

    /**
     * Waits for the coordinator's READY, which it publishes once every engine subscribed (so no
     * wave start can be lost). Returns at once without a coordinator. The coordinator publishes
     * nothing before READY, so anything else seen here is logged and dropped.
     *
     * @throws HandshakeException if the coordinator is not ready in time
     */
    public void awaitCoordinatorReady(Duration timeout) throws HandshakeException {
        if (coordinatorReady) return;
        long deadline = System.nanoTime() + timeout.toNanos();
        ZMQ.Poller only = ctx.createPoller(1);
        only.register(coordinatorControl, ZMQ.Poller.POLLIN);
        try {
            while (!coordinatorReady) {
                long wait = Sockets.remainingMillis(deadline);
                if (wait <= 0) throw new HandshakeException("DP rank " + dpRank + ": the coordinator did not publish READY within "
                        + timeout.toSeconds() + " s (it waits until every DP engine has subscribed)");
                only.poll(wait);
                byte[] frame = coordinatorControl.recv(ZMQ.DONTWAIT);
                if (frame == null) continue;
                try {
                    ProtocolMessage m = codec.decode(frame);
                    if (m instanceof CoordinatorReady) coordinatorReady = true;
                    else LOG.log(Level.WARNING, "DP rank " + dpRank + ": ignored " + m.getClass().getSimpleName() + " before the coordinator was ready");
                } catch (ProtocolException e) {
                    reject("coordinator", e);
                }
            }
        } finally {
            only.close();
        }
    }

    /**
     * The next input: {@link AddRequest}, {@link AbortRequests}, {@link UtilityCall} from a front
     * end or {@link StartDpWave} from the coordinator; wave control is read first. Bad frames are
     * logged and skipped.
     *
     * @param timeout how long to block (the paused engine's zero-CPU wait); {@link Duration#ZERO} polls
     * @return the input, or null if none arrived in time
     */
    public EngineInput receive(Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            EngineInput next = next();
            if (next != null) return next;
            long wait = Sockets.remainingMillis(deadline);
            if (wait <= 0) return null;
            poller.poll(wait);
        }
    }

    private EngineInput next() {
        if (coordinatorControl != null) {
            byte[] frame;
            while ((frame = coordinatorControl.recv(ZMQ.DONTWAIT)) != null) {
                try {
                    ProtocolMessage m = codec.decode(frame);
                    if (m instanceof StartDpWave wave) return wave;
                    if (!(m instanceof CoordinatorReady)) {
                        throw new ProtocolException(m.getClass().getSimpleName() + " is not allowed on the coordinator link");
                    }
                    coordinatorReady = true;
                } catch (ProtocolException e) {
                    reject("coordinator", e);
                }
            }
        }
        for (int i = 0; i < requestSockets.size(); i++) {
            List<byte[]> frames;
            while ((frames = Sockets.receiveMultipart(requestSockets.get(i), 1)) != null) {
                try {
                    if (frames.size() != 1) throw new ProtocolException("multipart message of " + frames.size() + "+ frames");
                    EngineInput in = codec.decode(frames.getFirst(), EngineInput.class);
                    if (in instanceof StartDpWave) throw new ProtocolException("START_DP_WAVE is only accepted from the coordinator");
                    return in;
                } catch (ProtocolException e) {
                    reject("front end " + i, e);
                }
            }
        }
        return null;
    }

    /**
     * Sends a batch to front end {@code clientIndex} (its {@link AddRequest#clientIndex()}).
     *
     * @throws ProtocolException if the batch breaks a limit (split it)
     */
    public void send(int clientIndex, EngineOutputs outputs) throws ProtocolException {
        outputSockets.get(clientIndex).send(codec.encode(outputs), 0);
    }

    /** Sends stats or wave events to the coordinator; dropped (with a debug line) if there is none. */
    public void sendToCoordinator(EngineOutputs outputs) throws ProtocolException {
        if (coordinatorOutput == null) {
            LOG.log(Level.DEBUG, "no coordinator; dropped " + outputs);
            return;
        }
        coordinatorOutput.send(codec.encode(outputs), 0);
    }

    /** Tells every front end that this engine is dead (spec 3.2, ENGINE_CORE_DEAD). */
    public void broadcastDead(String reason) {
        String r = reason.length() > codec.limits().maxTextChars() ? reason.substring(0, codec.limits().maxTextChars()) : reason;
        try {
            byte[] frame = codec.encode(new EngineDead(dpRank, r));
            for (ZMQ.Socket s : outputSockets) s.send(frame, 0);
        } catch (ProtocolException e) {
            LOG.log(Level.ERROR, "cannot encode ENGINE_DEAD", e);
        }
    }

    private void reject(String link, ProtocolException e) {
        rejectedFrames.incrementAndGet();
        LOG.log(Level.WARNING, "DP rank " + dpRank + ": dropped a frame from the " + link + ": " + e.getMessage());
    }

    /** Closes every socket, waiting up to 4 s for queued outputs to leave. */
    @Override
    public void close() {
        poller.close();
        ctx.close();
    }
}
