// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.dpserve.api.model.CausalLm;
import dev.dpserve.api.model.ModelArchitecture;
import dev.dpserve.api.model.ModelSource;
import dev.dpserve.api.tensor.KernelBackend;
import dev.dpserve.model.deepseek.DeepseekV3Architecture;
import dev.dpserve.model.llama.LlamaArchitecture;
import dev.dpserve.tensor.JavaKernelBackend;
import dev.dpserve.tensor.VectorKernelBackend;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.function.Supplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.params.provider.Arguments;

/** Test fixtures: the golden checkpoints under src/test/resources/fixtures, their check and an NPY reader. */
public final class Fixtures {

    /** Block size of the golden checks' paged cache: small, so that every prompt spans several blocks. */
    public static final int GOLDEN_BLOCK_SIZE = 4;

    private Fixtures() {
    }

    public static Path dir(String name) {
        try {
            return Path.of(Fixtures.class.getResource("/fixtures/" + name + "/config.json").toURI()).getParent();
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The kernel backends the golden tests run on: the Java reference and the Vector API backend (2 threads). */
    public static Stream<Arguments> backends() {
        return Stream.of(
                Arguments.of("java", (Supplier<KernelBackend>) JavaKernelBackend::new),
                Arguments.of("vector", (Supplier<KernelBackend>) () -> new VectorKernelBackend(2)));
    }

    /** Loads {@code dir} with the architecture its config.json model_type names. */
    public static CausalLm load(Path dir, KernelBackend backend, String dtype) {
        try {
            Map<String, Object> config = ConfigJson.read(dir);
            ModelArchitecture arch = String.valueOf(config.get("model_type")).startsWith("deepseek")
                    ? new DeepseekV3Architecture(backend) : new LlamaArchitecture(backend);
            return arch.load(new ModelSource(dir, config, dtype));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Checks a golden fixture (see fixtures/README in the shared fixtures): for all prompts, the 24
     * greedy tokens, logits within {@code tolerance} on the top-10 ids at every step and on the whole
     * vocabulary at step 0, prefilling the prompt at once and decoding one token per step, in a paged
     * cache of {@value #GOLDEN_BLOCK_SIZE}-token blocks so that every sequence crosses block boundaries.
     */
    public static void assertMatchesGolden(Path dir, KernelBackend kernels, double tolerance) throws IOException {
        JsonNode golden = new ObjectMapper().readTree(dir.resolve("golden.json").toFile());
        float[][] step0 = readNpy2d(dir.resolve("logits_step0.npy"));
        try (CausalLm model = load(dir, kernels, "auto")) {
            int steps = golden.get("steps").asInt();
            assertEquals(24, steps);
            assertEquals(8, golden.get("prompts").size());
            for (JsonNode p : golden.get("prompts")) {
                int index = p.get("index").asInt();
                int[] prompt = ints(p.get("prompt"));
                int[] expectedTokens = ints(p.get("generated"));
                int[] generated = new int[steps];
                int blocks = 1 + (prompt.length + steps + GOLDEN_BLOCK_SIZE - 1) / GOLDEN_BLOCK_SIZE;
                PagedSequences.Seq seq = new PagedSequences(model, blocks, GOLDEN_BLOCK_SIZE).newSequence();
                float[] logits = seq.forward(prompt);
                assertEquals(step0[index].length, logits.length);
                for (int v = 0; v < logits.length; v++) {
                    assertEquals(step0[index][v], logits[v], tolerance, "prompt " + index + " step 0 logit " + v);
                }
                for (int k = 0; k < steps; k++) {
                    if (k > 0) logits = seq.forward(new int[] {generated[k - 1]});
                    JsonNode step = p.get("steps").get(k);
                    JsonNode ids = step.get("top10_ids");
                    for (int r = 0; r < ids.size(); r++) {
                        int id = ids.get(r).asInt();
                        assertEquals(step.get("top10_logits").get(r).asDouble(), logits[id], tolerance,
                                "prompt " + index + " step " + k + " logit of " + id);
                    }
                    generated[k] = argmax(logits);
                    assertEquals(expectedTokens[k], generated[k], "prompt " + index + " step " + k);
                }
                assertEquals(prompt.length + steps - 1, seq.length());
                assertArrayEquals(expectedTokens, generated);
            }
            assertTrue(model.info().parameterCount() > 0);
        }
    }

    private static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) out[i] = array.get(i).asInt();
        return out;
    }

    /** A 2-D little-endian F32 array from an NPY v1/v2 file, C order. */
    public static float[][] readNpy2d(Path file) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        byte[] magic = new byte[6];
        b.get(magic);
        if (!new String(magic, StandardCharsets.ISO_8859_1).equals("\u0093NUMPY")) throw new IOException(file + ": not NPY");
        int major = b.get();
        b.get();
        int headerLen = major == 1 ? Short.toUnsignedInt(b.getShort()) : b.getInt();
        byte[] header = new byte[headerLen];
        b.get(header);
        String h = new String(header, StandardCharsets.ISO_8859_1);
        if (!h.contains("'descr': '<f4'") || !h.contains("'fortran_order': False")) throw new IOException(file + ": need <f4 C order, got " + h);
        Matcher m = Pattern.compile("'shape': \\((\\d+), (\\d+)\\)").matcher(h);
        if (!m.find()) throw new IOException(file + ": need a 2-D shape, got " + h);
        int rows = Integer.parseInt(m.group(1));
        int cols = Integer.parseInt(m.group(2));
        float[][] out = new float[rows][cols];
        FloatBuffer fb = b.asFloatBuffer();
        for (float[] row : out) fb.get(row);
        return out;
    }

    public static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
        return best;
    }
}
