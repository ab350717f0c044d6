// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.coordinator;

import dev.dpserve.api.protocol.CoordinatorStats;
import dev.dpserve.api.protocol.EngineOutputs;
import dev.dpserve.api.protocol.FirstRequest;
import dev.dpserve.api.protocol.ProtocolMessage;
import dev.dpserve.transport.CoordinatorSockets;
import dev.dpserve.transport.ClusterKeys;
import dev.dpserve.transport.HandshakeException;
import dev.dpserve.transport.LaunchContext;
import dev.dpserve.transport.ProtocolCodec;
import dev.dpserve.transport.ProtocolLimits;
import org.osgi.framework.BundleContext;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.ConfigurationPolicy;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.metatype.annotations.Designate;

import java.lang.System.Logger.Level;
import java.time.Duration;
import java.util.Map;

/**
 * The DP coordinator process's component (vLLM's {@code DPCoordinatorProc}): binds its three
 * sockets ({@link CoordinatorSockets}), waits until all N engines subscribed to wave control and
 * publishes READY, then runs {@link CoordinatorState} on one thread: engine stats and wave events
 * and front-end FIRST_REQs in, START_DP_WAVE to engines and load/wave publications to front ends
 * out. The thread blocks in poll between events (publications every 100 ms while counts change,
 * every 5 s otherwise).
 */
@Component(configurationPid = "dev.dpserve.coordinator", configurationPolicy = ConfigurationPolicy.REQUIRE, immediate = true)
@Designate(ocd = CoordinatorConfig.class)
public final class Coordinator {

    private static final System.Logger LOG = System.getLogger(Coordinator.class.getName());
    private static final long SLICE_MILLIS = 500;

    private final CoordinatorSockets sockets;
    private final Thread loop;
    private volatile boolean stopping;

    /** This process's state file in its launcher's run directory ({@link LaunchContext}). */
    static final String STATE_FILE = "coordinator";

    @Activate
    public Coordinator(CoordinatorConfig config, BundleContext context) {
        int n = config.data_parallel_size();
        ClusterKeys keys = LaunchContext.clusterKeys(context); // the launcher's --cluster-key-file, or null on plain loopback
        try {
            this.sockets = new CoordinatorSockets(config.bind_address(), config.engine_control_port(), config.engine_output_port(),
                    config.front_end_port(), keys, new ProtocolCodec(ProtocolLimits.defaults()));
        } catch (RuntimeException e) {
            // The launcher watches this state file and stops the deployment with the reason.
            LaunchContext.report(context, STATE_FILE, Map.of("state", "failed", "error",
                    "the DP coordinator cannot bind its sockets on " + config.bind_address() + ": " + e.getMessage()));
            throw e;
        }
        LaunchContext.report(context, STATE_FILE, Map.of("state", "ready",
                "endpoints", Map.of("engineControl", sockets.engineControlEndpoint(), "engineOutput", sockets.engineOutputEndpoint(),
                        "frontEnds", sockets.frontEndPublishEndpoint()),
                "socketTypes", Map.of("engineControl", "XPUB", "engineOutput", "PULL", "frontEnds", "XPUB"),
                "curve", keys != null));
        LOG.log(Level.INFO, "DP coordinator for " + n + " engines" + (keys != null ? " (CurveZMQ with the cluster key)" : "")
                + ": wave control " + sockets.engineControlEndpoint()
                + ", engine stats " + sockets.engineOutputEndpoint() + ", front ends " + sockets.frontEndPublishEndpoint());
        this.loop = Thread.ofPlatform().name("dp-coordinator").daemon().unstarted(
                () -> run(n, Duration.ofSeconds(config.startup_timeout_seconds())));
        loop.start();
    }

    private void run(int n, Duration startupTimeout) {
        try {
            sockets.awaitEngineSubscriptions(n, startupTimeout);
            LOG.log(Level.INFO, "DP coordinator: all " + n + " engines subscribed; READY published");
            CoordinatorState state = new CoordinatorState(n, System.nanoTime());
            while (!stopping) {
                long wait = state.pollTimeoutMillis(System.nanoTime());
                // Waits in slices, so that deactivation finds the loop between polls and closes the sockets safely.
                ProtocolMessage m = sockets.receive(Duration.ofMillis(Math.min(wait, SLICE_MILLIS)));
                if (m == null && wait > SLICE_MILLIS) continue;
                CoordinatorState.Effect effect = switch (m) {
                    case null -> {
                        sockets.publishToFrontEnds(state.onPollTimeout(System.nanoTime()));
                        yield CoordinatorState.Effect.NONE;
                    }
                    case FirstRequest f -> state.onFirstRequest(f);
                    case EngineOutputs o -> state.onEngineOutputs(o);
                    default -> CoordinatorState.Effect.NONE;
                };
                if (effect.toEngines() != null) {
                    sockets.publishToEngines(effect.toEngines());
                    LOG.log(Level.DEBUG, "DP coordinator: " + effect.toEngines());
                }
                CoordinatorStats now = effect.publishNow();
                if (now != null) {
                    sockets.publishToFrontEnds(now);
                    LOG.log(Level.DEBUG, "DP coordinator: wave " + now.currentWave() + (now.enginesRunning() ? " running" : " paused"));
                }
            }
        } catch (HandshakeException e) {
            if (!stopping) LOG.log(Level.ERROR, "DP coordinator: " + e.getMessage());
        } catch (RuntimeException | dev.dpserve.transport.ProtocolException e) {
            // Closing the sockets in deactivate ends a blocked poll with a ZeroMQ error: expected then.
            if (!stopping) LOG.log(Level.ERROR, "DP coordinator loop failed", e);
        }
    }

    @Deactivate
    void deactivate() {
        stopping = true;
        try {
            loop.join(2 * SLICE_MILLIS + 500);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        sockets.close();
    }
}
