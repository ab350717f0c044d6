// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.transport;

import com.neilalexander.jnacl.crypto.curve25519;
import org.zeromq.ZMQ;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;

/**
 * The cluster's CurveZMQ keypair. Every process of a deployment loads the same file: servers use
 * the secret key as their long-term key, clients present the same keypair as their own and expect
 * the public key as the server's. Holding the file is what admits a node; the public key alone is
 * not enough (clients prove possession of the secret key in the CURVE handshake, and the ZAP
 * handler accepts only the cluster public key).
 *
 * <p>File format (UTF-8 text, mode 600):
 * <pre>
 * # comment lines
 * public-key = &lt;40 Z85 characters&gt;
 * secret-key = &lt;40 Z85 characters&gt;
 * </pre>
 * Immutable and thread-safe; {@link #toString()} never shows the secret.
 */
public final class ClusterKeys {

    private static final String Z85_ALPHABET =
            "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
    private static final Set<PosixFilePermission> OWNER_ONLY = EnumSet.of(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE);

    private final byte[] publicKey; // 32 bytes, Curve25519
    private final byte[] secretKey; // 32 bytes

    private ClusterKeys(byte[] publicKey, byte[] secretKey) {
        this.publicKey = publicKey;
        this.secretKey = secretKey;
    }

    /** A fresh keypair in memory (tests; {@link #generate(Path)} for deployments). */
    public static ClusterKeys random() {
        byte[] secret = new byte[32];
        new SecureRandom().nextBytes(secret);
        return new ClusterKeys(derivePublic(secret), secret);
    }

    /**
     * Generates a keypair and writes it to a new file readable only by its owner (what
     * {@code dpserve keygen} calls). Refuses to overwrite an existing file, so a running cluster's
     * key is never replaced by accident.
     *
     * @throws java.nio.file.FileAlreadyExistsException if the file exists
     */
    public static ClusterKeys generate(Path file) throws IOException {
        ClusterKeys keys = random();
        Path parent = file.toAbsolutePath().getParent();
        if (parent != null) Files.createDirectories(parent);
        String text = "# dpserve cluster key (CurveZMQ). Copy this same file to every node of the deployment and pass it\n"
                + "# with --cluster-key-file; keep it secret (mode 600): whoever holds it can join the cluster.\n"
                + "public-key = " + ZMQ.Curve.z85Encode(keys.publicKey) + "\n"
                + "secret-key = " + ZMQ.Curve.z85Encode(keys.secretKey) + "\n";
        // Create with owner-only permissions from the start: no window in which the secret is world-readable.
        if (Files.getFileStore(parent == null ? Path.of(".") : parent).supportsFileAttributeView(PosixFileAttributeView.class)) {
            Files.createFile(file, PosixFilePermissions.asFileAttribute(OWNER_ONLY));
        } else {
            Files.createFile(file);
        }
        Files.writeString(file, text, StandardCharsets.UTF_8);
        return keys;
    }

    /**
     * Loads and checks a key file.
     *
     * @throws IOException with a message naming the file and the problem (unreadable, readable by
     *                     group or others, malformed, or a public key that does not belong to the secret key)
     */
    public static ClusterKeys load(Path file) throws IOException {
        if (!Files.isRegularFile(file)) throw new IOException("cluster key file " + file + " does not exist (create it with `dpserve keygen`)");
        if (Files.getFileAttributeView(file, PosixFileAttributeView.class) != null) {
            Set<PosixFilePermission> perms = Files.getPosixFilePermissions(file);
            if (!OWNER_ONLY.containsAll(perms)) {
                throw new IOException("cluster key file " + file + " is accessible by others (" + PosixFilePermissions.toString(perms)
                        + "); run: chmod 600 " + file);
            }
        }
        String publicZ85 = null;
        String secretZ85 = null;
        List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i).strip();
            if (line.isEmpty() || line.startsWith("#")) continue;
            int eq = line.indexOf('=');
            if (eq < 0) throw new IOException(file + ":" + (i + 1) + ": expected `public-key = ...` or `secret-key = ...`");
            String key = line.substring(0, eq).strip();
            String value = line.substring(eq + 1).strip();
            switch (key) {
                case "public-key" -> publicZ85 = value;
                case "secret-key" -> secretZ85 = value;
                default -> throw new IOException(file + ":" + (i + 1) + ": unknown entry `" + key + "`");
            }
        }
        if (publicZ85 == null || secretZ85 == null) throw new IOException("cluster key file " + file + " needs both public-key and secret-key");
        byte[] pub = decodeKey(publicZ85, file, "public-key");
        byte[] secret = decodeKey(secretZ85, file, "secret-key");
        if (!MessageDigest.isEqual(pub, derivePublic(secret))) {
            throw new IOException("cluster key file " + file + ": the public key does not belong to the secret key");
        }
        return new ClusterKeys(pub, secret);
    }

    public byte[] publicKey() { return publicKey.clone(); }

    public byte[] secretKey() { return secretKey.clone(); }

    /** True if {@code key} is this cluster's public key (constant time). */
    public boolean isClusterPublicKey(byte[] key) { return key != null && MessageDigest.isEqual(publicKey, key); }

    /** The public key in Z85, safe to log; the first 8 characters identify a key in messages. */
    public String publicKeyZ85() { return ZMQ.Curve.z85Encode(publicKey); }

    @Override
    public String toString() { return "ClusterKeys[public " + publicKeyZ85().substring(0, 8) + "…]"; }

    private static byte[] decodeKey(String z85, Path file, String what) throws IOException {
        if (z85.length() != 40 || z85.chars().anyMatch(c -> Z85_ALPHABET.indexOf(c) < 0)) {
            throw new IOException("cluster key file " + file + ": " + what + " must be 40 Z85 characters");
        }
        byte[] key = ZMQ.Curve.z85Decode(z85);
        if (key == null || key.length != 32) throw new IOException("cluster key file " + file + ": " + what + " is not a 32-byte key");
        return key;
    }

    private static byte[] derivePublic(byte[] secret) {
        byte[] pub = new byte[32];
        curve25519.crypto_scalarmult_base(pub, secret);
        return pub;
    }

    @Override
    public boolean equals(Object o) { return o instanceof ClusterKeys k && Arrays.equals(publicKey, k.publicKey); }

    @Override
    public int hashCode() { return Arrays.hashCode(publicKey); }
}
