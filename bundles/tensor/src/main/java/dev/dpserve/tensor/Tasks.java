// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tensor;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.IntConsumer;

/** The backends' fork-join over a fixed pool: the caller works too, pool threads help. */
final class Tasks {

    /**
     * How long the caller, done with its own tasks, spins before it parks to wait for the helpers
     * (system property {@code dpserve.tasks.spinNanos}, 0 = park at once). Waking a parked thread
     * costs tens of microseconds on a virtual machine, a good part of a batch-1 int8 GEMM (about
     * 250 µs for 4096×4096 here); see docs/BENCHMARKS.md, "Batch 1 against the stream, same round".
     */
    static final long SPIN_NANOS = Long.getLong("dpserve.tasks.spinNanos", 200_000);

    private Tasks() {
    }

    /** A fixed pool of {@code threads} daemon workers named {@code prefix-N}, or null for none. */
    static ExecutorService pool(String prefix, int threads) {
        if (threads < 1) return null;
        AtomicInteger seq = new AtomicInteger();
        return Executors.newFixedThreadPool(threads, r -> {
            Thread t = new Thread(r, prefix + "-" + seq.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
    }

    /**
     * Runs tasks [0, count) on the caller plus up to {@code threads - 1} pool workers and returns
     * when all are done; the first failure is rethrown. A pool shut down meanwhile (the backend was
     * deactivated) only means the caller does the remaining tasks itself.
     */
    static void run(ExecutorService p, int threads, int count, IntConsumer task) {
        AtomicInteger next = new AtomicInteger();
        CountDownLatch done = new CountDownLatch(count);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Runnable worker = () -> {
            for (int i; (i = next.getAndIncrement()) < count; ) {
                try {
                    task.accept(i);
                } catch (Throwable e) {
                    failure.compareAndSet(null, e);
                } finally {
                    done.countDown();
                }
            }
        };
        int helpers = Math.min(threads - 1, count - 1);
        try {
            for (int h = 0; h < helpers; h++) p.execute(worker);
        } catch (RejectedExecutionException closedMeanwhile) {
            // the caller does the remaining tasks itself
        }
        worker.run();
        // the helpers are about one task behind at most: spin briefly rather than park
        long spinUntil = System.nanoTime() + SPIN_NANOS;
        while (done.getCount() > 0 && System.nanoTime() < spinUntil) Thread.onSpinWait();
        try {
            done.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for kernel workers", e);
        }
        Throwable e = failure.get();
        if (e instanceof RuntimeException re) throw re;
        if (e instanceof Error err) throw err;
        if (e != null) throw new IllegalStateException(e);
    }
}
