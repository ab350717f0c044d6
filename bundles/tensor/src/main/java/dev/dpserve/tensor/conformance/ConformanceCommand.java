// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tensor.conformance;

import dev.dpserve.api.tensor.KernelBackend;
import java.util.List;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ReferenceCardinality;
import org.osgi.service.component.annotations.ReferencePolicy;
import org.osgi.service.component.annotations.ReferencePolicyOption;

/**
 * Gogo command {@code dpserve:conformance [NAME]}: runs the {@link KernelConformance} kit inside the
 * running framework on every registered kernel backend (or the one named), e.g. on a native
 * fragment just installed, and prints each report. Lives here because the kit's package is private
 * to this bundle.
 */
@Component(service = ConformanceCommand.class, property = {
        "osgi.command.scope=dpserve",
        "osgi.command.function=conformance"})
public final class ConformanceCommand {

    @Reference(cardinality = ReferenceCardinality.MULTIPLE, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY)
    private volatile List<KernelBackend> backends;

    /** The kit on every registered backend. */
    public String conformance() {
        return run(null);
    }

    /** The kit on the backend with this name. */
    public String conformance(String name) {
        return run(name);
    }

    private String run(String name) {
        List<KernelBackend> current = backends;
        if (current == null || current.isEmpty()) return "no kernel backend registered";
        StringBuilder sb = new StringBuilder();
        for (KernelBackend b : current) {
            if (name != null && !b.name().equals(name)) continue;
            KernelConformance.Report report = KernelConformance.check(b);
            sb.append(report.passed() ? "PASS " : "FAIL ").append(report.summary(20)).append('\n');
        }
        return sb.isEmpty() ? "no kernel backend named " + name : sb.toString().stripTrailing();
    }
}
