// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.transport.dp;

import dev.dpserve.api.protocol.EngineInit;
import dev.dpserve.api.protocol.EngineReady;
import dev.dpserve.transport.ClusterKeys;
import dev.dpserve.transport.LaunchContext;
import dev.dpserve.transport.EngineHandshakeServer;
import dev.dpserve.transport.EngineHandshakeServer.ExpectedEngine;
import dev.dpserve.transport.Endpoints;
import dev.dpserve.transport.FrontEndConnection;
import dev.dpserve.transport.HandshakeException;
import dev.dpserve.transport.ProtocolCodec;
import dev.dpserve.transport.ProtocolLimits;
import org.osgi.framework.BundleContext;
import org.osgi.framework.ServiceRegistration;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.ConfigurationPolicy;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.metatype.annotations.Designate;

import java.io.IOException;
import java.lang.System.Logger.Level;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.Hashtable;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * Brings a data-parallel group up on the front end (spec 2): binds the request ROUTER and output
 * PULL on random ports of {@code data_parallel_address} and the handshake ROUTER on its rpc port,
 * then, on its own thread, waits up to {@code startup_timeout_seconds} until every rank has loaded
 * its model and reported READY and has announced itself on the request socket. Then it registers
 * the {@link DpGroup} service. A rank that never joins ends the wait with an error that names it
 * (logged; no engine service appears and the launcher gives up). Every socket uses the
 * deployment's cluster key when the launcher passed one ({@link LaunchContext}); progress, the
 * bound endpoints and a failure are reported in the {@code frontend} state file.
 *
 * <p>Why a thread and a manual registration: DS registers a component's service before its
 * activation runs, so a DS-provided engine would be visible minutes before it could serve, and a
 * blocked activation would hold up the framework's configuration and shutdown.
 */
@Component(configurationPid = "dev.dpserve.transport.client", configurationPolicy = ConfigurationPolicy.REQUIRE,
        immediate = true)
@Designate(ocd = DpClientConfig.class)
public final class DpGroupStarter {

    private static final System.Logger LOG = System.getLogger(DpGroupStarter.class.getName());

    /** Its state file in the launcher's run directory ({@link LaunchContext}). */
    static final String STATE_FILE = "frontend";
    private static final Map<String, String> SOCKET_TYPES = Map.of("handshake", "ROUTER", "requests", "ROUTER", "outputs", "PULL");

    private final ProtocolCodec codec = new ProtocolCodec(ProtocolLimits.defaults());
    private final BundleContext context;
    private final Map<String, String> endpoints;
    private final ClusterKeys keys;
    private final FrontEndConnection connection;
    private final EngineHandshakeServer handshake;
    private final Thread startup;
    private volatile boolean stopping;
    private ServiceRegistration<DpGroup> registration; // guarded by this

    @Activate
    public DpGroupStarter(DpClientConfig config, BundleContext context) {
        int size = config.data_parallel_size();
        if (size < 1) throw new IllegalArgumentException("data_parallel_size must be >= 1, got " + size);
        String rpc = Endpoints.tcp(config.data_parallel_address(), config.data_parallel_rpc_port());
        this.context = context;
        ClusterKeys keys;
        try {
            keys = LaunchContext.clusterKeys(context);
        } catch (IllegalStateException e) {
            failed(e.getMessage(), Map.of());
            throw e;
        }
        this.keys = keys;
        try {
            this.connection = new FrontEndConnection(config.data_parallel_address(), keys, codec);
        } catch (RuntimeException e) {
            failed("cannot bind the front end's request/output sockets on " + config.data_parallel_address()
                    + " (--data-parallel-address): " + e.getMessage(), Map.of());
            throw e;
        }
        try {
            this.handshake = new EngineHandshakeServer(rpc, keys, codec);
        } catch (RuntimeException e) {
            connection.close();
            String message = "cannot bind the DP handshake socket " + rpc + " (--data-parallel-rpc-port): " + e.getMessage();
            failed(message, Map.of());
            throw new IllegalStateException(message, e);
        }
        this.endpoints = Map.of("handshake", handshake.endpoint(), "requests", connection.requestEndpoint(),
                "outputs", connection.outputEndpoint());
        LaunchContext.report(context, STATE_FILE, Map.of("state", "starting", "endpoints", endpoints,
                "socketTypes", SOCKET_TYPES, "curve", keys != null));
        if (keys != null) LOG.log(Level.INFO, "DP sockets use CurveZMQ with cluster key " + keys);
        this.startup = Thread.ofPlatform().name("dp-startup").daemon().unstarted(() -> run(config, context, rpc));
        startup.start();
    }

