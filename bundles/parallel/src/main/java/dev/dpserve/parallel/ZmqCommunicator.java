// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.parallel;

import dev.dpserve.api.parallel.CollectiveException;
import dev.dpserve.api.parallel.Communicator;
import dev.dpserve.api.parallel.GroupSpec;
import dev.dpserve.api.parallel.ReduceOp;
import org.zeromq.SocketType;
import org.zeromq.ZContext;
import org.zeromq.ZMQ;
import org.zeromq.ZMQException;

import java.lang.System.Logger.Level;
import java.time.Duration;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A {@link Communicator} over JeroMQ, a star around rank 0: rank 0 binds a ROUTER at
 * {@code endpoints[0]}, every other rank connects a DEALER whose identity is its rank (2 bytes,
 * little-endian). An all-reduce is gather at rank 0, reduce, broadcast back; every call carries a
 * sequence number, and rank 0 checks that all ranks are at the same call with the same operation
 * and length. With CURVE keys rank 0's ROUTER is a CurveZMQ server that admits only clients
 * presenting the cluster public key ({@link ZapHandler}).
 *
 * <p>Frames are raw little-endian binary ({@link Frames}), size-checked against
 * {@link Frames#MAX_VALUES}; a malformed frame is logged and dropped. A rank that does not take
 * part within the timeout fails the call on rank 0 (naming it), and rank 0 tells the others
 * (ABORT), so the whole group fails fast instead of each rank waiting out its own timeout.
 *
 * <p>Blocking waits are sliced into {@value #SLICE_MILLIS} ms polls so that {@link #close()} from
 * another thread ends a blocked call promptly; a paused engine makes no calls, so this costs
 * nothing while idle.
 */
final class ZmqCommunicator implements Communicator {

    private static final System.Logger LOG = System.getLogger(ZmqCommunicator.class.getName());
    static final int SLICE_MILLIS = 100;
    private static final long HELLO_RESEND_MILLIS = 500;
    private static final int HANDSHAKE_IVL_MILLIS = 2000; // see the transport's Sockets: JeroMQ's connect race

    private final int rank;
    private final int size;
    private final Duration timeout;
    private final ZContext ctx = new ZContext();
    private final ZMQ.Socket socket;
    private final ZapHandler zap;
    private final ReentrantLock lock = new ReentrantLock();
    private volatile boolean closed;
    private boolean broken; // a call failed: the ranks may disagree on the sequence now
    private long seq;
    private long totalNanos;

    private ZmqCommunicator(GroupSpec spec) {
        this.rank = spec.rank();
        this.size = spec.size();
        this.timeout = spec.timeout();
        ctx.setLinger(0);
        String endpoint = spec.endpoints().getFirst();
        byte[] pub = spec.curvePublicKey();
        byte[] secret = spec.curveSecretKey();
        ZMQ.Socket s = null;
        ZapHandler z = null;
        try {
            if (rank == 0) {
                if (pub != null) z = new ZapHandler(ctx, pub);
                s = ctx.createSocket(SocketType.ROUTER);
                common(s);
                s.setRouterMandatory(true);
                s.setRouterHandover(true);
                if (pub != null) {
                    s.setZAPDomain("dpserve");
                    s.setCurveSecretKey(secret);
                    s.setCurveServer(true);
                }
                s.bind(endpoint);
            } else {
                s = ctx.createSocket(SocketType.DEALER);
                common(s);
                s.setIdentity(new byte[] {(byte) rank, (byte) (rank >>> 8)});
                if (pub != null) {
                    s.setCurvePublicKey(pub);
                    s.setCurveSecretKey(secret);
                    s.setCurveServerKey(pub);
                }
                s.connect(endpoint);
            }
        } catch (ZMQException | IllegalArgumentException e) {
            if (z != null) z.close();
            ctx.close();
            throw new CollectiveException("DP group rank " + rank + ": cannot " + (rank == 0 ? "bind " : "connect ")
                    + endpoint + ": " + e.getMessage(), e);
        }
        this.socket = s;
        this.zap = z;
    }

    private static void common(ZMQ.Socket s) {
        s.setSndHWM(0);
        s.setRcvHWM(0);
        s.setHandshakeIvl(HANDSHAKE_IVL_MILLIS);
        s.setMaxMsgSize(Frames.MAX_FRAME_BYTES);
    }

    /** Joins the group described by {@code spec}: returns once every rank has joined. */
    static ZmqCommunicator join(GroupSpec spec) {
        ZmqCommunicator c = new ZmqCommunicator(spec);
        try {
            if (spec.size() > 1) c.handshake(spec.joinTimeout());
            return c;
        } catch (RuntimeException e) {
            c.close();
            throw e;
        }
    }

    private void handshake(Duration joinTimeout) {
        long deadline = System.nanoTime() + joinTimeout.toNanos();
        if (rank == 0) {
            BitSet joined = new BitSet(size);
            joined.set(0);
            List<byte[]> identities = new ArrayList<>();
            while (joined.cardinality() < size) {
                Received m = receive(deadline, "the other ranks to join (joined: " + joined + ")");
                if (m.type != Frames.HELLO) continue; // nothing else is expected before the group exists
                int peer = Frames.helloRank(m.payload);
                if (peer != m.rank || peer <= 0 || peer >= size || Frames.helloSize(m.payload) != size) {
                    LOG.log(Level.WARNING, "DP group: refused a HELLO from identity rank " + m.rank + " (says rank "
                            + peer + " of " + Frames.helloSize(m.payload) + ", the group is " + size + " ranks)");
                    continue;
                }
                if (!joined.get(peer)) identities.add(m.identity);
                joined.set(peer);
            }
            for (byte[] id : identities) send(id, Frames.welcome(size));
        } else {
            long nextHello = 0;
            while (true) {
                if (System.nanoTime() >= nextHello) {
                    socket.send(Frames.hello(rank, size), ZMQ.DONTWAIT); // queued until connected; repeated anyway
                    nextHello = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(HELLO_RESEND_MILLIS);
                }
                Received m = receive(Math.min(deadline, nextHello), null);
                if (m == null) {
                    if (System.nanoTime() >= deadline) {
                        throw new CollectiveException("DP group rank " + rank + ": rank 0 did not admit this rank within "
                                + joinTimeout.toSeconds() + " s (is rank 0 running, and with the same cluster key?)");
                    }
                    continue;
                }
                if (m.type == Frames.WELCOME) {
                    if (Frames.welcomeSize(m.payload) != size) {
                        throw new CollectiveException("DP group rank " + rank + ": rank 0 says the group has "
                                + Frames.welcomeSize(m.payload) + " ranks, this rank was told " + size);
                    }
                    return;
                }
            }
        }
        LOG.log(Level.DEBUG, "DP group: all " + size + " ranks joined");
    }

    @Override
    public int rank() { return rank; }

    @Override
    public int size() { return size; }

    @Override
    public Duration timeout() { return timeout; }

    @Override
    public long calls() { return seq; }

    @Override
    public long totalNanos() { return totalNanos; }

    @Override
    public long[] allReduce(long[] values, ReduceOp op) {
        if (values.length > Frames.MAX_VALUES) {
            throw new IllegalArgumentException(values.length + " values exceed the limit of " + Frames.MAX_VALUES);
        }
        lock.lock();
        long t0 = System.nanoTime();
        try {
            if (closed) throw new CollectiveException("DP group rank " + rank + ": the communicator is closed");
            if (broken) throw new CollectiveException("DP group rank " + rank + ": an earlier collective failed; the group is unusable");
            long s = seq;
            long[] result;
            try {
                result = size == 1 ? values.clone() : rank == 0 ? reduceAtRoot(s, values, op) : reduceAtLeaf(s, values, op);
            } catch (CollectiveException e) {
                broken = true;
                throw e;
            }
            seq++;
            return result;
        } finally {
            totalNanos += System.nanoTime() - t0;
            if (closed) release();
            lock.unlock();
        }
    }

    private long[] reduceAtRoot(long s, long[] values, ReduceOp op) {
        long deadline = System.nanoTime() + timeout.toNanos();
        long[] acc = values.clone();
        BitSet arrived = new BitSet(size);
        arrived.set(0);
        byte[][] identities = new byte[size][];
        while (arrived.cardinality() < size) {
            Received m;
            try {
                m = receive(deadline, null);
            } catch (CollectiveException e) {
                abortAll(identities, e.getMessage());
                throw e;
            }
            if (m == null) {
                BitSet missing = new BitSet(size);
                missing.set(0, size);
                missing.andNot(arrived);
                String msg = "DP group: rank(s) " + missing + " did not take part in collective #" + s + " within "
                        + timeout.toMillis() + " ms (process gone or hung); the group is unusable";
                abortAll(identities, msg);
                throw new CollectiveException(msg);
            }
            switch (m.type) {
                case Frames.HELLO -> send(m.identity, Frames.welcome(size)); // a repeated HELLO; harmless
                case Frames.CALL -> {
                    int peer = m.rank;
                    if (peer <= 0 || peer >= size) {
                        LOG.log(Level.WARNING, "DP group: dropped a call from unknown identity rank " + peer);
                        continue;
                    }
                    long peerSeq = Frames.callSeq(m.payload);
                    ReduceOp peerOp = Frames.callOp(m.payload);
                    long[] v = Frames.callValues(m.payload);
                    if (peerSeq != s || peerOp != op || v.length != values.length || arrived.get(peer)) {
                        String msg = "DP group: rank " + peer + " is at collective #" + peerSeq + " (" + peerOp + " of "
                                + v.length + " values) while rank 0 is at #" + s + " (" + op + " of " + values.length
                                + "); the ranks are out of step";
                        identities[peer] = m.identity;
                        abortAll(identities, msg);
                        throw new CollectiveException(msg);
                    }
                    arrived.set(peer);
                    identities[peer] = m.identity;
                    for (int i = 0; i < acc.length; i++) acc[i] = op.apply(acc[i], v[i]);
                }
                default -> LOG.log(Level.WARNING, "DP group: dropped an unexpected frame of type " + m.type + " from rank " + m.rank);
            }
        }
        byte[] result = Frames.result(s, acc);
        for (int r = 1; r < size; r++) send(identities[r], result);
        return acc;
    }

    private long[] reduceAtLeaf(long s, long[] values, ReduceOp op) {
        long deadline = System.nanoTime() + timeout.toNanos();
        if (!socket.send(Frames.call(s, op, values), ZMQ.DONTWAIT)) {
            throw new CollectiveException("DP group rank " + rank + ": cannot reach rank 0 for collective #" + s);
        }
        while (true) {
            Received m = receive(deadline, null);
            if (m == null) {
                throw new CollectiveException("DP group rank " + rank + ": no result of collective #" + s + " from rank 0 within "
                        + timeout.toMillis() + " ms (rank 0 or another rank is gone or hung); the group is unusable");
            }
            switch (m.type) {
                case Frames.RESULT -> {
                    long rs = Frames.resultSeq(m.payload);
                    long[] v = Frames.resultValues(m.payload);
                    if (rs == s && v.length == values.length) return v;
                    LOG.log(Level.WARNING, "DP group rank " + rank + ": dropped result #" + rs + " of " + v.length
                            + " values while waiting for #" + s);
                }
                case Frames.ABORT -> throw new CollectiveException("DP group rank " + rank + ": rank 0 aborted collective #" + s
                        + ": " + Frames.abortMessage(m.payload));
                case Frames.WELCOME -> { } // a repeated welcome
                default -> LOG.log(Level.WARNING, "DP group rank " + rank + ": dropped a frame of type " + m.type);
            }
        }
    }

    private void abortAll(byte[][] identities, String message) {
        byte[] frame = Frames.abort(message);
        for (int r = 1; r < size; r++) {
            byte[] id = identities[r] != null ? identities[r] : new byte[] {(byte) r, (byte) (r >>> 8)};
            try {
                socket.sendMore(id);
                socket.send(frame, ZMQ.DONTWAIT);
            } catch (ZMQException e) {
                // that rank is gone; nothing to tell it
            }
        }
    }

    private void send(byte[] identity, byte[] frame) {
        try {
            if (!socket.sendMore(identity) || !socket.send(frame, ZMQ.DONTWAIT)) {
                throw new CollectiveException("DP group: cannot send to rank " + Frames.rankOf(identity));
            }
        } catch (ZMQException e) {
            throw new CollectiveException("DP group: rank " + Frames.rankOf(identity) + " is not connected: " + e.getMessage(), e);
        }
    }

    /** One frame received; for rank 0 with the sender's identity. */
    private record Received(byte[] identity, int rank, byte type, byte[] payload) {}

    /**
     * The next well-formed frame, or null at {@code deadlineNanos}. With {@code waitingFor} set, a
     * timeout throws instead (naming what was awaited).
     */
    private Received receive(long deadlineNanos, String waitingFor) {
        while (true) {
            if (closed) throw new CollectiveException("DP group rank " + rank + ": the communicator was closed");
            long left = deadlineNanos - System.nanoTime();
            if (left <= 0) {
                if (waitingFor != null) throw new CollectiveException("DP group rank " + rank + ": timed out waiting for " + waitingFor);
                return null;
            }
            socket.setReceiveTimeOut((int) Math.max(1, Math.min(SLICE_MILLIS, TimeUnit.NANOSECONDS.toMillis(left) + 1)));
            byte[] first;
            try {
                first = socket.recv(0);
            } catch (ZMQException e) {
                throw new CollectiveException("DP group rank " + rank + ": socket failed: " + e.getMessage(), e);
            }
            if (first == null) continue;
            byte[] identity = null;
            byte[] payload = first;
            int extra = 0;
            if (rank == 0) {
                identity = first;
                payload = socket.hasReceiveMore() ? socket.recv(0) : null;
            }
            while (socket.hasReceiveMore()) {
                socket.recv(0);
                extra++;
            }
            int from = rank == 0 ? Frames.rankOf(identity) : 0;
            if (payload == null || extra > 0) {
                LOG.log(Level.WARNING, "DP group rank " + rank + ": dropped a message with the wrong number of frames from rank " + from);
                continue;
            }
            String problem = Frames.check(payload);
            if (problem != null) {
                LOG.log(Level.WARNING, "DP group rank " + rank + ": dropped a malformed frame from rank " + from + ": " + problem);
                continue;
            }
            return new Received(identity, from, payload[0], payload);
        }
    }

    @Override
    public void close() {
        closed = true;
        try {
            if (lock.tryLock(2 * SLICE_MILLIS + 100L, TimeUnit.MILLISECONDS)) {
                try {
                    release();
                } finally {
                    lock.unlock();
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private boolean released;

    private void release() {
        if (released) return;
        released = true;
        try {
            if (zap != null) zap.close();
            ctx.close();
        } catch (RuntimeException e) {
            // an interrupted closing thread (engine shutdown) leaves JeroMQ to finish on its own
            LOG.log(Level.DEBUG, "DP group rank " + rank + ": close: " + e);
        }
    }

    @Override
    public String toString() {
        return "ZmqCommunicator[rank " + rank + " of " + size + "]";
    }
}
