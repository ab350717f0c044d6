// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.transport;

import dev.dpserve.api.protocol.CoordinatorReady;
import dev.dpserve.api.protocol.CoordinatorStats;
import dev.dpserve.api.protocol.EngineOutputs;
import dev.dpserve.api.protocol.FirstRequest;
import dev.dpserve.api.protocol.ProtocolMessage;
import dev.dpserve.api.protocol.StartDpWave;
import org.zeromq.SocketType;
import org.zeromq.ZContext;
import org.zeromq.ZMQ;

import java.lang.System.Logger.Level;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The DP coordinator's sockets (spec 2.1, 2.2), all bound on random ports of {@code bindHost}:
 * <ul>
 *   <li>engine control, XPUB (verbose, so every engine's subscription is seen): wave starts and READY to engines;</li>
 *   <li>engine output, PULL: stats, wave_complete and start_wave from engines;</li>
 *   <li>front-end publish, XPUB: {@link CoordinatorStats} to front ends, and {@link FirstRequest}
 *       from them (messages a front end's XSUB sends upstream).</li>
 * </ul>
 * Every payload is a single frame whose tag is never 0x00/0x01, so XPUB never mistakes a message
 * for a subscription; frames that do start with those bytes are subscriptions and are not messages.
 *
 * <p>Not thread-safe: the coordinator's single loop thread calls everything.
 */
public final class CoordinatorSockets implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger(CoordinatorSockets.class.getName());

    private final ZContext ctx = new ZContext();
    private final ProtocolCodec codec;
    private final CurveAuthenticator authenticator;
    private final ZMQ.Socket engineControl; // XPUB
    private final ZMQ.Socket engineOutput;  // PULL
    private final ZMQ.Socket frontEndPublish; // XPUB
    private final ZMQ.Poller poller;
    private final int engineOutputIndex;
    private final int frontEndIndex;
    private final AtomicLong rejectedFrames = new AtomicLong();
    private int engineSubscriptions;

    /**
     * @param bindHost an address of this machine that engines and front ends can reach
     * @param keys     the cluster key, or null for a plain loopback deployment
     */
    public CoordinatorSockets(String bindHost, ClusterKeys keys, ProtocolCodec codec) {
        this(bindHost, 0, 0, 0, keys, codec);
    }

    /**
     * Binds on given ports (0 = a random free port): a coordinator in its own process binds the
     * ports its launcher chose and passed to the front end.
     */
    public CoordinatorSockets(String bindHost, int engineControlPort, int engineOutputPort, int frontEndPort,
                              ClusterKeys keys, ProtocolCodec codec) {
        this.codec = codec;
        String template = Endpoints.tcp(bindHost, 0);
        try {
            Sockets.requireKeyForBind(template, keys);
            this.authenticator = keys == null ? null : new CurveAuthenticator(ctx, keys, "coordinator " + bindHost);
            int control = codec.limits().maxControlFrameBytes();
            this.engineControl = Sockets.bind(ctx, SocketType.XPUB, Endpoints.tcp(bindHost, engineControlPort), keys,
                    authenticator, control);
            engineControl.setXpubVerbose(true);
            this.engineOutput = Sockets.bind(ctx, SocketType.PULL, Endpoints.tcp(bindHost, engineOutputPort), keys, authenticator,
                    Math.max(codec.limits().maxOutputFrameBytes(), control));
            this.frontEndPublish = Sockets.bind(ctx, SocketType.XPUB, Endpoints.tcp(bindHost, frontEndPort), keys,
                    authenticator, control);
            if (authenticator != null) authenticator.start();
            this.poller = ctx.createPoller(3);
            this.engineOutputIndex = poller.register(engineOutput, ZMQ.Poller.POLLIN);
            this.frontEndIndex = poller.register(frontEndPublish, ZMQ.Poller.POLLIN);
            poller.register(engineControl, ZMQ.Poller.POLLIN); // late (re)subscriptions, drained in receive
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    /** For {@link dev.dpserve.api.protocol.EngineInit#coordinatorInputAddress()}. */
    public String engineControlEndpoint() { return Sockets.boundEndpoint(engineControl); }

    /** For {@link dev.dpserve.api.protocol.EngineInit#coordinatorOutputAddress()}. */
    public String engineOutputEndpoint() { return Sockets.boundEndpoint(engineOutput); }

    /** Where front ends connect their {@link CoordinatorClient}. */
    public String frontEndPublishEndpoint() { return Sockets.boundEndpoint(frontEndPublish); }

    public List<String> refusedPeers() { return authenticator == null ? List.of() : authenticator.refusals(); }

    public long rejectedFrames() { return rejectedFrames.get(); }

    /**
     * Waits for {@code engines} subscriptions on the engine control socket, then publishes
     * {@link CoordinatorReady}: from then on every engine receives every wave start.
     *
     * @throws HandshakeException if fewer engines subscribed within {@code timeout}
     */
    public void awaitEngineSubscriptions(int engines, Duration timeout) throws HandshakeException {
        long deadline = System.nanoTime() + timeout.toNanos();
        ZMQ.Poller only = ctx.createPoller(1);
        only.register(engineControl, ZMQ.Poller.POLLIN);
        try {
            while (engineSubscriptions < engines) {
                long wait = Sockets.remainingMillis(deadline);
                if (wait <= 0) throw new HandshakeException("only " + engineSubscriptions + " of " + engines
                        + " DP engines subscribed to the coordinator at " + engineControlEndpoint() + " within " + timeout.toSeconds() + " s");
                only.poll(wait);
                drainEngineControl();
            }
        } finally {
            only.close();
        }
        publish(engineControl, new CoordinatorReady(engines));
    }

    /** Publishes a wave start to every engine. */
    public void publishToEngines(StartDpWave wave) throws ProtocolException {
        publish(engineControl, wave);
    }

    /** Publishes load and wave state to every front end. */
    public void publishToFrontEnds(CoordinatorStats stats) throws ProtocolException {
        publish(frontEndPublish, stats);
    }

    /**
     * The next message for the coordinator: {@link EngineOutputs} (stats, wave events) from an
     * engine or {@link FirstRequest} from a front end. Subscriptions and bad frames are skipped.
     *
     * @return null if nothing arrived within {@code timeout} (the coordinator's publish tick)
     */
    public ProtocolMessage receive(Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            drainEngineControl();
            byte[] frame;
            while ((frame = engineOutput.recv(ZMQ.DONTWAIT)) != null) {
                while (engineOutput.hasReceiveMore()) engineOutput.recv(0);
                try {
                    return codec.decode(frame, EngineOutputs.class);
                } catch (ProtocolException e) {
                    reject("engine output", e);
                }
            }
            while ((frame = frontEndPublish.recv(ZMQ.DONTWAIT)) != null) {
                while (frontEndPublish.hasReceiveMore()) frontEndPublish.recv(0);
                if (isSubscription(frame)) continue;
                try {
                    return codec.decode(frame, FirstRequest.class);
                } catch (ProtocolException e) {
                    reject("front-end", e);
                }
            }
            long wait = Sockets.remainingMillis(deadline);
            if (wait <= 0) return null;
            poller.poll(wait);
        }
    }

    private void drainEngineControl() {
        byte[] frame;
        while ((frame = engineControl.recv(ZMQ.DONTWAIT)) != null) {
            while (engineControl.hasReceiveMore()) engineControl.recv(0);
            if (frame.length == 1 && frame[0] == 1) {
                engineSubscriptions++;
            } else if (!isSubscription(frame)) {
                reject("engine control", new ProtocolException("engines send nothing but subscriptions here ("
                        + frame.length + " bytes)"));
            }
        }
    }

    private static boolean isSubscription(byte[] frame) {
        return frame.length > 0 && (frame[0] == 0 || frame[0] == 1);
    }

    private void publish(ZMQ.Socket socket, ProtocolMessage message) {
        try {
            socket.send(codec.encode(message), 0);
        } catch (ProtocolException e) {
            throw new IllegalStateException("cannot encode " + message, e); // coordinator messages are tiny
        }
    }

    private void reject(String link, ProtocolException e) {
        rejectedFrames.incrementAndGet();
        LOG.log(Level.WARNING, "coordinator dropped a frame from the " + link + " socket: " + e.getMessage());
    }

    @Override
    public void close() {
        if (authenticator != null) authenticator.close();
        ctx.close();
    }
}
