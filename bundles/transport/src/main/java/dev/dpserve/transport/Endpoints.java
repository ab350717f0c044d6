// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.transport;

import java.net.InetAddress;
import java.net.UnknownHostException;

/**
 * ZeroMQ endpoint strings and the 2-byte rank identities of spec 2.2.
 *
 * <p>Local-only links use {@code tcp://127.0.0.1:0} rather than {@code ipc://}: JeroMQ emulates
 * ipc with loopback TCP on a port derived from a hash of the name, which can collide, so a random
 * loopback port is the safer equivalent.
 */
public final class Endpoints {
    private Endpoints() {}

    /** {@code tcp://host:port}; IPv6 literals get brackets. Port 0 asks for a random free port at bind. */
    public static String tcp(String host, int port) {
        String h = host.contains(":") && !host.startsWith("[") ? "[" + host + "]" : host;
        return "tcp://" + h + ":" + port;
    }

    /**
     * True if only this machine can reach the endpoint: inproc, ipc (loopback in JeroMQ) and tcp on
     * a loopback address. Wildcards ({@code *}, 0.0.0.0) and names that do not resolve count as
     * not loopback.
     */
    public static boolean isLoopback(String endpoint) {
        if (endpoint.startsWith("inproc://") || endpoint.startsWith("ipc://")) return true;
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

    /** The ZeroMQ identity of a DP rank: 2 bytes, little-endian. */
    public static byte[] rankIdentity(int rank) {
        if (rank < 0 || rank > 0xffff) throw new IllegalArgumentException("rank out of range: " + rank);
        return new byte[] {(byte) rank, (byte) (rank >>> 8)};
    }

    /** The rank of a 2-byte identity, or -1 if it is not one. */
    public static int rankOf(byte[] identity) {
        if (identity == null || identity.length != 2) return -1;
        return (identity[0] & 0xff) | (identity[1] & 0xff) << 8;
    }
}
