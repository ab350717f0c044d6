// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.transport.dp;

import dev.dpserve.api.engine.EngineRequest;
import dev.dpserve.api.engine.EngineStats;
import dev.dpserve.api.engine.EngineUnavailableException;
import dev.dpserve.api.engine.FinishReason;
import dev.dpserve.api.engine.InferenceEngine;
import dev.dpserve.api.engine.InvalidRequestException;
import dev.dpserve.api.engine.ModelCard;
import dev.dpserve.api.engine.OutputListener;
import dev.dpserve.api.engine.RequestOutput;
import dev.dpserve.api.engine.WaveStats;
import dev.dpserve.api.protocol.AbortRequests;
import dev.dpserve.api.protocol.CoordinatorStats;
import dev.dpserve.api.protocol.FirstRequest;
import dev.dpserve.api.protocol.RankLoad;
import dev.dpserve.transport.CoordinatorClient;
import dev.dpserve.api.protocol.AddRequest;
import dev.dpserve.api.protocol.EngineDead;
import dev.dpserve.api.protocol.EngineOutputs;
import dev.dpserve.api.protocol.ModelFacts;
import dev.dpserve.api.protocol.ProtocolMessage;
import dev.dpserve.api.protocol.RequestDelta;
import dev.dpserve.api.protocol.SchedulerStats;
import dev.dpserve.api.tokenizer.Tokenizer;
import dev.dpserve.api.tokenizer.TokenizerFactory;
import dev.dpserve.transport.FrontEndConnection;
import dev.dpserve.transport.ProtocolException;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ReferenceCardinality;

