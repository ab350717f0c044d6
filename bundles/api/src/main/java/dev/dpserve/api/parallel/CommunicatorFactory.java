// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.parallel;

import org.osgi.annotation.versioning.ProviderType;

/** Joins process groups (a service; the parallel bundle registers the JeroMQ implementation). */
@ProviderType
public interface CommunicatorFactory {

    /**
     * Joins the group and returns once every rank has joined (rank 0 binds, the others connect).
     *
     * @throws CollectiveException if the group did not form within the spec's timeout
     */
    Communicator join(GroupSpec spec);
}
