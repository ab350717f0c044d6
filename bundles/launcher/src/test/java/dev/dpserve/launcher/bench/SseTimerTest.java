// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.launcher.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.PrimitiveIterator;
import java.util.stream.LongStream;
import org.junit.jupiter.api.Test;

class SseTimerTest {

    private static final long MS = 1_000_000L;

    /** A fake clock: returns the given times (ms) in order, one per content chunk. */
    private static java.util.function.LongSupplier clock(long... ms) {
        PrimitiveIterator.OfLong it = LongStream.of(ms).iterator();
        return () -> it.nextLong() * MS;
    }

    private static ByteArrayInputStream stream(String s) {
        return new ByteArrayInputStream(s.getBytes(StandardCharsets.UTF_8));
    }

    static final String COMPLETION = """
            : ping

            data: {"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"index":0,"text":"He","logprobs":null,"finish_reason":null,"stop_reason":null}],"usage":null}

            data: {"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"index":0,"text":"llo","logprobs":null,"finish_reason":null,"stop_reason":null}],"usage":null}

            data: {"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"index":0,"text":" wor","logprobs":null,"finish_reason":null,"stop_reason":null}],"usage":null}

            data: {"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"index":0,"text":"ld","logprobs":null,"finish_reason":"length","stop_reason":null}],"usage":null}

            data: {"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}

            data: [DONE]

            """;

    @Test
    void completionTimings() throws Exception {
        // sent at 100 ms; content chunks at 130, 140, 160, 200 ms
        RequestOutput o = SseTimer.read(stream(COMPLETION), false, 100 * MS, 3, clock(130, 140, 160, 200));
        assertTrue(o.success, o.error);
        assertEquals(0.030, o.ttft, 1e-12);
        assertEquals(List.of(0.010, 0.020, 0.040), o.itl.stream().map(d -> Math.round(d * 1e6) / 1e6).toList());
        assertEquals(0.100, o.latency, 1e-12, "E2EL = last content chunk - send");
        assertEquals(5, o.outputTokens, "from usage.completion_tokens, though only 4 chunks came (a chunk may carry several tokens)");
        assertEquals("Hello world", o.generatedText.toString());
        assertEquals(3, o.promptLen);

        BenchmarkMetrics m = BenchmarkMetrics.calculate(List.of(o), 1.0, java.util.Map.of(), java.util.Map.of());
        assertEquals((0.100 - 0.030) / (5 - 1), m.values.get("tpot")[0], 1e-12, "TPOT = (latency - ttft)/(out - 1)");
    }

    @Test
    void chatTimingsAndRoleChunk() throws Exception {
        String chat = """
                data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}

                data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}

                data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"!"},"finish_reason":"stop"}]}

                data: {"id":"c","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":2,"completion_tokens":2,"total_tokens":4}}

                data: [DONE]

                """;
        RequestOutput o = SseTimer.read(stream(chat), true, 0, 2, clock(5, 9, 12));
        assertTrue(o.success);
        assertEquals(0.005, o.ttft, 1e-12, "the role chunk has non-empty choices: it sets TTFT, as in vLLM");
        assertEquals(2, o.itl.size());
        assertEquals(0.012, o.latency, 1e-12);
        assertEquals("Hi!", o.generatedText.toString());
        assertEquals(2, o.outputTokens);
    }

    @Test
    void noUsageLeavesOutputTokensUnknown() throws Exception {
        String s = "data: {\"choices\":[{\"text\":\"a\"}]}\n\ndata: [DONE]\n\n";
        RequestOutput o = SseTimer.read(stream(s), false, 0, 1, clock(7));
        assertTrue(o.success);
        assertEquals(-1, o.outputTokens);
        assertTrue(o.itl.isEmpty());
        assertEquals(o.ttft, o.latency);
    }

    @Test
    void streamWithoutContentFails() throws Exception {
        RequestOutput o = SseTimer.read(stream("data: [DONE]\n\n"), false, 0, 1, clock());
        assertFalse(o.success);
        assertTrue(o.error.contains("Never received a valid chunk"), o.error);
    }

    @Test
    void errorEventAfterHeadersFails() throws Exception {
        String s = "data: {\"choices\":[{\"text\":\"a\"}]}\n\n"
                + "data: {\"error\":{\"message\":\"engine died\",\"type\":\"InternalServerError\",\"param\":null,\"code\":500}}\n\n"
                + "data: [DONE]\n\n";
        RequestOutput o = SseTimer.read(stream(s), false, 0, 1, clock(3));
        assertFalse(o.success);
        assertTrue(o.error.contains("engine died"), o.error);
    }
}
