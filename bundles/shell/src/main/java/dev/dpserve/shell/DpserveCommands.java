// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.shell;

import dev.dpserve.api.engine.EngineStats;
import dev.dpserve.api.engine.InferenceEngine;
import dev.dpserve.api.engine.ModelCard;
import dev.dpserve.api.tensor.KernelSelection;
import java.io.IOException;
import java.util.Collections;
import java.util.Dictionary;
import java.util.List;
import java.util.TreeMap;
import org.apache.felix.service.command.Descriptor;
import org.osgi.framework.BundleContext;
import org.osgi.framework.BundleException;
import org.osgi.framework.Constants;
import org.osgi.framework.InvalidSyntaxException;
import org.osgi.framework.ServiceReference;
import dev.dpserve.api.scheduler.SchedulingPolicy;
import org.osgi.service.cm.Configuration;
import org.osgi.service.cm.ConfigurationAdmin;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ReferenceCardinality;
import org.osgi.service.component.annotations.ReferencePolicy;
import org.osgi.service.component.annotations.ReferencePolicyOption;

/** Gogo commands in scope {@code dpserve}: operate a running server from the console. */
@Component(service = DpserveCommands.class, immediate = true, property = {
        "osgi.command.scope=dpserve",
        "osgi.command.function=status",
        "osgi.command.function=models",
        "osgi.command.function=config",
        "osgi.command.function=scheduler",
        "osgi.command.function=shutdown",
        "osgi.command.function=backend"})
public final class DpserveCommands {

