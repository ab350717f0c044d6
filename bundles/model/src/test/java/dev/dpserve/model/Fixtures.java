// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model;

import dev.dpserve.api.model.CausalLm;
import dev.dpserve.api.model.ModelSource;
import dev.dpserve.api.tensor.KernelBackend;
import dev.dpserve.model.llama.LlamaArchitecture;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Test fixtures: the golden checkpoints under src/test/resources/fixtures and an NPY reader. */
public final class Fixtures {

    private Fixtures() {
    }

    public static Path dir(String name) {
        try {
            return Path.of(Fixtures.class.getResource("/fixtures/" + name + "/config.json").toURI()).getParent();
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    public static CausalLm load(Path dir, KernelBackend backend, String dtype) {
        try {
            return new LlamaArchitecture(backend).load(new ModelSource(dir, ConfigJson.read(dir), dtype));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
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
