// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.transport.dp;

import dev.dpserve.api.engine.EngineStats;
import dev.dpserve.api.engine.FinishReason;
import dev.dpserve.api.engine.InferenceEngine;
import dev.dpserve.api.engine.ModelCard;
import dev.dpserve.api.engine.WaveStats;
import dev.dpserve.api.parallel.Communicator;
import dev.dpserve.api.parallel.CommunicatorFactory;
import dev.dpserve.api.parallel.GroupSpec;
import dev.dpserve.api.parallel.LockstepEngine;
import dev.dpserve.api.parallel.WaveEvents;
import dev.dpserve.api.protocol.AbortRequests;
import dev.dpserve.api.protocol.AddRequest;
import dev.dpserve.api.protocol.EngineInit;
import dev.dpserve.api.protocol.EngineInput;
import dev.dpserve.api.protocol.EngineOutputs;
import dev.dpserve.api.protocol.EngineReady;
import dev.dpserve.api.protocol.ModelFacts;
import dev.dpserve.api.protocol.ProtocolMessage;
import dev.dpserve.api.protocol.RequestDelta;
import dev.dpserve.api.protocol.SchedulerStats;
import dev.dpserve.api.protocol.StartDpWave;
import dev.dpserve.api.protocol.UtilityCall;
import dev.dpserve.api.protocol.UtilityResult;
import dev.dpserve.transport.ClusterKeys;
import dev.dpserve.transport.LaunchContext;
import dev.dpserve.transport.EngineConnection;
import dev.dpserve.transport.EngineHandshakeClient;
import dev.dpserve.transport.Endpoints;
import dev.dpserve.transport.HandshakeException;
import dev.dpserve.transport.ProtocolCodec;
import dev.dpserve.transport.ProtocolException;
import dev.dpserve.transport.ProtocolLimits;
import org.osgi.framework.BundleContext;
import org.osgi.framework.BundleException;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.ConfigurationPolicy;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.metatype.annotations.Designate;

