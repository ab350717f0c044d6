// SPDX-License-Identifier: Apache-2.0
/**
 * SPI for scheduling policies: which requests run how many tokens in the next forward pass.
 * The engine owns the requests, queues and KV cache ({@link dev.dpserve.api.scheduler.SchedulerContext});
 * a {@link dev.dpserve.api.scheduler.SchedulingPolicy} only decides, so policies can be swapped
 * between steps without losing anything.
 */
@org.osgi.annotation.bundle.Export
@org.osgi.annotation.versioning.Version("0.1.0")
package dev.dpserve.api.scheduler;
