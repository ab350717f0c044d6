// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.transport;

import dev.dpserve.api.protocol.CoordinatorStats;
import dev.dpserve.api.protocol.FirstRequest;
import org.zeromq.SocketType;
import org.zeromq.ZContext;
import org.zeromq.ZMQ;

import java.lang.System.Logger.Level;
import java.time.Duration;

/**
 * A front end's link to the coordinator's front-end XPUB: receives {@link CoordinatorStats},
 * sends {@link FirstRequest} upstream.
 *
 * <p>Two XSUB sockets, so that the request path can send while the stats thread blocks in
 * receive without sharing a socket between threads: one subscribes and receives, the other never
 * subscribes and only sends upstream. Threading: {@link #receiveLatest} from one thread,
 * {@link #sendFirstRequest} from any thread.
 */
public final class CoordinatorClient implements AutoCloseable {

    private static final System.Logger LOG = System.getLogger(CoordinatorClient.class.getName());

    private final ZContext ctx = new ZContext();
    private final ProtocolCodec codec;
    private final ZMQ.Socket stats;    // XSUB, subscribed to everything
    private final ZMQ.Socket upstream; // XSUB, never subscribed; guarded by itself
    private final ZMQ.Poller poller;

    /** @param keys the cluster key, or null for a plain loopback deployment */
    public CoordinatorClient(String frontEndPublishEndpoint, ClusterKeys keys, ProtocolCodec codec) {
        this.codec = codec;
        stats = Sockets.client(ctx, SocketType.XSUB, keys, null, codec.limits().maxControlFrameBytes());
        stats.connect(frontEndPublishEndpoint);
        stats.send(new byte[] {1}, 0);
        upstream = Sockets.client(ctx, SocketType.XSUB, keys, null, codec.limits().maxControlFrameBytes());
        upstream.connect(frontEndPublishEndpoint);
        poller = ctx.createPoller(1);
        poller.register(stats, ZMQ.Poller.POLLIN);
    }

    /**
     * Waits for a publication, then drains the queue and returns the newest one (older ones are
     * stale by definition).
     *
     * @return null if nothing arrived within {@code timeout}
     */
    public CoordinatorStats receiveLatest(Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            CoordinatorStats latest = null;
            byte[] frame;
            while ((frame = stats.recv(ZMQ.DONTWAIT)) != null) {
                while (stats.hasReceiveMore()) stats.recv(0);
                try {
                    latest = codec.decode(frame, CoordinatorStats.class);
                } catch (ProtocolException e) {
                    LOG.log(Level.WARNING, "dropped a frame from the coordinator: " + e.getMessage());
                }
            }
            if (latest != null) return latest;
            long wait = Sockets.remainingMillis(deadline);
            if (wait <= 0) return null;
            poller.poll(wait);
        }
    }

    /** Tells the coordinator that a request went to a paused group (spec 3.4 step 3). */
    public void sendFirstRequest(FirstRequest request) throws ProtocolException {
        byte[] frame = codec.encode(request);
        synchronized (upstream) {
            upstream.send(frame, 0);
        }
    }

    @Override
    public void close() {
        poller.close();
        ctx.close();
    }
}
