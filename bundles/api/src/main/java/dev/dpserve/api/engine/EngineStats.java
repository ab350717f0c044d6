// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.engine;

/** A snapshot of engine counters. */
public record EngineStats(int running, int waiting, long promptTokens, long generationTokens,
                          long finishedRequests, long steps, String engineName) {
}
