// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.parallel;

import java.net.InetAddress;
import java.net.UnknownHostException;

/** Whether a ZeroMQ TCP endpoint is reachable from this machine only. */
final class Loopback {
    private Loopback() {}

    static boolean is(String endpoint) {
        if (endpoint.startsWith("inproc://")) return true;
        if (!endpoint.startsWith("tcp://")) return false;
        String hostPort = endpoint.substring("tcp://".length());
        int colon = hostPort.lastIndexOf(':');
        String host = colon < 0 ? hostPort : hostPort.substring(0, colon);
        if (host.startsWith("[") && host.endsWith("]")) host = host.substring(1, host.length() - 1);
        if (host.isEmpty() || host.equals("*")) return false;
        try {
            for (InetAddress a : InetAddress.getAllByName(host)) if (!a.isLoopbackAddress()) return false;
            return true;
        } catch (UnknownHostException e) {
            return false;
        }
    }
}
