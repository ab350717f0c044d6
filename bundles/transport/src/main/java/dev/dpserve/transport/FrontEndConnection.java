// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.transport;

import dev.dpserve.api.engine.EngineUnavailableException;
import dev.dpserve.api.protocol.EngineDead;
import dev.dpserve.api.protocol.EngineInput;
import dev.dpserve.api.protocol.EngineOutputs;
import dev.dpserve.api.protocol.ProtocolMessage;
import org.zeromq.SocketType;
import org.zeromq.ZContext;
import org.zeromq.ZMQ;
import org.zeromq.ZMQException;

import java.lang.System.Logger.Level;
import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A front end's engine links (spec 2.2): it binds a request ROUTER and an output PULL on random
 * ports of {@code bindHost}; engines connect to both with the addresses the head sends in
 * {@link dev.dpserve.api.protocol.EngineInit}. Requests are routed by the engines' 2-byte rank
 * identities, learned from the empty frame each engine sends first.
 *
 * <p>Threading: {@link #send} and {@link #awaitEngines} may be called from any thread (they
 * share the ROUTER under this object's lock); {@link #receiveOutput} from one output thread.
 * Lifecycle: bind in the constructor, {@link #close()} releases everything.
 */
public final class FrontEndConnection implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger(FrontEndConnection.class.getName());

    private final ZContext ctx = new ZContext();
    private final ProtocolCodec codec;
    private final CurveAuthenticator authenticator;
    private final ZMQ.Socket requests; // ROUTER
    private final ZMQ.Socket outputs;  // PULL
    private final String requestEndpoint;
    private final String outputEndpoint;
    private final Set<Integer> connectedRanks = new TreeSet<>(); // guarded by this
    private final AtomicLong rejectedFrames = new AtomicLong();
    private final ZMQ.Poller outputPoller;

    /**
     * @param bindHost an address of this machine that the engines can reach ({@code 127.0.0.1}
     *                 when every engine is local); never a wildcard, because the bound endpoint is
     *                 what engines are told to connect to
     * @param keys     the cluster key, or null for a plain loopback deployment
     * @throws IllegalArgumentException if a non-loopback host is bound without keys
     */
    public FrontEndConnection(String bindHost, ClusterKeys keys, ProtocolCodec codec) {
        this.codec = codec;
        String template = Endpoints.tcp(bindHost, 0);
        try {
            Sockets.requireKeyForBind(template, keys);
            this.authenticator = keys == null ? null : new CurveAuthenticator(ctx, keys, "front end " + bindHost);
            // Engines only send their empty identity frame here.
            this.requests = Sockets.bind(ctx, SocketType.ROUTER, template, keys, authenticator, 1024);
            requests.setRouterMandatory(true); // a request for an unknown rank fails loudly instead of vanishing
            requests.setRouterHandover(true);
            this.outputs = Sockets.bind(ctx, SocketType.PULL, template, keys, authenticator,
                    Math.max(codec.limits().maxOutputFrameBytes(), codec.limits().maxControlFrameBytes()));
            if (authenticator != null) authenticator.start();
            this.requestEndpoint = Sockets.boundEndpoint(requests);
            this.outputEndpoint = Sockets.boundEndpoint(outputs);
            this.outputPoller = ctx.createPoller(1);
            outputPoller.register(outputs, ZMQ.Poller.POLLIN);
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    /** Where engines connect their request DEALER. */
    public String requestEndpoint() { return requestEndpoint; }

    /** Where engines connect their output PUSH. */
    public String outputEndpoint() { return outputEndpoint; }

    /** Peers refused for a wrong or missing cluster key (empty without keys). */
    public List<String> refusedPeers() { return authenticator == null ? List.of() : authenticator.refusals(); }

    public long rejectedFrames() { return rejectedFrames.get(); }

    /** Ranks whose identity frame has arrived. */
    public synchronized Set<Integer> connectedRanks() {
        drainRequestSocket();
        return Set.copyOf(connectedRanks);
    }

    /**
     * Waits until every rank in {@code ranks} has announced itself on the request socket; before
     * that, requests cannot be routed to it.
     *
     * @throws HandshakeException naming the ranks still missing after {@code timeout}
     */
    public synchronized void awaitEngines(Collection<Integer> ranks, Duration timeout) throws HandshakeException {
        long deadline = System.nanoTime() + timeout.toNanos();
        ZMQ.Poller poller = ctx.createPoller(1);
        poller.register(requests, ZMQ.Poller.POLLIN);
        try {
            while (true) {
                drainRequestSocket();
                if (connectedRanks.containsAll(ranks)) return;
                long wait = Sockets.remainingMillis(deadline);
                if (wait <= 0) {
                    Set<Integer> missing = new TreeSet<>(ranks);
                    missing.removeAll(connectedRanks);
                    throw new HandshakeException("DP ranks " + missing + " did not connect to the front end's request socket "
                            + requestEndpoint + " within " + timeout.toSeconds() + " s");
                }
                poller.poll(wait);
            }
        } finally {
            poller.close();
        }
    }

    /**
     * Sends a request, abort or utility call to DP rank {@code rank}.
     *
     * @throws ProtocolException          if the message breaks a limit
     * @throws EngineUnavailableException if that rank is not connected
     */
    public synchronized void send(int rank, EngineInput message) throws ProtocolException {
        byte[] frame = codec.encode(message);
        drainRequestSocket();
        try {
            if (requests.sendMore(Endpoints.rankIdentity(rank)) && requests.send(frame, 0)) return;
        } catch (ZMQException e) {
            throw new EngineUnavailableException("DP rank " + rank + " is not connected: " + e.getMessage());
        }
        throw new EngineUnavailableException("DP rank " + rank + " is not connected");
    }

    /**
     * The next message from any engine: {@link EngineOutputs} or {@link EngineDead}. Bad frames are
     * logged and skipped.
     *
     * @return null if nothing arrived within {@code timeout}
     */
    public ProtocolMessage receiveOutput(Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            byte[] frame;
            while ((frame = outputs.recv(ZMQ.DONTWAIT)) != null) {
                while (outputs.hasReceiveMore()) outputs.recv(0); // engines send single frames
                try {
                    ProtocolMessage m = codec.decode(frame);
                    if (m instanceof EngineOutputs || m instanceof EngineDead) return m;
                    throw new ProtocolException(m.getClass().getSimpleName() + " is not allowed on the output link");
                } catch (ProtocolException e) {
                    rejectedFrames.incrementAndGet();
                    LOG.log(Level.WARNING, "dropped a frame on the output socket " + outputEndpoint + ": " + e.getMessage());
                }
            }
            long wait = Sockets.remainingMillis(deadline);
            if (wait <= 0) return null;
            outputPoller.poll(wait);
        }
    }

    // Engines send exactly one empty frame on connect; anything else here is dropped.
    private void drainRequestSocket() {
        List<byte[]> frames;
        while ((frames = Sockets.receiveMultipart(requests, 2)) != null) {
            int rank = Endpoints.rankOf(frames.getFirst());
            if (rank >= 0 && frames.size() == 2 && frames.get(1).length == 0) {
                if (connectedRanks.add(rank)) LOG.log(Level.INFO, "DP rank " + rank + " connected to " + requestEndpoint);
            } else {
                rejectedFrames.incrementAndGet();
                LOG.log(Level.WARNING, "dropped an unexpected message on the request socket " + requestEndpoint
                        + " (identity rank " + rank + ", " + frames.size() + " frames)");
            }
        }
    }

    @Override
    public void close() {
        if (authenticator != null) authenticator.close();
        ctx.close();
    }
}