    private void failed(String error, Map<String, String> bound) {
        LaunchContext.report(context, STATE_FILE, Map.of("state", "failed", "error", error, "endpoints", bound));
    }

    private void run(DpClientConfig config, BundleContext context, String rpc) {
        int size = config.data_parallel_size();
        int local = config.data_parallel_size_local() < 0 ? size : Math.min(size, config.data_parallel_size_local());
        List<ExpectedEngine> expected = IntStream.range(0, size).mapToObj(r -> new ExpectedEngine(r, r < local)).toList();
        String control = config.coordinator_engine_control_address().isBlank() ? null : config.coordinator_engine_control_address();
        String output = control == null ? null : config.coordinator_engine_output_address();
        List<String> groupEndpoints;
        try {
            groupEndpoints = size > 1 ? List.of(Endpoints.tcp(config.data_parallel_address(), config.dp_group_port() > 0
                    ? config.dp_group_port() : freePort(config.data_parallel_address()))) : List.of();
        } catch (IOException e) {
            LOG.log(Level.ERROR, "data-parallel startup failed: no free port for the DP group on " + config.data_parallel_address()
                    + ": " + e.getMessage());
            return;
        }
        EngineInit init = new EngineInit(size, List.of(connection.requestEndpoint()), List.of(connection.outputEndpoint()),
                control, output, groupEndpoints);
        LOG.log(Level.INFO, "waiting up to " + config.startup_timeout_seconds() + " s for " + size + " DP engines on " + rpc
                + (local < size ? " (ranks " + local + ".." + (size - 1) + " from headless nodes)" : ""));
        try {
            Map<Integer, EngineReady> ready = handshake.awaitEngines(expected, hello -> init,
                    Duration.ofSeconds(config.startup_timeout_seconds()));
            connection.awaitEngines(ready.keySet(), Duration.ofSeconds(30));
            DpGroup group = new DpGroup(connection, ready, config, keys);
            Hashtable<String, Object> props = new Hashtable<>();
            props.put("dpserve.dp.size", size);
            synchronized (this) {
                if (stopping) return;
                registration = context.registerService(DpGroup.class, group, props);
            }
            LaunchContext.report(context, STATE_FILE, Map.of("state", "ready", "endpoints", endpoints,
                    "socketTypes", SOCKET_TYPES, "ranks", ready.keySet()));
            // The rpc socket stays bound: late HELLOs get a clear rejection, junk is logged and dropped.
            while (!stopping) handshake.rejectLateArrivals(Duration.ofMillis(500));
        } catch (HandshakeException e) {
            if (!stopping) {
                LOG.log(Level.ERROR, "data-parallel startup failed: " + e.getMessage());
                failed(e.getMessage(), endpoints);
            }
        } catch (RuntimeException e) {
            // Closing the sockets in deactivate ends a pending handshake with a ZeroMQ error: expected then.
            if (!stopping) {
                LOG.log(Level.ERROR, "data-parallel startup failed", e);
                failed(String.valueOf(e), endpoints);
            }
        }
    }

    /** A port free on {@code host} now (rank 0 binds it moments later; the race is the usual one of port 0). */
    private static int freePort(String host) throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getByName(host))) {
            return s.getLocalPort();
        }
    }

    @Deactivate
    void deactivate() {
        ServiceRegistration<DpGroup> r;
        synchronized (this) {
            stopping = true;
            r = registration;
            registration = null;
        }
        if (r != null) r.unregister(); // the engine service goes first, while the sockets still work
        try {
            startup.join(1000); // the late-arrival loop notices stopping within its 500 ms poll
            handshake.close();  // ends a startup wait that is still polling (a ZeroMQ error there is expected)
            startup.join(2000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        connection.close();
    }
}