    @Reference(cardinality = ReferenceCardinality.MULTIPLE, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY)
    private volatile List<InferenceEngine> engines;

    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY)
    private volatile ConfigurationAdmin configAdmin;

    @Reference(service = SchedulingPolicy.class, cardinality = ReferenceCardinality.MULTIPLE, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY)
    private volatile List<ServiceReference<SchedulingPolicy>> policies;

    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY)
    private volatile KernelSelection kernels;

    private final BundleContext context;

    @Activate
    public DpserveCommands(BundleContext context) {
        this.context = context;
    }

    @Descriptor("stop the server: the framework stops, and the launcher then stops every engine process it started")
    public String shutdown() throws BundleException {
        // Stopping the system bundle returns at once; the framework stops on its own thread, so this
        // command's session can still print the answer.
        context.getBundle(0).stop();
        return "dpserve: shutting down";
    }

    @Descriptor("the kernel backend chosen per op and dtype, with the candidates and their scores")
    public String backend() {
        KernelSelection k = kernels;
        if (k == null) return "no kernel selection (the model bundle is not active)";
        StringBuilder sb = new StringBuilder();
        sb.append("backends: ").append(k.backends().isEmpty() ? "(none registered)" : String.join(", ", k.backends()))
                .append("; pinned: ").append(k.pinned().orElse("none (auto: best score per op)")).append('\n');
        sb.append(String.format("%-14s %-5s %-10s %s%n", "op", "dtype", "chosen", "candidates (score)"));
        for (KernelSelection.Choice c : k.choices()) {
            StringBuilder cands = new StringBuilder();
            for (KernelSelection.Candidate cand : c.candidates()) {
                if (!cands.isEmpty()) cands.append(", ");
                cands.append(cand.backend()).append(" (").append(cand.score()).append(')');
            }
            sb.append(String.format("%-14s %-5s %-10s %s%n", c.op(), c.dtype(), c.chosen() == null ? "-" : c.chosen(),
                    cands.isEmpty() ? "-" : cands));
        }
        return sb.toString().stripTrailing();
    }

    @Descriptor("pin a kernel backend for every op it supports, or \"auto\" for the best score per op (next step)")
    public String backend(@Descriptor("backend name (java, vector, native...) or auto") String name) {
        KernelSelection k = kernels;
        if (k == null) return "no kernel selection (the model bundle is not active)";
        if (name.equals("auto")) {
            k.unpin();
            return "kernel backends: best score per op (takes effect at the next step)";
        }
        try {
            k.pin(name);
        } catch (IllegalArgumentException e) {
            return e.getMessage();
        }
        return "kernel backend '" + name + "' pinned where it supports the op (takes effect at the next step)";
    }

    @Descriptor("the active scheduling policy and the registered ones")
    public String scheduler() {
        StringBuilder sb = new StringBuilder();
        List<InferenceEngine> current = engines;
        if (current != null) {
            for (InferenceEngine e : current) {
                String active = e.stats().scheduler();
                sb.append("engine ").append(e.stats().engineName()).append(": active policy ")
                        .append(active == null || active.isEmpty() ? "(none: requests wait)" : active).append('\n');
            }
        }
        List<ServiceReference<SchedulingPolicy>> refs = policies;
        if (refs == null || refs.isEmpty()) {
            sb.append("no scheduling policy registered");
        } else {
            sb.append("registered:");
            for (ServiceReference<SchedulingPolicy> r : refs) {
                Object ranking = r.getProperty(Constants.SERVICE_RANKING);
                sb.append("\n  ").append(r.getProperty(SchedulingPolicy.NAME)).append("  (bundle ")
                        .append(r.getBundle().getSymbolicName()).append(", service.ranking ")
                        .append(ranking == null ? 0 : ranking).append(')');
            }
        }
        return sb.toString();
    }

    @Descriptor("switch the scheduling policy at the next step boundary; requests carry over")
    public String scheduler(@Descriptor("policy name (v1, ascend), or \"\" for the highest ranking") String name)
            throws IOException {
        ConfigurationAdmin ca = configAdmin;
        if (ca == null) return "ConfigAdmin is not available";
        Configuration c = ca.getConfiguration("dev.dpserve.engine", "?");
        Dictionary<String, Object> props = c.getProperties();
        if (props == null) return "no engine configuration (dev.dpserve.engine)";
        props.put("scheduler", name);
        c.update(props);
        return "scheduler set to " + (name.isEmpty() ? "the highest-ranked policy" : "'" + name + "'")
                + " (takes effect at the next step)";
    }

    @Descriptor("model, engine and requests running/waiting")
    public String status() {
        List<InferenceEngine> current = engines;
        if (current == null || current.isEmpty()) {
            return "no engine registered (model loading, or no engine configuration)";
        }
        StringBuilder sb = new StringBuilder();
        for (InferenceEngine e : current) {
            ModelCard m = e.model();
            EngineStats s = e.stats();
            String health = e.unhealthyReason();
            sb.append(String.format("model %s (%s, max_model_len %d)%n", m.servedName(), m.modelType(), m.maxModelLen()));
            sb.append(String.format("engine %s: %s; running %d, waiting %d; finished %d; prompt tokens %d, generated tokens %d, steps %d%n",
                    s.engineName(), health == null ? "healthy" : "UNHEALTHY: " + health, s.running(), s.waiting(),
                    s.finishedRequests(), s.promptTokens(), s.generationTokens(), s.steps()));
            sb.append(String.format("  scheduler %s; KV blocks %d/%d used (%.1f%%); prefix cache hits %d of %d tokens; preemptions %d%n",
                    s.scheduler() == null || s.scheduler().isEmpty() ? "(none)" : s.scheduler(), s.kvBlocksUsed(), s.kvBlocksTotal(),
                    100 * s.kvCacheUsage(), s.prefixCacheHits(), s.prefixCacheQueries(), s.preemptions()));
        }
        return sb.toString().stripTrailing();
    }

    @Descriptor("served models")
    public String models() {
        List<InferenceEngine> current = engines;
        if (current == null || current.isEmpty()) return "no models";
        StringBuilder sb = new StringBuilder();
        for (InferenceEngine e : current) {
            ModelCard m = e.model();
            sb.append(m.servedName()).append("  root=").append(m.root()).append("  type=").append(m.modelType())
                    .append("  vocab=").append(m.vocabSize()).append("  max_model_len=").append(m.maxModelLen()).append('\n');
        }
        return sb.toString().stripTrailing();
    }

    @Descriptor("dpserve configurations held by ConfigAdmin")
    public String config() throws IOException, InvalidSyntaxException {
        ConfigurationAdmin ca = configAdmin;
        if (ca == null) return "ConfigAdmin is not available";
        Configuration[] configs = ca.listConfigurations("(service.pid=dev.dpserve.*)");
        if (configs == null) return "no dpserve configurations";
        StringBuilder sb = new StringBuilder();
        for (Configuration c : configs) {
            sb.append(c.getPid()).append('\n');
            Dictionary<String, Object> props = c.getProperties();
            TreeMap<String, Object> sorted = new TreeMap<>();
            for (String k : Collections.list(props.keys())) sorted.put(k, props.get(k));
            sorted.forEach((k, v) -> sb.append("  ").append(k).append(" = ").append(v).append('\n'));
        }
        return sb.toString().stripTrailing();
    }
}
