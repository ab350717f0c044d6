// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.itests;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import dev.dpserve.api.tensor.DType;
import dev.dpserve.api.tensor.KernelBackend;
import dev.dpserve.api.tensor.Tensor;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.List;
import java.util.SplittableRandom;
import javax.inject.Inject;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.ops4j.pax.exam.Configuration;
import org.ops4j.pax.exam.Option;
import org.ops4j.pax.exam.junit.PaxExam;
import org.ops4j.pax.exam.spi.reactors.ExamReactorStrategy;
import org.ops4j.pax.exam.spi.reactors.PerClass;
import org.osgi.framework.Bundle;
import org.osgi.framework.BundleContext;
import org.osgi.framework.wiring.BundleWire;
import org.osgi.framework.wiring.BundleWiring;
import org.osgi.framework.namespace.HostNamespace;
import org.osgi.util.tracker.ServiceTracker;

/**
 * The linux-x86_64 native fragment inside Felix, provisioned as the distribution's server feature
 * set does: the tensor host resolves with the fragment attached, the "native" KernelBackend is
 * registered above "vector", and its results match the pure-Java reference (and, for the ops the
 * reference does not implement, a naive computation here).
 */
@RunWith(PaxExam.class)
@ExamReactorStrategy(PerClass.class)
public class NativeBackendIT {

    private static final String FRAGMENT = "dev.dpserve.tensor.native.linux.x86_64";
    private static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @Inject
    private BundleContext context;

    @Configuration
    public Option[] config() throws IOException {
        return ServerOptions.server("paxexam-native", 180_000).toArray(Option[]::new);
    }

    @Test
    public void hostResolvesWithTheFragmentAttached() {
        Bundle fragment = bundle(FRAGMENT);
        Bundle host = bundle("dev.dpserve.tensor");
        assertEquals("fragment state", Bundle.RESOLVED, fragment.getState());
        assertEquals("host state", Bundle.ACTIVE, host.getState());
        BundleWiring wiring = host.adapt(BundleWiring.class);
        boolean attached = false;
        for (BundleWire w : wiring.getProvidedWires(HostNamespace.HOST_NAMESPACE)) {
            attached |= w.getRequirer().getBundle().equals(fragment);
        }
        assertTrue("the fragment is attached to dev.dpserve.tensor", attached);
        assertNotNull(fragment.getHeaders().get("Bundle-NativeCode"));
    }

    @Test
    public void nativeBackendIsRegisteredAboveVector() throws Exception {
        KernelBackend nat = backend("native");
        KernelBackend vector = backend("vector");
        assertEquals("native", nat.name());
        assertTrue(nat.score() > vector.score());
        for (DType t : List.of(DType.F32, DType.BF16, DType.F16)) assertTrue(nat.supports(KernelBackend.Op.MATMUL, t));
        assertTrue(nat.supports(KernelBackend.Op.MATMUL_INT8, DType.I8));
    }

    @Test
    public void matmulMatchesTheJavaReference() throws Exception {
        KernelBackend nat = backend("native");
        KernelBackend java = backend("java");
        SplittableRandom rnd = new SplittableRandom(1);
        try (Arena arena = Arena.ofShared()) {
            for (DType type : List.of(DType.F32, DType.BF16, DType.F16)) {
                for (int[] shape : new int[][] {{1, 67, 45}, {5, 300, 129}, {70, 33, 20}}) {
                    int n = shape[0];
                    int k = shape[1];
                    int m = shape[2];
                    MemorySegment data = arena.allocate((long) m * k * type.byteSize());
                    for (long i = 0; i < (long) m * k; i++) {
                        float v = (float) (rnd.nextDouble() * 2 - 1);
                        switch (type) {
                            case F32 -> data.set(F32_LE, 4 * i, v);
                            case BF16 -> data.set(I16_LE, 2 * i, (short) (Float.floatToRawIntBits(v) >>> 16));
                            default -> data.set(I16_LE, 2 * i, Float.floatToFloat16(v));
                        }
                    }
                    Tensor w = new Tensor("w", type, new long[] {m, k}, data);
                    float[] x = new float[2 + n * k];
                    for (int i = 0; i < x.length; i++) x[i] = (float) (rnd.nextDouble() * 2 - 1);
                    float[] expected = new float[n * m];
                    float[] got = new float[n * m];
                    java.matmul(x, 2, n, w, expected, 0);
                    nat.matmul(x, 2, n, w, got, 0);
                    for (int i = 0; i < expected.length; i++) {
                        if (Math.abs(expected[i] - got[i]) > 2e-5 * k) {
                            fail(type + " " + n + "x" + k + "x" + m + " at " + i + ": native " + got[i] + ", java " + expected[i]);
                        }
                    }
                }
            }
        }
    }

    @Test
    public void int8GemmAndRmsNormMatchNaiveLoops() throws Exception {
        KernelBackend nat = backend("native");
        SplittableRandom rnd = new SplittableRandom(2);
        int n = 3;
        int k = 70;
        int m = 9;
        byte[] q = new byte[n * k];
        for (int i = 0; i < q.length; i++) q[i] = (byte) rnd.nextInt(-127, 128);
        try (Arena arena = Arena.ofShared()) {
            MemorySegment data = arena.allocate((long) m * k);
            for (long i = 0; i < (long) m * k; i++) data.set(ValueLayout.JAVA_BYTE, i, (byte) rnd.nextInt(-128, 128));
            float[] colScale = new float[m];
            for (int j = 0; j < m; j++) colScale[j] = 0.01f * (j + 1);
            float[] out = new float[n * m];
            nat.matmulInt8(q, 0, n, null, new Tensor("w", DType.I8, new long[] {m, k}, data), null, colScale, out, 0);
            for (int i = 0; i < n; i++) {
                for (int j = 0; j < m; j++) {
                    int acc = 0;
                    for (int p = 0; p < k; p++) acc += q[i * k + p] * data.get(ValueLayout.JAVA_BYTE, (long) j * k + p);
                    assertEquals("int8 out[" + i + "][" + j + "]", (float) acc * colScale[j], out[i * m + j], 0f);
                }
            }
        }
        float[] x = new float[2 * 33];
        for (int i = 0; i < x.length; i++) x[i] = (float) (rnd.nextDouble() * 4 - 2);
        float[] weight = new float[33];
        for (int i = 0; i < weight.length; i++) weight[i] = (float) rnd.nextDouble();
        float[] out = new float[x.length];
        nat.rmsNorm(x, 0, 33, 2, weight, 1e-6f, out, 0, 33);
        for (int r = 0; r < 2; r++) {
            double ss = 0;
            for (int p = 0; p < 33; p++) ss += (double) x[r * 33 + p] * x[r * 33 + p];
            double inv = 1 / Math.sqrt(ss / 33 + 1e-6);
            for (int p = 0; p < 33; p++) assertEquals(weight[p] * x[r * 33 + p] * inv, out[r * 33 + p], 1e-5);
        }
    }

    private Bundle bundle(String bsn) {
        for (Bundle b : context.getBundles()) {
            if (bsn.equals(b.getSymbolicName())) return b;
        }
        throw new AssertionError("bundle " + bsn + " is not installed");
    }

    private KernelBackend backend(String name) throws Exception {
        ServiceTracker<KernelBackend, KernelBackend> t = new ServiceTracker<>(context,
                context.createFilter("(&(objectClass=" + KernelBackend.class.getName() + ")(" + KernelBackend.NAME + "=" + name + "))"),
                null);
        t.open();
        KernelBackend b = t.waitForService(60_000);
        assertNotNull("KernelBackend " + name + " not registered", b);
        return b;
    }
}