import java.lang.System.Logger.Level;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * An engine process's side of data parallelism: serves this JVM's in-process engine to the DP head.
 * It handshakes with the head (HELLO → INIT → READY with this rank's KV blocks and model facts),
 * then feeds requests and aborts from the head's ROUTER into the engine and pushes the engine's
 * outputs back, batched, with the engine's stats on every batch (the head balances load and
 * exports per-rank metrics from them). While idle it still reports stats every
 * {@code heartbeat_millis}: that is how the head notices a rank whose process is gone.
 *
 * <p>Dense models: ranks run independently (no waves, no dummy batches; wave starts are ignored),
 * but still report their counts to the coordinator. MoE models with N > 1: the engine joins the DP
 * group's communicator and steps in lockstep ({@link LockstepEngine}); ADDs carry their wave to
 * it, START_DP_WAVE is handed over, and its wave_complete / start_wave go to the coordinator.
 *
 * <p>Threads: an input thread (handshake, then the receive loop) and an output thread (the only
 * sender on the output sockets); the engine's listener only enqueues. Sockets are opened in
 * the constructor (the handshake DEALER; the steady-state sockets once INIT names them, on the
 * input thread) and all are closed in {@link #deactivate}.
 */
@Component(configurationPid = "dev.dpserve.transport.engine", configurationPolicy = ConfigurationPolicy.REQUIRE,
        immediate = true)
@Designate(ocd = EngineBridgeConfig.class)
public final class EngineBridge {

    private static final System.Logger LOG = System.getLogger(EngineBridge.class.getName());
    private static final Duration RECEIVE_POLL = Duration.ofMillis(200);
    private static final int MAX_BATCH = 4096;

    private final InferenceEngine engine;
    private final EngineBridgeConfig config;
    private final int rank;
    private final BundleContext context;
    private final ProtocolCodec codec = new ProtocolCodec(ProtocolLimits.defaults());
    /** What the output thread sends: {@link RequestDelta}s for the front end, {@link EngineOutputs} for the coordinator. */
    private final BlockingQueue<Object> deltas = new LinkedBlockingQueue<>();
    private final ConcurrentLinkedQueue<UtilityResult> utilityResults = new ConcurrentLinkedQueue<>();
    private final ClusterKeys keys;
    private final EngineHandshakeClient handshake;
    private final Thread input;
    private volatile Thread output;
    private volatile EngineConnection connection;
    private volatile boolean stopping;
    private final CommunicatorFactory communicators;
    /** Set once this rank stepped in lockstep with its DP group (MoE, N > 1); null when it runs independently. */
    private volatile LockstepEngine lockstep;
    private boolean reportedDead; // output thread only

    @Activate
    public EngineBridge(EngineBridgeConfig config,
                        @Reference(name = "engine", target = "(dpserve.engine.kind=inprocess)") InferenceEngine engine,
                        @Reference(name = "communicators") CommunicatorFactory communicators,
                        BundleContext context) {
        this.engine = engine;
        this.communicators = communicators;
        this.context = context;
        this.config = config;
        this.rank = config.dp_rank();
        String head = Endpoints.tcp(config.data_parallel_address(), config.data_parallel_rpc_port());
        try {
            this.keys = LaunchContext.clusterKeys(context);
        } catch (IllegalStateException e) {
            LaunchContext.report(context, "engine-" + rank, Map.of("state", "failed", "rank", rank, "error", e.getMessage()));
            stopProcess();
            throw e;
        }
        this.handshake = new EngineHandshakeClient(head, rank, keys, codec);
        LaunchContext.report(context, stateFile(), Map.of("state", "starting", "rank", rank, "head", head,
                "nodeAddress", config.node_address(), "curve", keys != null));
        // The handshake can wait minutes for the head; DS activation must not.
        this.input = Thread.ofPlatform().name("dp" + rank + "-input").daemon().unstarted(this::runInput);
        input.start();
        LOG.log(Level.INFO, "DP rank " + rank + ": connecting to the head at " + head + " from node " + config.node_address()
                + (keys != null ? " with cluster key " + keys : " without a cluster key (loopback only)"));
    }

    private void runInput() {
        try {
            EngineInit init = handshake.hello(config.local(), config.headless(), Duration.ofSeconds(config.handshake_timeout_seconds()));
            EngineConnection c = new EngineConnection(rank, init, keys, codec);
            connection = c;
            c.awaitCoordinatorReady(Duration.ofSeconds(config.handshake_timeout_seconds()));
            joinLockstepGroup(init);
            Thread out = Thread.ofPlatform().name("dp" + rank + "-output").daemon().unstarted(() -> runOutput(c));
            output = out;
            out.start();
            ModelCard card = engine.model();
            EngineStats s = engine.stats();
            handshake.ready(new EngineReady(rank, config.local(), config.headless(), s.kvBlocksTotal(),
                    new ModelFacts(card.modelType(), card.maxModelLen(), card.vocabSize(), config.block_size(), config.moe())));
            LaunchContext.report(context, stateFile(), Map.of("state", "ready", "rank", rank,
                    "nodeAddress", config.node_address(), "kvBlocks", s.kvBlocksTotal()));
            LOG.log(Level.INFO, "DP rank " + rank + " is ready (" + s.kvBlocksTotal() + " KV blocks); serving "
                    + init.requestAddresses() + (lockstep != null ? "; MoE model: lockstep with the DP group (waves, dummy"
                    + " batches)" : init.dataParallelSize() > 1 ? "; runs independently of the other ranks" : ""));
            while (!stopping) {
                EngineInput in = c.receive(RECEIVE_POLL);
                if (in != null) handle(in);
            }
        } catch (HandshakeException e) {
            if (!stopping) {
                LOG.log(Level.ERROR, "DP rank " + rank + ": " + e.getMessage());
                LaunchContext.report(context, stateFile(), Map.of("state", "failed", "rank", rank, "error", e.getMessage()));
                stopProcess();
            }
        } catch (RuntimeException e) {
            // Closing the sockets in deactivate ends a blocked handshake with a ZeroMQ error: expected then.
            if (!stopping) LOG.log(Level.ERROR, "DP rank " + rank + ": input loop failed", e);
        }
    }

    /** This engine's state file in the launcher's run directory ({@link LaunchContext}). */
    private String stateFile() { return "engine-" + rank; }

    /**
     * MoE with N > 1 and a coordinator: every rank must run each forward together (spec 4.1), so
     * the engine joins the DP group's communicator (rank 0 binds the endpoint the head chose, the
     * others connect; this returns once all have joined) and switches to its lockstep loop. Wave
     * events go to the coordinator through the output thread.
     */
    private void joinLockstepGroup(EngineInit init) throws HandshakeException {
        if (!config.moe() || init.dataParallelSize() < 2 || !init.hasCoordinator()) return;
        if (!(engine instanceof LockstepEngine l)) {
            LOG.log(Level.WARNING, "DP rank " + rank + ": the engine cannot step in lockstep; running independently");
            return;
        }
        if (init.dpGroupEndpoints().isEmpty()) {
            throw new HandshakeException("DP rank " + rank + ": MoE with data parallelism needs the DP group endpoint, the head sent none");
        }
        GroupSpec spec = new GroupSpec(rank, init.dataParallelSize(), init.dpGroupEndpoints(),
                Duration.ofSeconds(Math.max(1, config.collective_timeout_seconds())),
                Duration.ofSeconds(config.handshake_timeout_seconds()),
                keys == null ? null : keys.publicKey(), keys == null ? null : keys.secretKey());
        Communicator group;
        try {
            group = communicators.join(spec);
        } catch (RuntimeException e) {
            throw new HandshakeException("DP rank " + rank + ": cannot join the DP group at " + init.dpGroupEndpoints() + ": " + e.getMessage());
        }
        l.joinGroup(group, new WaveEvents() {
            @Override
            public void waveComplete(int wave) { deltas.add(EngineOutputs.ofWaveComplete(rank, wave)); }

            @Override
            public void startWave(int wave) { deltas.add(EngineOutputs.ofStartWave(rank, wave)); }
        });
        lockstep = l;
        LOG.log(Level.INFO, "DP rank " + rank + " joined its DP group of " + init.dataParallelSize() + " at " + init.dpGroupEndpoints()
                + (keys != null ? " (CurveZMQ with the cluster key)" : ""));
    }

    /**
     * An engine that could not join its head has nothing to do: it stops its framework, so the
     * process exits (with status 1) and its launcher learns that the rank failed to join.
     */
    private void stopProcess() {
        LOG.log(Level.ERROR, "DP rank " + rank + " did not join the head; stopping this engine process");
        try {
            context.getBundle(0).stop();
        } catch (BundleException | IllegalStateException e) {
            LOG.log(Level.WARNING, "DP rank " + rank + ": cannot stop the framework: " + e.getMessage());
        }
    }

    private void handle(EngineInput in) {
        switch (in) {
            case AddRequest add -> {
                String id = add.requestId();
                LockstepEngine l = lockstep;
                if (l != null) l.requestWave(add.currentWave()); // queued right before the request (spec 4.3)
                try {
                    engine.submit(add.toEngineRequest(), out -> deltas.add(RequestDelta.of(out, 0)));
                } catch (RuntimeException e) {
                    // Validation or admission failed here: the request ends at once, with the reason.
                    deltas.add(new RequestDelta(id, new int[0], null, FinishReason.ABORT, null, add.promptLength(), 0, 0,
                            String.valueOf(e.getMessage())));
                }
            }
            case AbortRequests abort -> abort.requestIds().forEach(engine::abort);
            case UtilityCall call -> utilityResults.add(utility(call));
            case StartDpWave wave -> {
                LockstepEngine l = lockstep;
                if (l != null) l.startWave(wave.wave(), wave.excludeRank());
                else LOG.log(Level.DEBUG, "DP rank " + rank + ": ignored " + wave + " (ranks run independently)");
            }
        }
    }

    private UtilityResult utility(UtilityCall call) {
        if (call.method().equals("stats")) {
            EngineStats s = engine.stats();
            return new UtilityResult(call.callId(), "{\"running\":" + s.running() + ",\"waiting\":" + s.waiting()
                    + ",\"kv_blocks_used\":" + s.kvBlocksUsed() + ",\"kv_blocks_total\":" + s.kvBlocksTotal() + "}", null);
        }
        return new UtilityResult(call.callId(), null, "unknown utility method '" + call.method() + "'");
    }

    private void runOutput(EngineConnection c) {
        long heartbeat = Math.max(50, config.heartbeat_millis());
        long lastCounts = -1; // (running, waiting) last sent to the coordinator
        try {
            while (!stopping || !deltas.isEmpty()) {
                List<Object> items = new ArrayList<>();
                Object first = deltas.poll(heartbeat, TimeUnit.MILLISECONDS);
                if (first != null) items.add(first);
                deltas.drainTo(items, MAX_BATCH - items.size());
                List<RequestDelta> batch = new ArrayList<>(items.size());
                for (Object o : items) {
                    if (o instanceof RequestDelta d) batch.add(d);
                    else if (o instanceof EngineOutputs e) c.sendToCoordinator(e); // wave events: at once
                }
                List<String> finished = batch.stream().filter(RequestDelta::finished).map(RequestDelta::requestId).toList();
                SchedulerStats stats = schedulerStats();
                // Stats ride on every batch: the head's load counts and metrics are as fresh as the outputs.
                c.send(0, new EngineOutputs(rank, batch, stats, finished, ProtocolMessage.NONE,
                        ProtocolMessage.NONE, utilityResults.poll()));
                long counts = ((long) stats.running() << 32) | stats.waiting();
                if (counts != lastCounts) { // the coordinator wants changes only (spec 4.2 step 3)
                    c.sendToCoordinator(EngineOutputs.ofStats(rank, stats));
                    lastCounts = counts;
                }
                reportLockstepFailure(c);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (ProtocolException | RuntimeException e) {
            if (!stopping) LOG.log(Level.ERROR, "DP rank " + rank + ": output loop failed", e);
        }
    }

    /** A rank that left lockstep cannot serve its group any more: the front end must stop using it. */
    private void reportLockstepFailure(EngineConnection c) {
        LockstepEngine l = lockstep;
        String failure = l == null ? null : l.lockstepFailure();
        if (failure != null && !reportedDead) {
            reportedDead = true;
            LOG.log(Level.ERROR, "DP rank " + rank + " is unusable: " + failure);
            c.broadcastDead(failure);
        }
    }

    private SchedulerStats schedulerStats() {
        EngineStats s = engine.stats();
        LockstepEngine l = lockstep;
        WaveStats w = l == null ? null : l.waveStats();
        return new SchedulerStats(s.running(), s.waiting(), w == null ? 0 : w.stepCounter(), w == null ? 0 : w.currentWave(),
                s.kvCacheUsage(), s.promptTokens(), s.generationTokens(), s.finishedRequests(), s.steps(),
                s.prefixCacheQueries(), s.prefixCacheHits(), s.preemptions(), w);
    }

    @Deactivate
    void deactivate() {
        stopping = true;
        join(input, 2000);
        Thread out = output;
        if (out != null) join(out, 3000);
        EngineConnection c = connection;
        if (c != null) {
            // The head marks this rank dead at once instead of waiting for its silence timeout.
            c.broadcastDead("engine dp" + rank + " stopped");
            c.close();
        }
        handshake.close();
    }

    private static void join(Thread t, long millis) {
        try {
            t.join(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
