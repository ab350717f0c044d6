// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.dpserve.api.engine.EngineRequest;
import dev.dpserve.api.engine.EngineStats;
import dev.dpserve.api.engine.SamplingParams;
import dev.dpserve.api.model.CausalLm;
import dev.dpserve.api.model.ModelSource;
import dev.dpserve.engine.EngineCoreTest.Collector;
import dev.dpserve.model.ConfigJson;
import dev.dpserve.model.llama.LlamaArchitecture;
import dev.dpserve.tensor.JavaKernelBackend;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The engine on the real Llama model (llama-tiny fixture): batching, paging, prefix hits and preemption change no token. */
class EngineLlamaTest {

    private static final Path FIXTURE = Path.of("../model/src/test/resources/fixtures/llama-tiny");
    private static final int N = 6;

    private static CausalLm load() throws Exception {
        return new LlamaArchitecture(new JavaKernelBackend()).load(new ModelSource(FIXTURE, ConfigJson.read(FIXTURE), "auto"));
    }

    private static int[] prompt(int i) {
        int[] p = new int[10 + 2 * i];
        for (int j = 0; j < p.length; j++) p[j] = j < 10 ? 3 + j * 37 % 500 : 7 + (j * 53 + i * 101) % 500;
        return p;
    }

    private static SamplingParams sampling(int i, boolean seeded) {
        return seeded ? new SamplingParams(1.0, 0.9, 0, 0.0, 77L + i, 8, 0, Set.of(), true, -1)
                : new SamplingParams(0, 1, 0, 0, null, 8, 0, Set.of(), true, -1);
    }

    private static List<List<Integer>> run(EngineCore.KvConfig kv, EngineCore.Limits limits, String policy, boolean concurrent,
                                           boolean seeded, EngineStats[] stats) throws Exception {
        List<List<Integer>> out = new ArrayList<>();
        try (CausalLm model = load();
             EngineCore core = new EngineCore(model, limits, kv, EnginePagedTest.policy(policy), Set.of(), 0, "llama")) {
            List<Collector> cs = new ArrayList<>();
            for (int i = 0; i < N; i++) {
                Collector c = new Collector();
                core.submit(new EngineRequest("r" + i, prompt(i), sampling(i, seeded), i), c::accept);
                cs.add(c);
                if (!concurrent) c.await();
            }
            for (Collector c : cs) {
                c.await();
                out.add(c.tokens);
            }
            EngineStats s = EnginePagedTest.awaitIdle(core);
            assertEquals(0, s.kvBlocksUsed());
            if (stats != null) stats[0] = s;
        }
        return out;
    }

    @ParameterizedTest(name = "{0} seeded={1}")
    @CsvSource({"v1, false", "ascend, false", "v1, true"})
    void concurrentWithPreemptionAndPrefixHitsEqualsOneByOne(String policy, boolean seeded) throws Exception {
        List<List<Integer>> alone = run(new EngineCore.KvConfig(256, 4, false), new EngineCore.Limits(128, 8, 64),
                policy, false, seeded, null);
        // 10 usable blocks of 4 tokens cannot hold 6 requests of up to 27 tokens: preemption
        EngineStats[] stats = new EngineStats[1];
        List<List<Integer>> together = run(new EngineCore.KvConfig(11, 4, true), new EngineCore.Limits(128, 6, 32, 8),
                policy, true, seeded, stats);
        assertEquals(alone, together);
        assertTrue(stats[0].preemptions() > 0, "preempted: " + stats[0]);
        assertTrue(stats[0].prefixCacheHits() > 0, "prefix hits: " + stats[0]);
    }
}
