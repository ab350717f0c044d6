// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.engine;

import dev.dpserve.api.scheduler.SchedulingPolicy;
import java.util.List;
import java.util.Map;
import org.osgi.framework.Constants;

/**
 * Chooses the scheduling policy among the registered services: those named as configured (any
 * when the configured name is empty), then the highest {@code service.ranking}, then the lowest
 * {@code service.id} (the oldest registration).
 */
final class PolicySelector {

    private PolicySelector() {
    }

    static EngineCore.ActivePolicy select(List<Map.Entry<Map<String, Object>, SchedulingPolicy>> services, String configuredName) {
        Map.Entry<Map<String, Object>, SchedulingPolicy> best = null;
        for (Map.Entry<Map<String, Object>, SchedulingPolicy> e : services) {
            String name = nameOf(e.getKey());
            if (!configuredName.isEmpty() && !configuredName.equals(name)) continue;
            if (best == null || better(e.getKey(), best.getKey())) best = e;
        }
        return best == null ? null : new EngineCore.ActivePolicy(nameOf(best.getKey()), best.getValue());
    }

    private static boolean better(Map<String, Object> a, Map<String, Object> b) {
        int ra = ranking(a);
        int rb = ranking(b);
        if (ra != rb) return ra > rb;
        return id(a) < id(b);
    }

    static String nameOf(Map<String, Object> props) {
        Object n = props.get(SchedulingPolicy.NAME);
        return n == null ? "" : n.toString();
    }

    private static int ranking(Map<String, Object> props) {
        return props.get(Constants.SERVICE_RANKING) instanceof Integer r ? r : 0;
    }

    private static long id(Map<String, Object> props) {
        return props.get(Constants.SERVICE_ID) instanceof Long l ? l : Long.MAX_VALUE;
    }
}
