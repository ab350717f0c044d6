// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.launcher;

import dev.dpserve.model.generate.CheckpointGenerator;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;

/** {@code dpserve make-model} and the default model that {@code serve} generates once. */
final class ModelGenerator {

    /** Bump when the default model's shape or the generator's output changes. */
    static final String DEFAULT_MODEL = "tiny-deepseek-v3-v1";

    private ModelGenerator() {
    }

    static int run(List<String> args, PrintStream out, PrintStream err) throws IOException {
        if (args.contains("--help") || args.contains("-h")) {
            out.println("usage: dpserve make-model --arch llama|qwen2 --out DIR [--seed 0] [--hidden 256] [--layers 4] [--heads 8]\n"
                    + "         [--kv-heads 4] [--intermediate 688] [--vocab 2048] [--max-position 4096] [--dtype f32|bf16|f16]\n"
                    + "         [--tie-embeddings] [--shard-size-mb N]\n"
                    + "Writes a deterministic checkpoint with random weights (same seed, same bytes).");
            return 0;
        }
        CheckpointGenerator.Options options;
        try {
            options = CheckpointGenerator.Options.parse(args.toArray(String[]::new));
        } catch (IllegalArgumentException e) {
            err.println("dpserve make-model: error: " + e.getMessage() + " (see dpserve make-model --help)");
            return 2;
        }
        CheckpointGenerator.generate(options);
        out.println("wrote " + options.out());
        return 0;
    }

    /** The default model directory, generated on first use into the cache dir. */
    static Path defaultModel(PrintStream err) throws IOException {
        Path dir = cacheDir().resolve("models").resolve(DEFAULT_MODEL);
        if (Files.isRegularFile(dir.resolve("config.json"))) return dir;
        Files.createDirectories(dir.getParent());
        Path tmp = Files.createTempDirectory(dir.getParent(), DEFAULT_MODEL + ".tmp");
        err.println("dpserve: generating the default tiny model (random weights) into " + dir);
        CheckpointGenerator.generate(CheckpointGenerator.Options.defaults("deepseek_v3", tmp));
        try {
            Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            if (!Files.isRegularFile(dir.resolve("config.json"))) throw e; // another process won the race
        }
        return dir;
    }

    static Path cacheDir() {
        String env = System.getenv("DPSERVE_CACHE_DIR");
        if (env != null && !env.isBlank()) return Path.of(env);
        String xdg = System.getenv("XDG_CACHE_HOME");
        return (xdg != null && !xdg.isBlank() ? Path.of(xdg) : Path.of(System.getProperty("user.home"), ".cache")).resolve("dpserve");
    }
}
