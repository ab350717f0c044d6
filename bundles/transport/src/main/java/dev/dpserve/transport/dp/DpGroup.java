// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.transport.dp;

import dev.dpserve.transport.ClusterKeys;
import dev.dpserve.api.protocol.EngineReady;
import dev.dpserve.transport.FrontEndConnection;

import java.util.Map;

/**
 * A data-parallel group whose every rank has joined: the front end's connected sockets and each
 * rank's READY. {@link DpGroupStarter} registers it as a service (inside this bundle only) once
 * the handshake is complete, which is what lets {@link DpClientEngine}, and with it the
 * {@code InferenceEngine} service, appear only when requests can actually be served.
 *
 * @param connection owned by the starter: it is closed after this service is unregistered
 * @param ready      READY by rank, for ranks 0..N-1
 * @param keys       the cluster key the group's sockets use, or null (plain loopback)
 */
record DpGroup(FrontEndConnection connection, Map<Integer, EngineReady> ready, DpClientConfig config, ClusterKeys keys) {
    DpGroup {
        ready = Map.copyOf(ready);
    }

    int size() { return ready.size(); }
}
