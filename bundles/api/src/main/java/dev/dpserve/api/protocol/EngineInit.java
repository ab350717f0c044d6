// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.protocol;

import java.util.List;

/**
 * Head → engine, the reply to {@link EngineHello}: where to connect for the steady state. Every
 * socket named here is bound by the head side (front end or coordinator) before this is sent;
 * engines only connect (spec 2.2). Addresses are ZeroMQ endpoints such as {@code tcp://10.0.0.1:41234}.
 *
 * @param dataParallelSize         N, the number of DP ranks in the group
 * @param requestAddresses         one ROUTER per front end (client index = list index); the engine
 *                                 connects a DEALER with its rank identity to each
 * @param outputAddresses          one PULL per front end, same order; the engine connects a PUSH to each
 * @param coordinatorInputAddress  the coordinator's XPUB for wave control (engine connects an XSUB), or null without a coordinator
 * @param coordinatorOutputAddress the coordinator's PULL for stats and wave events (engine connects a PUSH), or null
 * @param dpGroupEndpoints         endpoints for the DP group's collectives (token-count exchange,
 *                                 idle consensus); their meaning belongs to the communicator that
 *                                 uses them, the transport only carries them. Empty when N == 1.
 */
public record EngineInit(int dataParallelSize, List<String> requestAddresses, List<String> outputAddresses,
                         String coordinatorInputAddress, String coordinatorOutputAddress,
                         List<String> dpGroupEndpoints) implements ProtocolMessage {
    public EngineInit {
        if (dataParallelSize < 1) throw new IllegalArgumentException("dataParallelSize must be >= 1, got " + dataParallelSize);
        requestAddresses = List.copyOf(requestAddresses);
        outputAddresses = List.copyOf(outputAddresses);
        dpGroupEndpoints = List.copyOf(dpGroupEndpoints);
        if (requestAddresses.isEmpty() || requestAddresses.size() != outputAddresses.size()) {
            throw new IllegalArgumentException("need one request and one output address per front end, got "
                    + requestAddresses.size() + " and " + outputAddresses.size());
        }
        if ((coordinatorInputAddress == null) != (coordinatorOutputAddress == null)) {
            throw new IllegalArgumentException("coordinator addresses must be both set or both null");
        }
    }

    /** True when a DP coordinator runs (N > 1 in internal-LB mode). */
    public boolean hasCoordinator() { return coordinatorInputAddress != null; }

    /** The number of front ends (client indexes are 0..frontEnds()-1). */
    public int frontEnds() { return requestAddresses.size(); }
}
