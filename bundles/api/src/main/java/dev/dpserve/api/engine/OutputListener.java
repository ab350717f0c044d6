// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.engine;

import org.osgi.annotation.versioning.ConsumerType;

/** Receives a request's outputs, in order, from an engine thread. Must not block. */
@ConsumerType
@FunctionalInterface
public interface OutputListener {
    void onOutput(RequestOutput output);
}
