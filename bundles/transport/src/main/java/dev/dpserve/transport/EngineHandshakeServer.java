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
import org.zeromq.ZMQException;

import java.lang.System.Logger.Level;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Function;

/**
 * The head's side of the startup handshake (spec 2.3): a ROUTER bound on the fixed rpc endpoint.
 * Each expected engine goes NEW →(HELLO, answered with INIT)→ CONNECTED →(READY)→ READY.
 *
 * <p>Checks: the DEALER identity must equal the rank in HELLO; the protocol version must match;
 * the rank must be expected; {@code local} must match the deployment and a remote engine must be
 * headless. A mismatch for an expected rank is a deployment error: the engine gets
 * {@link HandshakeRejected} and {@link #awaitEngines} fails at once. An unexpected rank is rejected
 * and logged, and the wait goes on. Malformed frames are logged and dropped.
 *
 * <p>Lifecycle: the constructor binds, {@link #close()} unbinds and releases the context.
 * Not thread-safe: one thread (the launcher or front end's startup) calls everything.
 */
public final class EngineHandshakeServer implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger(EngineHandshakeServer.class.getName());
    private static final long PROGRESS_LOG_MILLIS = 10_000;

    /** An engine the head waits for: its global rank, and whether this head's launcher started it. */
    public record ExpectedEngine(int rank, boolean local) {}

    private enum State { NEW, CONNECTED, READY }

    private final ZContext ctx = new ZContext();
    private final ProtocolCodec codec;
    private final CurveAuthenticator authenticator;
    private final ZMQ.Socket router;
    private final java.util.Set<Integer> rejectedRanks = new java.util.HashSet<>(); // log each stray rank once
    private final String endpoint;

    /**
     * @param bindEndpoint e.g. {@code tcp://10.0.0.1:13389}; a non-loopback endpoint needs {@code keys}
     * @param keys         the cluster key, or null for a plain (loopback-only) deployment
     * @throws IllegalArgumentException if a non-loopback endpoint is bound without keys
     */
    public EngineHandshakeServer(String bindEndpoint, ClusterKeys keys, ProtocolCodec codec) {
        this.codec = codec;
        ctx.setLinger(1000); // a last INIT or rejection still leaves when startup fails right after it
        try {
            Sockets.requireKeyForBind(bindEndpoint, keys);
            this.authenticator = keys == null ? null : new CurveAuthenticator(ctx, keys, "handshake " + bindEndpoint);
            this.router = Sockets.bind(ctx, SocketType.ROUTER, bindEndpoint, keys, authenticator, codec.limits().maxControlFrameBytes());
            router.setRouterMandatory(true);
            router.setRouterHandover(true); // a restarted engine process replaces its old connection
            if (authenticator != null) authenticator.start();
            this.endpoint = Sockets.boundEndpoint(router);
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    /** The bound endpoint (with the actual port if 0 was asked for). */
    public String endpoint() { return endpoint; }

    /** Peers refused for a wrong or missing cluster key (empty without keys). */
    public List<String> refusedPeers() { return authenticator == null ? List.of() : authenticator.refusals(); }

    /**
     * Runs the handshake until every expected engine is READY.
     *
     * @param initFor builds the INIT reply for a validated HELLO (usually the same addresses for all)
     * @return READY messages by rank
     * @throws HandshakeException on timeout (naming the missing ranks and how far each got), or at
     *                            once on a deployment mismatch of an expected rank
     */
    public Map<Integer, EngineReady> awaitEngines(Collection<ExpectedEngine> expected,
                                                  Function<EngineHello, EngineInit> initFor,
                                                  Duration timeout) throws HandshakeException {
        Map<Integer, ExpectedEngine> byRank = new TreeMap<>();
        for (ExpectedEngine e : expected) byRank.put(e.rank(), e);
        Map<Integer, State> state = new TreeMap<>();
        for (int r : byRank.keySet()) state.put(r, State.NEW);
        Map<Integer, EngineReady> ready = new TreeMap<>();

        long deadline = System.nanoTime() + timeout.toNanos();
        long nextProgressLog = System.nanoTime() + PROGRESS_LOG_MILLIS * 1_000_000;
        ZMQ.Poller poller = ctx.createPoller(1);
        poller.register(router, ZMQ.Poller.POLLIN);
        try {
            while (ready.size() < byRank.size()) {
                long wait = Math.min(Sockets.remainingMillis(deadline), PROGRESS_LOG_MILLIS);
                if (wait <= 0) throw new HandshakeException(timeoutMessage(timeout, state));
                poller.poll(wait);
                if (System.nanoTime() > nextProgressLog) {
                    LOG.log(Level.INFO, "waiting for DP engines on " + endpoint + ": " + describe(state));
                    nextProgressLog = System.nanoTime() + PROGRESS_LOG_MILLIS * 1_000_000;
                }
                List<byte[]> frames;
                while ((frames = Sockets.receiveMultipart(router, 2)) != null) {
                    handle(frames, byRank, state, ready, initFor);
                }
            }
        } finally {
            poller.close();
        }
        LOG.log(Level.INFO, "all " + ready.size() + " DP engines are ready: " + ready.keySet());
        return ready;
    }

    /**
     * After startup: answers what still arrives on the rpc socket for up to {@code wait}, so that
     * nothing piles up unread and nothing goes unanswered. A HELLO (an engine restarted, or a node
     * started twice) is rejected with the reason; anything else is logged and dropped.
     */
    public void rejectLateArrivals(Duration wait) {
        ZMQ.Poller poller = ctx.createPoller(1);
        poller.register(router, ZMQ.Poller.POLLIN);
        try {
            poller.poll(Math.max(1, wait.toMillis()));
            List<byte[]> frames;
            while ((frames = Sockets.receiveMultipart(router, 2)) != null) {
                int rank = Endpoints.rankOf(frames.getFirst());
                if (frames.size() != 2) {
                    LOG.log(Level.WARNING, "dropped a handshake message of " + frames.size() + "+ frames from identity rank " + rank);
                    continue;
                }
                try {
                    ProtocolMessage m = codec.decode(frames.get(1));
                    if (m instanceof EngineHello hello) {
                        reject(frames.getFirst(), "the DP group is already complete; DP rank " + hello.dpRank()
                                + " cannot join a running deployment (restart the head to replace a rank)", false);
                    } else {
                        LOG.log(Level.WARNING, "ignored " + m.getClass().getSimpleName()
                                + " on the handshake socket after startup, from identity rank " + rank);
                    }
                } catch (ProtocolException e) {
                    LOG.log(Level.WARNING, "dropped a handshake frame from identity rank " + rank + ": " + e.getMessage());
                } catch (HandshakeException e) {
                    LOG.log(Level.WARNING, e.getMessage()); // not reached: late rejections are not fatal
                }
            }
        } finally {
            poller.close();
        }
    }

    private void handle(List<byte[]> frames, Map<Integer, ExpectedEngine> byRank, Map<Integer, State> state,
                        Map<Integer, EngineReady> ready, Function<EngineHello, EngineInit> initFor) throws HandshakeException {
        byte[] identity = frames.getFirst();
        int rank = Endpoints.rankOf(identity);
        if (frames.size() != 2) {
            LOG.log(Level.WARNING, "dropped a handshake message of " + frames.size() + "+ frames from identity rank " + rank);
            return;
        }
        ProtocolMessage message;
        try {
            message = codec.decode(frames.get(1));
        } catch (ProtocolException e) {
            LOG.log(Level.WARNING, "dropped a handshake frame from identity rank " + rank + ": " + e.getMessage());
            return;
        }
        switch (message) {
            case EngineHello hello -> onHello(identity, rank, hello, byRank, state, initFor);
            case EngineReady r -> {
                if (r.dpRank() != rank || state.get(rank) != State.CONNECTED) {
                    LOG.log(Level.WARNING, "ignored READY for rank " + r.dpRank() + " from identity rank " + rank
                            + " in state " + state.get(rank));
                    return;
                }
                EngineReady first = ready.values().stream().findFirst().orElse(null);
                if (first != null && !first.model().equals(r.model())) {
                    throw new HandshakeException("DP rank " + rank + " loaded a different model than rank " + first.dpRank()
                            + ": " + r.model() + " vs " + first.model() + "; every node must serve the same checkpoint");
                }
                state.put(rank, State.READY);
                ready.put(rank, r);
                LOG.log(Level.INFO, "DP engine " + rank + " is ready with " + r.numKvBlocks() + " KV blocks");
            }
            default -> LOG.log(Level.WARNING, "ignored " + message.getClass().getSimpleName()
                    + " on the handshake socket from identity rank " + rank);
        }
    }

    private void onHello(byte[] identity, int rank, EngineHello hello, Map<Integer, ExpectedEngine> byRank,
                         Map<Integer, State> state, Function<EngineHello, EngineInit> initFor) throws HandshakeException {
        if (hello.dpRank() != rank) {
            reject(identity, "HELLO for rank " + hello.dpRank() + " came with the identity of rank " + rank, false);
            return;
        }
        ExpectedEngine expected = byRank.get(rank);
        if (expected == null) {
            reject(identity, "DP rank " + rank + " is not part of this deployment (expected ranks " + byRank.keySet()
                    + "); check --data-parallel-start-rank and --data-parallel-size-local on that node", false);
            return;
        }
        if (hello.protocolVersion() != ProtocolMessage.VERSION) {
            reject(identity, "DP rank " + rank + " speaks protocol version " + hello.protocolVersion() + ", the head "
                    + ProtocolMessage.VERSION + "; run the same dpserve version on every node", true);
        }
        if (hello.local() != expected.local()) {
            reject(identity, "DP rank " + rank + " says local=" + hello.local() + " but the head expects it "
                    + (expected.local() ? "to be started by this launcher" : "on another node"), true);
        }
        if (!hello.local() && !hello.headless()) {
            reject(identity, "DP rank " + rank + " runs on another node and must be started with --headless", true);
        }
        State s = state.get(rank);
        if (s == State.READY) {
            reject(identity, "DP rank " + rank + " already joined; a second engine with the same rank is running", false);
            return;
        }
        send(identity, initFor.apply(hello));
        if (s == State.CONNECTED) {
            LOG.log(Level.DEBUG, "DP rank " + rank + " repeated HELLO; sent INIT again");
            return;
        }
        state.put(rank, State.CONNECTED);
        LOG.log(Level.INFO, "DP engine " + rank + " connected (" + (hello.local() ? "local" : "headless") + "), loading its model");
    }

    private void reject(byte[] identity, String reason, boolean fatal) throws HandshakeException {
        if (rejectedRanks.add(Endpoints.rankOf(identity)) || fatal) LOG.log(Level.ERROR, "refused engine: " + reason);
        try {
            send(identity, new HandshakeRejected(reason));
        } catch (RuntimeException e) {
            LOG.log(Level.DEBUG, "could not deliver the rejection", e);
        }
        if (fatal) throw new HandshakeException(reason);
    }

    private void send(byte[] identity, ProtocolMessage message) throws HandshakeException {
        try {
            byte[] frame = codec.encode(message);
            if (!router.sendMore(identity) || !router.send(frame, 0)) {
                LOG.log(Level.WARNING, "could not send " + message.getClass().getSimpleName() + " to engine " + Endpoints.rankOf(identity));
            }
        } catch (ProtocolException e) {
            throw new HandshakeException("cannot send " + message.getClass().getSimpleName() + ": " + e.getMessage());
        } catch (ZMQException e) {
            LOG.log(Level.WARNING, "engine " + Endpoints.rankOf(identity) + " went away before the reply: " + e.getMessage());
        }
    }

    private String timeoutMessage(Duration timeout, Map<Integer, State> state) {
        List<String> missing = new ArrayList<>();
        state.forEach((rank, s) -> {
            if (s == State.NEW) missing.add("rank " + rank + " (never connected)");
            else if (s == State.CONNECTED) missing.add("rank " + rank + " (connected, not ready: loading its model or waiting for the coordinator)");
        });
        String refused = refusedPeers().isEmpty() ? "" : "; refused peers: " + refusedPeers().getLast();
        return "DP engines did not join within " + timeout.toSeconds() + " s on " + endpoint + ": " + String.join(", ", missing)
                + ". Check that every node was started with --data-parallel-address pointing at this head, the same"
                + " --data-parallel-rpc-port and --cluster-key-file, and a matching --data-parallel-start-rank" + refused;
    }

    private static String describe(Map<Integer, State> state) {
        StringBuilder sb = new StringBuilder();
        for (State s : State.values()) {
            List<Integer> ranks = state.entrySet().stream().filter(e -> e.getValue() == s).map(Map.Entry::getKey).toList();
            if (!ranks.isEmpty()) sb.append(sb.isEmpty() ? "" : ", ").append(s.name().toLowerCase()).append(' ').append(ranks);
        }
        return sb.toString();
    }

    @Override
    public void close() {
        if (authenticator != null) authenticator.close();
        ctx.close();
    }
}
