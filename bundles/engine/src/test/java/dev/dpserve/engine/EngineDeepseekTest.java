// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.dpserve.api.engine.EngineRequest;
import dev.dpserve.api.engine.EngineStats;
import dev.dpserve.api.engine.SamplingParams;
import dev.dpserve.api.model.CausalLm;
import dev.dpserve.api.model.KvCacheLayout;
import dev.dpserve.api.model.ModelSource;
import dev.dpserve.engine.EngineCoreTest.Collector;
import dev.dpserve.model.ConfigJson;
import dev.dpserve.model.deepseek.DeepseekV3Architecture;
import dev.dpserve.tensor.JavaKernelBackend;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The engine on the real DeepSeek-V3 model (deepseek-v3-tiny fixture, paged MLA cache): greedy
 * requests give the fixture's golden tokens, alone and concurrently under a block budget that forces
 * preemption, with prefix hits.
 */
class EngineDeepseekTest {

    private static final Path FIXTURE = Path.of("../model/src/test/resources/fixtures/deepseek-v3-tiny");

    private static List<int[]> prompts;
    private static List<List<Integer>> golden;

    @BeforeAll
    static void readGolden() throws Exception {
        prompts = new ArrayList<>();
        golden = new ArrayList<>();
        for (JsonNode p : new ObjectMapper().readTree(FIXTURE.resolve("golden.json").toFile()).get("prompts")) {
            int[] prompt = new int[p.get("prompt").size()];
            for (int i = 0; i < prompt.length; i++) prompt[i] = p.get("prompt").get(i).asInt();
            List<Integer> tokens = new ArrayList<>();
            p.get("generated").forEach(t -> tokens.add(t.asInt()));
            prompts.add(prompt);
            golden.add(tokens);
        }
        // the longer prompts once more, so that later copies find the earlier ones' blocks
        for (int i = 4; i < 8; i++) {
            prompts.add(prompts.get(i));
            golden.add(golden.get(i));
        }
    }

    private static CausalLm load() throws Exception {
        return new DeepseekV3Architecture(new JavaKernelBackend()).load(new ModelSource(FIXTURE, ConfigJson.read(FIXTURE), "auto"));
    }

    private static List<List<Integer>> run(EngineCore.KvConfig kv, EngineCore.Limits limits, String policy, boolean concurrent,
                                           EngineStats[] stats) throws Exception {
        List<List<Integer>> out = new ArrayList<>();
        try (CausalLm model = load();
             EngineCore core = new EngineCore(model, limits, kv, EnginePagedTest.policy(policy), Set.of(), 0, "deepseek")) {
            assertEquals(KvCacheLayout.MLA, model.kvCacheLayout().kind());
            List<Collector> cs = new ArrayList<>();
            for (int i = 0; i < prompts.size(); i++) {
                Collector c = new Collector();
                SamplingParams greedy = new SamplingParams(0, 1, 0, 0, null, golden.get(i).size(), 0, Set.of(), true, -1);
                core.submit(new EngineRequest("r" + i, prompts.get(i), greedy, i), c::accept);
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

    @ParameterizedTest
    @ValueSource(strings = {"v1", "ascend"})
    void concurrentWithPreemptionAndPrefixHitsEqualsGoldenAndOneByOne(String policy) throws Exception {
        List<List<Integer>> alone = run(new EngineCore.KvConfig(256, 4, false), new EngineCore.Limits(128, 8, 64),
                policy, false, null);
        assertEquals(golden, alone);
        // 23 usable blocks of 4 tokens hold 92 tokens; 12 requests of up to 64 tokens need 476: preemption. The
        // token budget still takes a whole recompute of 63 tokens, which the prefill-first policy never splits.
        EngineStats[] stats = new EngineStats[1];
        List<List<Integer>> together = run(new EngineCore.KvConfig(24, 4, true), new EngineCore.Limits(128, 6, 64, 8),
                policy, true, stats);
        assertEquals(alone, together);
        assertTrue(stats[0].preemptions() > 0, "preempted: " + stats[0]);
        assertTrue(stats[0].prefixCacheHits() > 0, "prefix hits: " + stats[0]);
    }
}