import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The front end's engine when data parallelism is on (vLLM's DP load-balancing client): N engine
 * processes, one per DP rank, each computing the whole model (experts are not sharded yet).
 *
 * <p>It exists only while a complete {@link DpGroup} does (see {@link DpGroupStarter}: the
 * handshake, and what happens when a rank never joins). The tokenizer is loaded in this process
 * from the model directory; the model card comes from the ranks' READY facts (the handshake
 * checks that all ranks report the same).
 *
 * <p>Requests go to the rank with the least {@code 4·waiting + running} ({@link LoadBalancer});
 * aborts follow the request → rank map ({@link InFlightRequests}). One receive thread hands each
 * rank's outputs to the listeners, in order, and keeps the latest stats per rank. A rank is dead
 * when it says so (ENGINE_DEAD, also sent when its process stops) or stays silent longer than
 * {@code rank_silence_timeout_seconds} (engines report every second even when idle); its
 * requests end with an error, it gets no new ones, and {@link #unhealthyReason()} names it.
 *
 * <p>With a coordinator (N > 1) a second thread applies its publications: per-rank counts replace
 * the balancer's (optimistic increments continue from there) and the wave state is kept. For MoE
 * models the ranks step in lockstep (spec 3.4): every request carries the current wave, and a
 * request sent while the group is believed paused also sends FIRST_REQ so the coordinator wakes
 * the other ranks; a group with a dead rank refuses new requests.
 */
@Component(service = InferenceEngine.class, property = "dpserve.engine.kind=dp-client")
public final class DpClientEngine implements InferenceEngine {

    private static final System.Logger LOG = System.getLogger(DpClientEngine.class.getName());
    private static final Duration RECEIVE_POLL = Duration.ofMillis(250);

    /** What the front end knows about one rank. Fields are written by the receive thread only. */
    private static final class Rank {
        final int index;
        final int kvBlocks;
        volatile SchedulerStats stats = new SchedulerStats(0, 0, 0, 0, 0, 0, 0, 0, 0);
        volatile long lastSeenNanos = System.nanoTime();
        volatile String deadReason;

        Rank(int index, int kvBlocks) {
            this.index = index;
            this.kvBlocks = kvBlocks;
        }
    }

    private final FrontEndConnection connection; // owned by DpGroupStarter
    private final Rank[] ranks;
    private final LoadBalancer balancer;
    private final InFlightRequests inFlight = new InFlightRequests();
    private final Tokenizer tokenizer;
    private final ModelCard card;
    private final long silenceNanos;
    private final Thread receiver;
    private volatile boolean stopping;
    /** The coordinator link, or null without a coordinator; owned here (closed in deactivate). */
    private final CoordinatorClient coordinator;
    private final Thread coordinatorReceiver;
    /** True for MoE models: ranks step in lockstep and requests carry waves (spec 3.4). */
    private final boolean lockstep;
    /** The coordinator's latest wave and running state (spec 3.4); optimistic: set running on FIRST_REQ. */
    private volatile int currentWave;
    private final AtomicBoolean enginesRunning = new AtomicBoolean();

    @Activate
    public DpClientEngine(@Reference(name = "group") DpGroup group,
                          @Reference(name = "tokenizerFactory", cardinality = ReferenceCardinality.AT_LEAST_ONE)
                          List<TokenizerFactory> tokenizerFactories) throws IOException {
        DpClientConfig config = group.config();
        int size = group.size();
        this.connection = group.connection();
        this.silenceNanos = Duration.ofSeconds(Math.max(2, config.rank_silence_timeout_seconds())).toNanos();
        this.tokenizer = loadTokenizer(Path.of(config.model()).toAbsolutePath().normalize(), tokenizerFactories);
        ModelFacts facts = group.ready().get(0).model();
        this.ranks = new Rank[size];
        for (int r = 0; r < size; r++) ranks[r] = new Rank(r, group.ready().get(r).numKvBlocks());
        String served = config.served_model_name().isBlank() ? config.model() : config.served_model_name();
        this.card = new ModelCard(served, config.model(), facts.maxModelLen(), facts.vocabSize(), facts.modelType(),
                System.currentTimeMillis() / 1000);
        this.balancer = new LoadBalancer(size);
        String coord = config.coordinator_front_end_address();
        this.coordinator = coord.isBlank() ? null : new CoordinatorClient(coord, group.keys(),
                new dev.dpserve.transport.ProtocolCodec(dev.dpserve.transport.ProtocolLimits.defaults()));
        this.lockstep = facts.moe() && coordinator != null && size > 1;
        LOG.log(Level.INFO, size + " DP engines ready (" + facts.modelType() + ", max_model_len " + facts.maxModelLen() + "); "
                + (lockstep ? "MoE model: ranks step in lockstep (waves, dummy batches; coordinator at " + coord + ")"
                : "ranks run independently" + (coordinator != null ? " (coordinator at " + coord + ")" : "")));
        this.receiver = Thread.ofPlatform().name("dp-client-receive").daemon().unstarted(this::receiveLoop);
        receiver.start();
        this.coordinatorReceiver = coordinator == null ? null
                : Thread.ofPlatform().name("dp-client-coordinator").daemon().unstarted(this::coordinatorLoop);
        if (coordinatorReceiver != null) coordinatorReceiver.start();
    }

    private static Tokenizer loadTokenizer(Path dir, List<TokenizerFactory> factories) throws IOException {
        for (TokenizerFactory f : factories) {
            if (f.canLoad(dir)) return f.load(dir);
        }
        throw new IllegalArgumentException("no tokenizer factory can load " + dir + " (tokenizer.json missing?)");
    }

    @Override
    public ModelCard model() { return card; }

    @Override
    public Tokenizer tokenizer() { return tokenizer; }

    @Override
    public void submit(EngineRequest request, OutputListener listener) {
        if (request.promptLength() + request.sampling().maxTokens() > card.maxModelLen()) {
            throw new InvalidRequestException("'max_tokens' or 'max_completion_tokens' is too large: "
                    + request.sampling().maxTokens() + ". This model's maximum context length is " + card.maxModelLen()
                    + " tokens and your request has " + request.promptLength() + " input tokens ("
                    + request.sampling().maxTokens() + " > " + card.maxModelLen() + " - " + request.promptLength() + ").",
                    "max_tokens");
        }
        if (stopping) throw new EngineUnavailableException("the server is shutting down");
        if (lockstep) {
            // MoE ranks step together: without one of them the others would stall in their first exchange.
            for (Rank r : ranks) {
                if (r.deadReason != null) throw new EngineUnavailableException("the MoE DP group cannot step without rank "
                        + r.index + ": " + r.deadReason);
            }
        }
        int rank = balancer.pick(r -> ranks[r].deadReason == null);
        if (rank < 0) throw new EngineUnavailableException("no DP engine is alive: " + unhealthyReason());
        if (!inFlight.add(request.requestId(), rank, listener)) {
            throw new InvalidRequestException("request id " + request.requestId() + " is already in flight", "request_id");
        }
        int wave = currentWave;
        try {
            connection.send(rank, AddRequest.of(request, 0, wave));
            // A request to a group we believe paused: the coordinator wakes the other ranks (spec 3.4 step 3).
            if (lockstep && enginesRunning.compareAndSet(false, true)) sendFirstRequest(rank, wave);
        } catch (ProtocolException e) {
            inFlight.remove(request.requestId());
            throw new InvalidRequestException(e.getMessage(), "prompt");
        } catch (RuntimeException e) {
            inFlight.remove(request.requestId());
            throw e;
        }
    }

    private void sendFirstRequest(int rank, int wave) {
        try {
            coordinator.sendFirstRequest(new FirstRequest(rank, wave));
        } catch (ProtocolException | RuntimeException e) {
            LOG.log(Level.WARNING, "could not tell the coordinator about a request for paused DP rank " + rank + ": " + e.getMessage());
        }
    }

    /** Applies the coordinator's publications: wave state always, per-rank counts when present (spec 4.4). */
    private void coordinatorLoop() {
        while (!stopping) {
            try {
                CoordinatorStats p = coordinator.receiveLatest(RECEIVE_POLL);
                if (p == null) continue;
                currentWave = p.currentWave();
                enginesRunning.set(p.enginesRunning());
                if (p.counts() != null) {
                    for (int r = 0; r < Math.min(ranks.length, p.counts().size()); r++) {
                        RankLoad load = p.counts().get(r);
                        balancer.update(r, load.waiting(), load.running());
                    }
                }
            } catch (RuntimeException e) {
                if (stopping) return;
                LOG.log(Level.ERROR, "DP client coordinator loop: " + e, e);
            }
        }
    }

    /** The coordinator's wave as this front end knows it (tests, status). */
    int currentWave() { return currentWave; }

    @Override
    public List<WaveStats> rankWaveStats() {
        List<WaveStats> out = new ArrayList<>();
        for (Rank r : ranks) {
            WaveStats w = r.stats.wave();
            if (w != null) out.add(w);
        }
        return out;
    }

    @Override
    public void abort(String requestId) {
        int rank = inFlight.rankOf(requestId);
        if (rank < 0) return; // finished already, or never ours
        try {
            connection.send(rank, new AbortRequests(List.of(requestId)));
        } catch (ProtocolException | RuntimeException e) {
            LOG.log(Level.WARNING, "could not send the abort of " + requestId + " to DP rank " + rank + ": " + e.getMessage());
        }
    }

    @Override
    public EngineStats stats() {
        int running = 0, waiting = 0, used = 0, total = 0;
        long prompt = 0, generated = 0, finished = 0, steps = 0, queries = 0, hits = 0, preemptions = 0;
        for (EngineStats s : rankStats()) {
            running += s.running();
            waiting += s.waiting();
            prompt += s.promptTokens();
            generated += s.generationTokens();
            finished += s.finishedRequests();
            steps += s.steps();
            used += s.kvBlocksUsed();
            total += s.kvBlocksTotal();
            queries += s.prefixCacheQueries();
            hits += s.prefixCacheHits();
            preemptions += s.preemptions();
        }
        return new EngineStats(running, waiting, prompt, generated, finished, steps, "dp", used, total, queries, hits,
                preemptions, null);
    }

    @Override
    public List<EngineStats> rankStats() {
        List<EngineStats> out = new ArrayList<>(ranks.length);
        for (Rank r : ranks) {
            SchedulerStats s = r.stats;
            int used = (int) Math.round(s.kvCacheUsage() * r.kvBlocks);
            out.add(new EngineStats(s.running(), s.waiting(), s.promptTokens(), s.generationTokens(), s.finishedRequests(),
                    s.steps(), Integer.toString(r.index), used, r.kvBlocks, s.prefixCacheQueries(), s.prefixCacheHits(),
                    s.preemptions(), null));
        }
        return out;
    }

    @Override
    public String unhealthyReason() {
        List<String> dead = new ArrayList<>();
        for (Rank r : ranks) if (r.deadReason != null) dead.add(r.deadReason);
        if (!dead.isEmpty()) return String.join("; ", dead);
        if (!receiver.isAlive() && !stopping) return "the DP client's receive thread is not running";
        return null;
    }

    private void receiveLoop() {
        while (!stopping) {
            try {
                ProtocolMessage m = connection.receiveOutput(RECEIVE_POLL);
                switch (m) {
                    case null -> { }
                    case EngineOutputs o -> onOutputs(o);
                    case EngineDead d -> {
                        if (d.engineRank() < ranks.length) markDead(d.engineRank(), "DP engine " + d.engineRank() + " is dead: " + d.reason());
                    }
                    default -> LOG.log(Level.WARNING, "ignored " + m.getClass().getSimpleName() + " on the output socket");
                }
                checkSilence();
            } catch (RuntimeException e) {
                if (stopping) return;
                LOG.log(Level.ERROR, "DP client receive loop: " + e, e);
            }
        }
    }

    private void onOutputs(EngineOutputs o) {
        if (o.engineRank() >= ranks.length) {
            LOG.log(Level.WARNING, "dropped outputs of unknown DP rank " + o.engineRank());
            return;
        }
        Rank rank = ranks[o.engineRank()];
        rank.lastSeenNanos = System.nanoTime();
        if (o.stats() != null) {
            rank.stats = o.stats();
            balancer.update(rank.index, o.stats().waiting(), o.stats().running());
        }
        for (RequestDelta d : o.outputs()) {
            InFlightRequests.Entry e = d.finished() ? inFlight.remove(d.requestId()) : inFlight.get(d.requestId());
            if (e != null) deliver(e, d.toRequestOutput());
        }
        // A finished id still mapped ended without a final output reaching us: end it for the caller.
        for (String id : o.finishedRequests()) {
            InFlightRequests.Entry e = inFlight.remove(id);
            if (e != null) deliver(e, abortOutput(id, "DP engine " + rank.index + " finished the request without a final output"));
        }
    }

    private void checkSilence() {
        long now = System.nanoTime();
        for (Rank r : ranks) {
            if (r.deadReason == null && now - r.lastSeenNanos > silenceNanos) {
                markDead(r.index, "DP engine " + r.index + " sent nothing for " + Duration.ofNanos(silenceNanos).toSeconds()
                        + " s (its process is gone or hung)");
            }
        }
    }

    private void markDead(int index, String reason) {
        Rank r = ranks[index];
        if (r.deadReason != null) return;
        r.deadReason = reason;
        LOG.log(Level.ERROR, reason + "; it gets no new requests and /health reports 503");
        for (InFlightRequests.Entry e : inFlight.removeRank(index)) deliver(e, abortOutput(e.requestId(), reason));
    }

    private static RequestOutput abortOutput(String requestId, String error) {
        return new RequestOutput(requestId, new int[0], null, FinishReason.ABORT, null, 0, 0, error);
    }

    // A listener's failure must not end the receive loop that serves every other request.
    private static void deliver(InFlightRequests.Entry e, RequestOutput out) {
        try {
            e.listener().onOutput(out);
        } catch (RuntimeException ex) {
            LOG.log(Level.WARNING, "output listener of " + e.requestId() + " failed", ex);
        }
    }

    @Deactivate
    void deactivate() {
        stopping = true;
        try {
            receiver.join(2000);
            if (coordinatorReceiver != null) coordinatorReceiver.join(2000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (coordinator != null) coordinator.close();
        for (InFlightRequests.Entry e : inFlight.removeAll()) deliver(e, abortOutput(e.requestId(), "the server is shutting down"));
    }
}
