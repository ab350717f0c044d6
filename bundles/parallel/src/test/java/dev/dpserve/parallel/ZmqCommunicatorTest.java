// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.parallel;

import dev.dpserve.api.parallel.CollectiveException;
import dev.dpserve.api.parallel.Communicator;
import dev.dpserve.api.parallel.GroupSpec;
import dev.dpserve.api.parallel.ReduceOp;
import org.junit.jupiter.api.Test;
import org.zeromq.ZMQ;

import java.io.IOException;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Real sockets on loopback, one thread per rank; results checked against a naive reduction in the test. */
class ZmqCommunicatorTest {

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    /** Runs {@code body} on every rank of a fresh group (joined in parallel) and returns the per-rank results. */
    static <T> List<T> onAllRanks(int size, Duration timeout, byte[][] keys, Function<Communicator, T> body) throws Exception {
        String endpoint = "tcp://127.0.0.1:" + freePort();
        List<CompletableFuture<T>> futures = new ArrayList<>();
        for (int r = 0; r < size; r++) {
            int rank = r;
            futures.add(CompletableFuture.supplyAsync(() -> {
                GroupSpec spec = keys == null ? new GroupSpec(rank, size, List.of(endpoint), timeout, Duration.ofSeconds(20))
                        : new GroupSpec(rank, size, List.of(endpoint), timeout, Duration.ofSeconds(20), keys[0], keys[1]);
                try (Communicator c = new ZmqCommunicatorFactory().join(spec)) {
                    return body.apply(c);
                }
            }, r2 -> Thread.ofPlatform().start(r2)));
        }
        List<T> out = new ArrayList<>();
        for (CompletableFuture<T> f : futures) out.add(f.get(60, TimeUnit.SECONDS));
        return out;
    }

    static long[] input(int rank, int call, int n) {
        Random rnd = new Random(31L * rank + 7L * call);
        long[] v = new long[n];
        for (int i = 0; i < n; i++) v[i] = rnd.nextInt(2_000_001) - 1_000_000;
        return v;
    }

    static long[] naive(int size, int call, int n, ReduceOp op) {
        long[] out = new long[n];
        for (int i = 0; i < n; i++) {
            long acc = op == ReduceOp.SUM ? 0 : op == ReduceOp.MAX ? Long.MIN_VALUE : Long.MAX_VALUE;
            for (int r = 0; r < size; r++) {
                long x = input(r, call, n)[i];
                acc = op == ReduceOp.SUM ? acc + x : op == ReduceOp.MAX ? Math.max(acc, x) : Math.min(acc, x);
            }
            out[i] = acc;
        }
        return out;
    }

    @Test
    void manyCallsMatchNaiveReduction() throws Exception {
        int size = 3;
        int calls = 300;
        List<List<long[]>> results = onAllRanks(size, Duration.ofSeconds(10), null, c -> {
            List<long[]> rs = new ArrayList<>();
            for (int k = 0; k < calls; k++) {
                ReduceOp op = ReduceOp.values()[k % 3];
                rs.add(c.allReduce(input(c.rank(), k, 1 + k % 5), op));
            }
            assertEquals(calls, c.calls());
            assertTrue(c.totalNanos() > 0);
            return rs;
        });
        for (int k = 0; k < calls; k++) {
            long[] expected = naive(size, k, 1 + k % 5, ReduceOp.values()[k % 3]);
            for (int r = 0; r < size; r++) assertArrayEquals(expected, results.get(r).get(k), "call " + k + " rank " + r);
        }
    }

    @Test
    void intFlagsMaxAndSum() throws Exception {
        List<int[]> out = onAllRanks(2, Duration.ofSeconds(10), null, c -> {
            int[] max = c.allReduce(new int[] {c.rank() == 1 ? 1 : 0}, ReduceOp.MAX);
            int[] sum = c.allReduce(new int[] {c.rank() + 5, 2}, ReduceOp.SUM);
            return new int[] {max[0], sum[0], sum[1]};
        });
        for (int[] r : out) assertArrayEquals(new int[] {1, 11, 4}, r);
    }

    @Test
    void singleRankGroupReducesToItself() throws Exception {
        List<long[]> out = onAllRanks(1, Duration.ofSeconds(1), null, c -> c.allReduce(new long[] {4, -2}, ReduceOp.MAX));
        assertArrayEquals(new long[] {4, -2}, out.getFirst());
    }

