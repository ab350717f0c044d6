// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.engine;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.dpserve.api.engine.EngineRequest;
import dev.dpserve.api.engine.EngineStats;
import dev.dpserve.api.engine.EngineUnavailableException;
import dev.dpserve.api.engine.InferenceEngine;
import dev.dpserve.api.engine.InvalidRequestException;
import dev.dpserve.api.engine.ModelCard;
import dev.dpserve.api.engine.OutputListener;
import dev.dpserve.api.engine.WaveStats;
import dev.dpserve.api.model.CausalLm;
import dev.dpserve.api.parallel.Communicator;
import dev.dpserve.api.parallel.LockstepEngine;
import dev.dpserve.api.parallel.WaveEvents;
import dev.dpserve.api.model.ModelArchitecture;
import dev.dpserve.api.model.KvCacheLayout;
import dev.dpserve.api.model.ModelSource;
import dev.dpserve.api.scheduler.SchedulingPolicy;
import dev.dpserve.api.tokenizer.Tokenizer;
import dev.dpserve.api.tokenizer.TokenizerFactory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.logging.Logger;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.ConfigurationPolicy;
import org.osgi.service.component.annotations.Deactivate;
import org.osgi.service.component.annotations.Modified;
import org.osgi.service.component.annotations.FieldOption;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ReferenceCardinality;
import org.osgi.service.component.annotations.ReferencePolicy;
import org.osgi.service.metatype.annotations.Designate;

/**
 * The engine for DP=1: loads the configured model with the architecture chosen by
 * {@code model_type}, sizes its paged KV cache, and runs an {@link EngineCore} in this JVM (vLLM's
 * in-process client). The scheduling policy is whichever {@link SchedulingPolicy} service is
 * current at each step (see {@link PolicySelector}); policies may come and go while it runs.
 */
@Component(service = {InferenceEngine.class, LockstepEngine.class}, configurationPid = "dev.dpserve.engine",
        configurationPolicy = ConfigurationPolicy.REQUIRE, property = "dpserve.engine.kind=inprocess")
@Designate(ocd = EngineConfig.class)
public final class InProcessEngine implements InferenceEngine, LockstepEngine {

    private static final Logger LOG = Logger.getLogger(InProcessEngine.class.getName());

    private final CausalLm model;
    private final Tokenizer tokenizer;
    private final EngineCore core;
    private final ModelCard card;
    private volatile String schedulerName;
    private final EngineConfig activated;

    @Reference(name = "schedulingPolicy", service = SchedulingPolicy.class, cardinality = ReferenceCardinality.MULTIPLE,
            policy = ReferencePolicy.DYNAMIC, fieldOption = FieldOption.REPLACE, bind = "policiesChanged",
            unbind = "policiesChanged")
    private volatile List<Map.Entry<Map<String, Object>, SchedulingPolicy>> policies = List.of();

    @Activate
    public InProcessEngine(EngineConfig config,
                           @Reference(name = "architecture") ModelArchitecture architecture,
                           @Reference(name = "tokenizerFactory", cardinality = org.osgi.service.component.annotations.ReferenceCardinality.AT_LEAST_ONE) List<TokenizerFactory> tokenizerFactories) throws IOException {
        Path dir = Path.of(config.model()).toAbsolutePath().normalize();
        Map<String, Object> hfConfig = readJson(dir.resolve("config.json"));
        long t0 = System.nanoTime();
        this.tokenizer = loadTokenizer(dir, tokenizerFactories);
        this.model = architecture.load(new ModelSource(dir, hfConfig, config.dtype(), config.quantization()));
        this.schedulerName = config.scheduler().strip();
        this.activated = config;
        try {
            int maxModelLen = resolveMaxModelLen(config.max_model_len(), model.info().maxPositionEmbeddings());
            int batched = config.max_num_batched_tokens() > 0 ? config.max_num_batched_tokens() : Math.max(2048, maxModelLen);
            KvCacheLayout layout = model.kvCacheLayout();
            long deviceMemory = config.device_memory() > 0 ? config.device_memory()
                    : KvCacheSizing.physicalMemoryBytes() / Math.max(1, config.data_parallel_size_local());
            KvCacheSizing sizing = KvCacheSizing.compute(config.kv_cache_memory(), config.gpu_memory_utilization(),
                    deviceMemory, model.info().weightBytes(), layout.bytesPerToken(), config.block_size(),
                    KvCacheSizing.heapHeadroom(), config.max_num_seqs(), maxModelLen);
            LOG.info(() -> String.format("KV cache: %d blocks x %d tokens (%s, %s layout, %d bytes/token; %s); prefix caching %s",
                    sizing.numBlocks() - 1, config.block_size(), KvCacheSizing.mib(sizing.budgetBytes()), layout.kind(),
                    layout.bytesPerToken(), sizing.explanation(), config.enable_prefix_caching() ? "on" : "off"));
            Set<Integer> eos = eosTokenIds(dir, hfConfig, tokenizer);
            String served = config.served_model_name().isBlank() ? config.model() : config.served_model_name();
            this.card = new ModelCard(served, config.model(), maxModelLen, model.info().vocabSize(),
                    model.info().modelType(), System.currentTimeMillis() / 1000);
            this.core = new EngineCore(model,
                    new EngineCore.Limits(maxModelLen, config.max_num_seqs(), batched, config.long_prefill_token_threshold()),
                    new EngineCore.KvConfig(sizing.numBlocks(), config.block_size(), config.enable_prefix_caching()),
                    () -> PolicySelector.select(policies, schedulerName), eos, config.seed(), "0");
            LOG.info(() -> String.format("loaded %s (%s, %d layers, %.1fM parameters, %s weights) in %.1f s; max_model_len=%d",
                    dir, model.info().modelType(), model.info().numLayers(), model.info().parameterCount() / 1e6,
                    model.info().weightDtype(), (System.nanoTime() - t0) / 1e9, maxModelLen));
        } catch (RuntimeException e) {
            model.close();
            throw e;
        }
    }

