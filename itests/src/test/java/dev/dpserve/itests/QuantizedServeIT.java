// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotEquals;
import static org.junit.Assert.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.File;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.AfterClass;
import org.junit.BeforeClass;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.Timeout;

/**
 * {@code dpserve serve --quantization w8a8} as a real process: the projections load as int8 and the
 * server answers from them (the quantized model's accuracy is checked against the float64 reference
 * in the model bundle's W8A8Test; here: the CLI → engine → model path, and the first greedy token of
 * the golden prompts, which int8 rounding must not move except on near ties).
 */
public class QuantizedServeIT {

    @Rule
    public final Timeout timeout = Timeout.seconds(180);

    private static final ObjectMapper JSON = new ObjectMapper();
    private static ServerProcess server;

    @BeforeClass
    public static void startServer() throws Exception {
        server = ServerProcess.start(TestSupport.fixture("llama-tiny"), "llama-w8a8", "serve-llama-w8a8.log",
                "--max-model-len", "256", "--seed", "1", "--quantization", "w8a8");
    }

    @AfterClass
    public static void stopServer() throws Exception {
        if (server != null) server.close();
    }

    @Test
    public void servesFromInt8Weights() throws Exception {
        String log = Files.readString(server.log);
        assertTrue(log, log.contains("I8 weights"));
        JsonNode golden = JSON.readTree(TestSupport.fixture("llama-tiny").resolve("golden.json").toFile());
        int same = 0;
        int prompts = 0;
        for (JsonNode p : golden.path("prompts")) {
            String body = "{\"model\":\"llama-w8a8\",\"prompt\":" + p.path("prompt") + ",\"max_tokens\":4,"
                    + "\"temperature\":0,\"ignore_eos\":true,\"return_token_ids\":true}";
            HttpResponse<String> r = server.post("/v1/completions", body);
            assertEquals(r.body(), 200, r.statusCode());
            JsonNode ids = JSON.readTree(r.body()).path("choices").path(0).path("token_ids");
            assertEquals(r.body(), 4, ids.size());
            if (ids.get(0).asInt() == p.path("generated").get(0).asInt()) same++;
            prompts++;
        }
        assertTrue(same + " of " + prompts + " first tokens equal the float reference's", same >= prompts - 2);
    }

    @Test
    public void unknownMethodIsAUsageError() throws Exception {
        Path out = TestSupport.work().resolve("serve-bad-quantization.log");
        Process p = new ProcessBuilder(TestSupport.dist().resolve("bin/dpserve").toString(), "serve", "--quantization", "awq")
                .redirectErrorStream(true).redirectOutput(out.toFile()).redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                .start();
        try {
            assertTrue(p.waitFor(60, TimeUnit.SECONDS));
            assertNotEquals(0, p.exitValue());
            String text = Files.readString(out);
            assertTrue(text, text.contains("--quantization: invalid choice 'awq'"));
        } finally {
            p.destroyForcibly();
        }
    }
}
