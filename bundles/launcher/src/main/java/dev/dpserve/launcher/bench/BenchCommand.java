// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.launcher.bench;

import java.io.PrintStream;
import java.util.List;

/**
 * {@code dpserve bench SUBCOMMAND}: client-side benchmarks against a running server. Returns the
 * exit code: 0 when the benchmark ran (even if requests failed), 2 for usage errors, 1 when the
 * server cannot be reached or rejects the initial test request or the tokenizer endpoints.
 */
public final class BenchCommand {

    private BenchCommand() {
    }

    public static int run(List<String> args, PrintStream out, PrintStream err) throws Exception {
        if (args.isEmpty() || args.getFirst().equals("--help") || args.getFirst().equals("-h")) {
            out.print(usage());
            return args.isEmpty() ? 2 : 0;
        }
        if (!args.getFirst().equals("serve")) {
            err.println("dpserve: error: unknown bench command '" + args.getFirst() + "' (only 'serve')");
            return 2;
        }
        List<String> rest = args.subList(1, args.size());
        if (rest.contains("--help") || rest.contains("-h")) {
            out.print(new BenchServeOptions().help());
            return 0;
        }
        try {
            BenchServeOptions options = BenchServeOptions.parse(rest);
            return new ServeBenchmark(options, out, err).run();
        } catch (BenchUsageException e) {
            err.println("dpserve: error: " + e.getMessage());
            return 2;
        } catch (java.io.IOException e) { // unreachable server, failed test request, tokenizer endpoints refusing
            err.println("dpserve bench serve: " + e.getMessage());
            return 1;
        }
    }

    static String usage() {
        return """
                usage: dpserve bench <command> [flags]

                commands:
                  serve    load-test a running OpenAI-compatible server (vLLM's `bench serve`);
                           'dpserve bench serve --help' lists the flags
                """;
    }
}
