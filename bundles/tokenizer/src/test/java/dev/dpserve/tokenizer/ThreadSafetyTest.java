// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/** One tokenizer shared by several threads (the word cache is the only mutable state). */
class ThreadSafetyTest {

    @Test
    void concurrentEncodesMatchTheGoldenIds() throws Exception {
        List<JsonNode> cases = GoldenData.jsonl("cases.jsonl");
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            List<Future<?>> futures = new ArrayList<>();
            for (int worker = 0; worker < 4; worker++) {
                int offset = worker * 37;
                futures.add(pool.submit(() -> {
                    for (int round = 0; round < 3; round++) {
                        for (int i = 0; i < cases.size(); i++) {
                            JsonNode c = cases.get((i + offset) % cases.size());
                            HfTokenizer t = GoldenData.tokenizer(c.path("tokenizer").asText());
                            assertArrayEquals(GoldenData.ints(c.path("ids_no_special")), t.encode(c.path("input").asText(), false),
                                    c.path("case_id").asText());
                        }
                    }
                    return null;
                }));
            }
            for (Future<?> f : futures) f.get();
        } finally {
            pool.shutdownNow();
        }
    }
}
