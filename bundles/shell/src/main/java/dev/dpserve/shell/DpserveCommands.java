// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.shell;

import dev.dpserve.api.engine.EngineStats;
import dev.dpserve.api.engine.InferenceEngine;
import dev.dpserve.api.engine.ModelCard;
import java.io.IOException;
import java.util.Collections;
import java.util.Dictionary;
import java.util.List;
import java.util.TreeMap;
import org.apache.felix.service.command.Descriptor;
import org.osgi.framework.InvalidSyntaxException;
import org.osgi.service.cm.Configuration;
import org.osgi.service.cm.ConfigurationAdmin;
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
        "osgi.command.function=config"})
public final class DpserveCommands {

    @Reference(cardinality = ReferenceCardinality.MULTIPLE, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY)
    private volatile List<InferenceEngine> engines;

    @Reference(cardinality = ReferenceCardinality.OPTIONAL, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY)
    private volatile ConfigurationAdmin configAdmin;

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
