// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.engine;

import java.lang.management.ManagementFactory;
import javax.management.ObjectName;

/**
 * How many KV blocks an engine gets. The budget is {@code kv_cache_memory} when set, else
 * {@code gpu_memory_utilization × device memory − weights}; on CPU the device memory defaults to
 * the physical RAM divided by the ranks on this host. The pure-Java models keep the F32 cache on
 * the Java heap, so the budget is also capped by the heap headroom, and there is no point in more
 * blocks than {@code max_num_seqs} full-length requests can hold.
 *
 * @param numBlocks   blocks including the null block
 * @param budgetBytes the memory the blocks take
 * @param explanation how the number came about, for the log
 */
record KvCacheSizing(int numBlocks, long budgetBytes, String explanation) {

    private static final double HEAP_SHARE = 0.8; // of the free heap; the rest is for activations and requests

    static KvCacheSizing compute(long kvCacheMemory, double gpuMemoryUtilization, long deviceMemory, long weightBytes,
                                 long bytesPerToken, int blockSize, long heapHeadroom, int maxNumSeqs, int maxModelLen) {
        if (blockSize < 1) throw new IllegalArgumentException("--block-size must be positive, got " + blockSize);
        if (bytesPerToken < 1) throw new IllegalArgumentException("the model reports " + bytesPerToken + " KV bytes per token");
        long budget;
        StringBuilder why = new StringBuilder();
        if (kvCacheMemory > 0) {
            budget = kvCacheMemory;
            why.append("--kv-cache-memory ").append(mib(kvCacheMemory));
        } else {
            if (!(gpuMemoryUtilization > 0 && gpuMemoryUtilization <= 1)) {
                throw new IllegalArgumentException("--gpu-memory-utilization must be in (0, 1], got " + gpuMemoryUtilization);
            }
            budget = (long) (gpuMemoryUtilization * deviceMemory) - weightBytes;
            why.append(String.format("%.2f x %s device memory - %s weights", gpuMemoryUtilization, mib(deviceMemory), mib(weightBytes)));
            if (budget <= 0) {
                throw new IllegalArgumentException("no memory left for the KV cache: " + why
                        + " = " + mib(budget) + "; raise --gpu-memory-utilization or --device-memory, or set --kv-cache-memory");
            }
        }
        long bytesPerBlock = bytesPerToken * blockSize;
        long heapCap = (long) (heapHeadroom * HEAP_SHARE);
        if (heapCap < budget) {
            budget = heapCap;
            why.append(", capped at ").append(mib(heapCap)).append(" by the Java heap (-Xmx)");
        }
        long blocks = budget / bytesPerBlock;
        if (blocks < 1) {
            throw new IllegalArgumentException("the KV cache budget (" + why + ") holds no block of " + blockSize
                    + " tokens (" + bytesPerBlock + " bytes)");
        }
        long useful = (long) maxNumSeqs * ((maxModelLen + blockSize - 1) / blockSize);
        if (useful < blocks) {
            blocks = useful;
            why.append(", capped at what max_num_seqs x max_model_len can use");
        }
        blocks = Math.min(blocks, Integer.MAX_VALUE - 1);
        return new KvCacheSizing((int) blocks + 1, blocks * bytesPerBlock, why.toString());
    }

    /**
     * Physical memory of this machine in bytes: the {@code TotalMemorySize} attribute of
     * {@code com.sun.management.OperatingSystemMXBean}, read through the platform MBean server so
     * that the bundle needs no import of {@code com.sun.management} (Felix does not export it by
     * default). 0 if the JVM does not provide it.
     */
    static long physicalMemoryBytes() {
        try {
            Object v = ManagementFactory.getPlatformMBeanServer()
                    .getAttribute(new ObjectName("java.lang:type=OperatingSystem"), "TotalMemorySize");
            return v instanceof Number n ? n.longValue() : 0;
        } catch (Exception e) {
            return 0;
        }
    }

    /** Heap the JVM can still grow into: max heap minus what is in use now. */
    static long heapHeadroom() {
        Runtime rt = Runtime.getRuntime();
        return rt.maxMemory() - (rt.totalMemory() - rt.freeMemory());
    }

    static String mib(long bytes) {
        return String.format("%.1f MiB", bytes / (1024.0 * 1024.0));
    }
}