    @Test
    void curveGroupWorks() throws Exception {
        byte[] secret = new byte[32];
        new Random(5).nextBytes(secret);
        ZMQ.Curve.KeyPair kp = ZMQ.Curve.generateKeyPair();
        byte[][] keys = {ZMQ.Curve.z85Decode(kp.publicKey), ZMQ.Curve.z85Decode(kp.secretKey)};
        List<Long> out = onAllRanks(2, Duration.ofSeconds(10), keys, c -> c.allReduce(c.rank() + 10L, ReduceOp.SUM));
        assertEquals(List.of(21L, 21L), out);
    }

    @Test
    void deadPeerFailsEveryRankWithinTheTimeout() throws Exception {
        int size = 3;
        Duration timeout = Duration.ofMillis(800);
        // Rank 2 takes part in 5 calls, then "dies" (closes); the others go on and must fail, not hang.
        List<Object> out = onAllRanks(size, timeout, null, c -> {
            for (int k = 0; k < 5; k++) c.allReduce(k, ReduceOp.SUM);
            if (c.rank() == 2) return "left";
            long t0 = System.nanoTime();
            CollectiveException e = assertThrows(CollectiveException.class, () -> c.allReduce(1, ReduceOp.MAX));
            long millis = (System.nanoTime() - t0) / 1_000_000;
            assertTrue(millis < 5_000, "failed after " + millis + " ms");
            // and the group stays failed
            assertThrows(CollectiveException.class, () -> c.allReduce(1, ReduceOp.MAX));
            return e.getMessage();
        });
        assertEquals("left", out.get(2));
        assertTrue(((String) out.get(0)).contains("rank(s) {2}"), String.valueOf(out.get(0)));
        assertTrue(((String) out.get(1)).contains("aborted") || ((String) out.get(1)).contains("no result"), String.valueOf(out.get(1)));
    }

    @Test
    void outOfStepRanksFailInsteadOfMixingCalls() throws Exception {
        List<String> out = onAllRanks(2, Duration.ofSeconds(2), null, c -> {
            try {
                if (c.rank() == 0) c.allReduce(new long[] {1, 2}, ReduceOp.SUM);
                else c.allReduce(new long[] {1}, ReduceOp.SUM);
                return "no error";
            } catch (CollectiveException e) {
                return e.getMessage();
            }
        });
        assertTrue(out.get(0).contains("out of step"), out.get(0));
        assertTrue(out.get(1).contains("out of step"), out.get(1));
    }

    @Test
    void closeFromAnotherThreadEndsABlockedCall() throws Exception {
        String endpoint = "tcp://127.0.0.1:" + freePort();
        // A one-rank "group" cannot block; use rank 1 of 2 whose join would wait: join the pair, then block rank 0 alone.
        CompletableFuture<Communicator> leaf = CompletableFuture.supplyAsync(() -> new ZmqCommunicatorFactory()
                .join(new GroupSpec(1, 2, List.of(endpoint), Duration.ofSeconds(30), Duration.ofSeconds(20))));
        Communicator root = new ZmqCommunicatorFactory().join(new GroupSpec(0, 2, List.of(endpoint), Duration.ofSeconds(30),
                Duration.ofSeconds(20)));
        Communicator l = leaf.get(20, TimeUnit.SECONDS);
        CompletableFuture<Long> blocked = CompletableFuture.supplyAsync(() -> root.allReduce(1, ReduceOp.SUM));
        Thread.sleep(300);
        long t0 = System.nanoTime();
        root.close();
        ExecutionException e = assertThrows(ExecutionException.class, () -> blocked.get(5, TimeUnit.SECONDS));
        assertInstanceOf(CollectiveException.class, e.getCause());
        assertTrue((System.nanoTime() - t0) / 1_000_000 < 2000);
        l.close();
    }

    @Test
    void malformedFramesAreRecognised() {
        assertEquals(null, Frames.check(Frames.call(3, ReduceOp.MAX, new long[] {1, 2})));
        assertEquals(null, Frames.check(Frames.result(3, new long[] {1})));
        assertTrue(Frames.check(new byte[0]) != null);
        assertTrue(Frames.check(new byte[] {0x52, 1, 2}) != null);
        byte[] lying = Frames.call(1, ReduceOp.SUM, new long[] {1});
        lying[10] = 9; // claims 9 values in a frame holding one
        assertTrue(Frames.check(lying) != null);
        byte[] badOp = Frames.call(1, ReduceOp.SUM, new long[] {1});
        badOp[9] = 7;
        assertTrue(Frames.check(badOp) != null);
        assertTrue(Frames.check(new byte[] {0x7f}) != null);
        assertArrayEquals(new long[] {-5, Long.MAX_VALUE}, Frames.callValues(Frames.call(0, ReduceOp.MIN, new long[] {-5, Long.MAX_VALUE})));
    }
}
