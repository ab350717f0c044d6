// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.parallel.bench;

import dev.dpserve.api.parallel.Communicator;
import dev.dpserve.api.parallel.GroupSpec;
import dev.dpserve.api.parallel.ReduceOp;
import dev.dpserve.parallel.ZmqCommunicatorFactory;

import java.net.ServerSocket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * The cost of the lockstep's per-step exchange: {@code calls} one-value MAX all-reduces (what the
 * engine does before every forward) between {@code ranks} ranks in threads of one JVM over
 * loopback TCP, after a warm-up. Prints the median and p99 per call as rank 0 sees it, for several
 * repetitions. Usage: {@code ExchangeBench [ranks=2] [calls=20000] [repetitions=3]}.
 */
public final class ExchangeBench {
    private ExchangeBench() {}

    public static void main(String[] args) throws Exception {
        int ranks = args.length > 0 ? Integer.parseInt(args[0]) : 2;
        int calls = args.length > 1 ? Integer.parseInt(args[1]) : 20000;
        int reps = args.length > 2 ? Integer.parseInt(args[2]) : 3;
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        String endpoint = "tcp://127.0.0.1:" + port;
        List<CompletableFuture<long[]>> fs = new ArrayList<>();
        for (int r = 0; r < ranks; r++) {
            int rank = r;
            fs.add(CompletableFuture.supplyAsync(() -> {
                try (Communicator c = new ZmqCommunicatorFactory().join(new GroupSpec(rank, ranks, List.of(endpoint),
                        Duration.ofSeconds(30), Duration.ofSeconds(30)))) {
                    for (int i = 0; i < 2000; i++) c.allReduce(i, ReduceOp.MAX); // warm-up
                    long[] medians = new long[reps * 2];
                    for (int rep = 0; rep < reps; rep++) {
                        long[] t = new long[calls];
                        for (int i = 0; i < calls; i++) {
                            long t0 = System.nanoTime();
                            c.allReduce(i, ReduceOp.MAX);
                            t[i] = System.nanoTime() - t0;
                        }
                        Arrays.sort(t);
                        medians[2 * rep] = t[calls / 2];
                        medians[2 * rep + 1] = t[(int) (calls * 0.99)];
                    }
                    return medians;
                }
            }, x -> Thread.ofPlatform().start(x)));
        }
        long[] r0 = fs.getFirst().get();
        for (CompletableFuture<long[]> f : fs) f.get();
        for (int rep = 0; rep < reps; rep++) {
            System.out.printf("ranks %d, %d calls: median %.1f us, p99 %.1f us%n", ranks, calls, r0[2 * rep] / 1e3, r0[2 * rep + 1] / 1e3);
        }
    }
}