    /**
     * A configuration update while running: the scheduling policy switches at the next step
     * boundary (nothing is lost); other changes need the component restarted and are only logged.
     */
    @Modified
    void modified(EngineConfig config) {
        String name = config.scheduler().strip();
        if (!name.equals(schedulerName)) {
            LOG.info("scheduling policy: '" + schedulerName + "' -> '" + name + "' at the next step");
            schedulerName = name;
            policiesChanged(Map.of());
        }
        if (!sameExceptScheduler(activated, config)) {
            LOG.warning("engine configuration changed; settings other than the scheduler apply after a restart"
                    + " (scr:disable/scr:enable dev.dpserve.engine.InProcessEngine, or restart dpserve)");
        }
    }

    private static boolean sameExceptScheduler(EngineConfig a, EngineConfig b) {
        return a.model().equals(b.model()) && a.served_model_name().equals(b.served_model_name())
                && a.max_model_len() == b.max_model_len() && a.max_num_seqs() == b.max_num_seqs()
                && a.max_num_batched_tokens() == b.max_num_batched_tokens() && a.seed() == b.seed()
                && a.dtype().equals(b.dtype()) && a.quantization().equals(b.quantization()) && a.block_size() == b.block_size()
                && a.enable_prefix_caching() == b.enable_prefix_caching()
                && a.gpu_memory_utilization() == b.gpu_memory_utilization() && a.device_memory() == b.device_memory()
                && a.kv_cache_memory() == b.kv_cache_memory()
                && a.long_prefill_token_threshold() == b.long_prefill_token_threshold();
    }

    static int resolveMaxModelLen(int requested, int modelLimit) {
        if (requested <= 0) return modelLimit;
        if (requested > modelLimit) {
            throw new IllegalArgumentException("--max-model-len " + requested
                    + " exceeds the model's max_position_embeddings " + modelLimit);
        }
        return requested;
    }

    private static Tokenizer loadTokenizer(Path dir, List<TokenizerFactory> factories) throws IOException {
        for (TokenizerFactory f : factories) {
            if (f.canLoad(dir)) return f.load(dir);
        }
        throw new IllegalArgumentException("no tokenizer factory can load " + dir + " (tokenizer.json missing?)");
    }

    /** EOS ids: generation_config.json eos_token_id (int or list), else config.json's, plus the tokenizer's. */
    static Set<Integer> eosTokenIds(Path dir, Map<String, Object> hfConfig, Tokenizer tokenizer) throws IOException {
        Set<Integer> eos = new HashSet<>();
        Path gen = dir.resolve("generation_config.json");
        Object fromGen = Files.exists(gen) ? readJson(gen).get("eos_token_id") : null;
        addIds(eos, fromGen != null ? fromGen : hfConfig.get("eos_token_id"));
        tokenizer.eosTokenId().ifPresent(eos::add);
        return eos;
    }

    private static void addIds(Set<Integer> out, Object value) {
        if (value instanceof Number n) out.add(n.intValue());
        else if (value instanceof List<?> list) for (Object o : list) addIds(out, o);
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> readJson(Path file) throws IOException {
        if (!Files.isRegularFile(file)) throw new IOException("missing " + file);
        return new ObjectMapper().readValue(file.toFile(), Map.class);
    }

    @Deactivate
    void deactivate() {
        core.close();
        model.close();
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
        String failure = core.failure();
        if (failure != null) throw new EngineUnavailableException(failure);
        core.submit(request, listener);
    }

    @Override
    public void abort(String requestId) { core.abort(requestId); }

    @Override
    public EngineStats stats() { return core.stats(); }

    @Override
    public String unhealthyReason() {
        String failure = core.failure();
        if (failure != null) return failure;
        if (PolicySelector.select(policies, schedulerName) == null) {
            return "no scheduling policy" + (schedulerName.isEmpty() ? "" : " named '" + schedulerName + "'")
                    + " (requests wait until a scheduler bundle is started)";
        }
        return null;
    }

    @Override
    public void joinGroup(Communicator group, WaveEvents events) { core.joinGroup(group, events); }

    @Override
    public void requestWave(int wave) { core.requestWave(wave); }

    @Override
    public void startWave(int wave, int excludeRank) { core.startWave(wave, excludeRank); }

    @Override
    public WaveStats waveStats() { return core.waveStats(); }

    @Override
    public String lockstepFailure() { return core.lockstepFailure(); }

    @Override
    public List<WaveStats> rankWaveStats() {
        WaveStats w = core.waveStats();
        return w == null ? List.of() : List.of(w);
    }

    /** Called by DS after {@link #policies} changed: the loop may be waiting for a policy. */
    void policiesChanged(Map<String, Object> properties) {
        EngineCore c = core;
        if (c != null) c.wakeUp();
    }
}
