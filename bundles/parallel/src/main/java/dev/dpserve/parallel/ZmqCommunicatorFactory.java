// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.parallel;

import dev.dpserve.api.parallel.Communicator;
import dev.dpserve.api.parallel.CommunicatorFactory;
import dev.dpserve.api.parallel.GroupSpec;
import org.osgi.service.component.annotations.Component;

/**
 * The {@link CommunicatorFactory} service: groups over JeroMQ (see {@link ZmqCommunicator} for
 * the topology and wire format). {@code GroupSpec.endpoints[0]} is a TCP endpoint on rank 0's
 * host, e.g. {@code tcp://10.0.0.1:41234}; without CURVE keys it must be a loopback address.
 */
@Component(service = CommunicatorFactory.class, property = "dpserve.communicator=zmq")
public final class ZmqCommunicatorFactory implements CommunicatorFactory {

    @Override
    public Communicator join(GroupSpec spec) {
        if (spec.curvePublicKey() == null && spec.rank() == 0 && spec.size() > 1 && !Loopback.is(spec.endpoints().getFirst())) {
            throw new IllegalArgumentException("the DP group endpoint " + spec.endpoints().getFirst()
                    + " is not a loopback address: it needs a cluster key (--cluster-key-file)");
        }
        return ZmqCommunicator.join(spec);
    }
}
