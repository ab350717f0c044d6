// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.launcher.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.function.LongSupplier;

/**
 * Reads an OpenAI streaming response (spec 8.4) and times it as vLLM's endpoint_request_func
 * does (spec 8.5): TTFT at the first {@code data:} chunk whose {@code choices} is non-empty, an
 * ITL value for each later such chunk (a chunk may carry several tokens), E2EL at the last one;
 * output tokens from the {@code usage} chunk. The clock is read once per content chunk, right
 * after its line arrives.
 */
final class SseTimer {

    private static final ObjectMapper MAPPER = new ObjectMapper();

    private SseTimer() {
    }

    /**
     * @param chat        true for chat.completion.chunk ({@code delta.content}), false for text_completion ({@code text})
     * @param startNanos  clock value when the request was sent
     * @param clock       System::nanoTime, or a fake in tests
     */
    static RequestOutput read(InputStream body, boolean chat, long startNanos, int promptLen, LongSupplier clock) throws IOException {
        RequestOutput out = new RequestOutput();
        out.startNanos = startNanos;
        out.promptLen = promptLen;
        boolean first = true;
        long recent = startNanos;
        BufferedReader reader = new BufferedReader(new InputStreamReader(body, StandardCharsets.UTF_8));
        String line;
        while ((line = reader.readLine()) != null) {
            String s = line.strip();
            if (s.isEmpty() || s.startsWith(":")) continue; // event separator or SSE comment (ping)
            if (!s.startsWith("data:")) continue;          // event:, id:, retry: carry nothing we time
            String payload = s.substring(5).strip();
            if (payload.equals("[DONE]")) continue;
            JsonNode data;
            try {
                data = MAPPER.readTree(payload);
            } catch (IOException e) {
                out.error = "malformed SSE chunk: " + abbreviate(payload);
                continue;
            }
            JsonNode choices = data.path("choices");
            if (choices.isArray() && !choices.isEmpty()) {
                long now = clock.getAsLong();
                if (first) {
                    out.ttft = (now - startNanos) / 1e9;
                    first = false;
                } else {
                    out.itl.add((now - recent) / 1e9);
                }
                recent = now;
                JsonNode c = choices.get(0);
                JsonNode text = chat ? c.path("delta").path("content") : c.path("text");
                if (text.isTextual()) out.generatedText.append(text.asText());
            }
            JsonNode usage = data.path("usage");
            if (usage.isObject() && usage.path("completion_tokens").isNumber()) {
                out.outputTokens = usage.path("completion_tokens").asInt();
            }
            if (data.path("error").isObject()) {
                JsonNode err = data.path("error");
                out.error = "stream error: " + err.path("message").asText(err.toString());
            } else if (data.path("object").asText("").equals("error")) {
                out.error = "stream error: " + data.path("message").asText(data.toString());
            }
        }
        if (first) {
            out.success = false;
            if (out.error.isEmpty()) {
                out.error = "Never received a valid chunk to calculate TTFT. This response will be marked as failed!";
            }
        } else {
            out.success = out.error.isEmpty();
        }
        out.latency = (recent - startNanos) / 1e9;
        return out;
    }

    static String abbreviate(String s) {
        String t = s.replace('\n', ' ');
        return t.length() <= 300 ? t : t.substring(0, 300) + "...";
    }
}
