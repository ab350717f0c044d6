// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.transport;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ClusterKeysTest {

    @TempDir
    Path dir;

    @Test
    void generatedFileIsOwnerOnlyAndLoadsBack() throws IOException {
        Path file = dir.resolve("conf/cluster.key");
        ClusterKeys keys = ClusterKeys.generate(file);
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(file)));
        ClusterKeys loaded = ClusterKeys.load(file);
        assertArrayEquals(keys.publicKey(), loaded.publicKey());
        assertArrayEquals(keys.secretKey(), loaded.secretKey());
        assertFalse(loaded.toString().contains(Files.readAllLines(file).getLast().substring(13)), "no secret in toString");
        assertNotEquals(keys, ClusterKeys.random());
    }

    @Test
    void neverOverwritesAKey() throws IOException {
        Path file = dir.resolve("cluster.key");
        ClusterKeys.generate(file);
        assertThrows(FileAlreadyExistsException.class, () -> ClusterKeys.generate(file));
    }

    @Test
    void refusesFilesOthersCanRead() throws IOException {
        Path file = dir.resolve("cluster.key");
        ClusterKeys.generate(file);
        Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-r--r--"));
        IOException e = assertThrows(IOException.class, () -> ClusterKeys.load(file));
        assertTrue(e.getMessage().contains("chmod 600"), e.getMessage());
    }

    @Test
    void refusesMismatchedAndMalformedKeys() throws IOException {
        Path a = dir.resolve("a.key");
        Path b = dir.resolve("b.key");
        ClusterKeys.generate(a);
        ClusterKeys.generate(b);
        String publicOfA = Files.readAllLines(a).get(2);
        String secretOfB = Files.readAllLines(b).get(3);
        Path mixed = dir.resolve("mixed.key");
        Files.createFile(mixed, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        Files.writeString(mixed, publicOfA + "\n" + secretOfB + "\n");
        IOException e = assertThrows(IOException.class, () -> ClusterKeys.load(mixed));
        assertTrue(e.getMessage().contains("does not belong"), e.getMessage());

        Files.writeString(mixed, "public-key = short\nsecret-key = short\n");
        e = assertThrows(IOException.class, () -> ClusterKeys.load(mixed));
        assertTrue(e.getMessage().contains("40 Z85 characters"), e.getMessage());

        e = assertThrows(IOException.class, () -> ClusterKeys.load(dir.resolve("missing.key")));
        assertTrue(e.getMessage().contains("dpserve keygen"), e.getMessage());
    }

    @Test
    void nonLoopbackBindNeedsAKey() {
        ProtocolCodec codec = new ProtocolCodec(ProtocolLimits.defaults());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new EngineHandshakeServer("tcp://0.0.0.0:0", null, codec));
        assertTrue(e.getMessage().contains("requires a cluster key") && e.getMessage().contains("--cluster-key-file"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new FrontEndConnection("*", null, codec));
        assertThrows(IllegalArgumentException.class, () -> new CoordinatorSockets("10.1.2.3", null, codec));
    }

    @Test
    void loopbackDetection() {
        assertTrue(Endpoints.isLoopback("tcp://127.0.0.1:5555"));
        assertTrue(Endpoints.isLoopback("tcp://127.0.0.2:0"));
        assertTrue(Endpoints.isLoopback("tcp://[::1]:5555"));
        assertTrue(Endpoints.isLoopback("tcp://localhost:5555"));
        assertTrue(Endpoints.isLoopback("inproc://x"));
        assertFalse(Endpoints.isLoopback("tcp://*:5555"));
        assertFalse(Endpoints.isLoopback("tcp://0.0.0.0:5555"));
        assertFalse(Endpoints.isLoopback("tcp://10.0.0.1:5555"));
        assertEquals("tcp://[::1]:0", Endpoints.tcp("::1", 0));
        assertEquals(513, Endpoints.rankOf(Endpoints.rankIdentity(513)));
        assertArrayEquals(new byte[] {1, 2}, Endpoints.rankIdentity(513));
        assertEquals(-1, Endpoints.rankOf(new byte[] {1}));
    }
}
