// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.model;

import dev.dpserve.api.tensor.DType;
import dev.dpserve.api.tensor.KernelBackend;
import dev.dpserve.api.tensor.KernelBackend.Op;
import dev.dpserve.api.tensor.KernelSelection;
import java.lang.System.Logger.Level;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.osgi.framework.BundleContext;
import org.osgi.service.component.annotations.Activate;
import org.osgi.service.component.annotations.Component;
import org.osgi.service.component.annotations.Reference;
import org.osgi.service.component.annotations.ReferenceCardinality;
import org.osgi.service.component.annotations.ReferencePolicy;
import org.osgi.service.component.annotations.ReferencePolicyOption;

/**
 * The registered kernel backends and the per-op choice among them. DS binds and unbinds every
 * {@link KernelBackend} service dynamically; each change (and each pin) resolves a new immutable
 * {@link Kernels} that the models pick up at their next forward step. While a step needs an op no
 * backend supports (for instance while the tensor bundle is refreshed and all backends are briefly
 * gone) {@link #await} waits for one, up to {@link #WAIT_SECONDS} seconds.
 *
 * <p>Registered as {@link KernelSelection} for operators (the {@code dpserve:backend} command) and
 * under this class for the architectures of this bundle.
 */
@Component(service = {KernelSelection.class, KernelRegistry.class})
public final class KernelRegistry implements KernelSelection {

    /** How long a forward step waits for a backend supporting an op it needs. */
    public static final long WAIT_SECONDS = 30;

    private static final System.Logger LOG = System.getLogger(KernelRegistry.class.getName());

    /** The op × dtype pairs the models use, in table order. */
    static final List<Kernels.Need> SLOTS = List.of(
            new Kernels.Need(Op.MATMUL, DType.F32), new Kernels.Need(Op.MATMUL, DType.BF16),
            new Kernels.Need(Op.MATMUL, DType.F16), new Kernels.Need(Op.MATMUL_INT8, DType.I8),
            Kernels.Need.of(Op.QUANTIZE_ROWS), Kernels.Need.of(Op.RMS_NORM), Kernels.Need.of(Op.ROPE),
            Kernels.Need.of(Op.SOFTMAX), Kernels.Need.of(Op.SILU_MUL), Kernels.Need.of(Op.ATTENTION),
            Kernels.Need.of(Op.TOP_K));

    private final Object lock = new Object();
    private final List<KernelBackend> backends = new ArrayList<>(); // guarded by lock
    private String pinned;                                           // guarded by lock
    private volatile Kernels current = new Kernels(Map.of());

    /** For DS. */
    public KernelRegistry() {
    }

    /** Framework property naming a backend to pin from the start ({@code serve --kernel-backend}). */
    public static final String PIN_PROPERTY = "dpserve.kernel.backend";

    /**
     * Pins the backend named by {@value #PIN_PROPERTY}, if set. Not checked against the registered
     * backends: they may register after this component; until one with that name does, every op
     * goes to the best score.
     */
    @Activate
    void activate(BundleContext context) {
        String pin = context.getProperty(PIN_PROPERTY);
        if (pin == null || pin.isBlank()) return;
        synchronized (lock) {
            pinned = pin.trim();
            resolve();
        }
        LOG.log(Level.INFO, "kernel backend {0} pinned from the start ({1})", pin.trim(), PIN_PROPERTY);
    }

    /** For tests and tools outside a framework: these backends only. */
    public KernelRegistry(KernelBackend... backends) {
        for (KernelBackend b : backends) addBackend(b);
    }

    @Reference(name = "backend", cardinality = ReferenceCardinality.MULTIPLE, policy = ReferencePolicy.DYNAMIC,
            policyOption = ReferencePolicyOption.GREEDY, unbind = "removeBackend")
    public void addBackend(KernelBackend backend) {
        synchronized (lock) {
            backends.add(backend);
            resolve();
        }
        LOG.log(Level.INFO, "kernel backend {0} (score {1}) registered", backend.name(), backend.score());
    }

    public void removeBackend(KernelBackend backend) {
        synchronized (lock) {
            backends.remove(backend);
            resolve();
        }
        LOG.log(Level.INFO, "kernel backend {0} unregistered", backend.name());
    }

    /** The current choice (it may miss ops). */
    public Kernels kernels() {
        return current;
    }

    /**
     * The current choice once it covers {@code needs}, waiting up to {@link #WAIT_SECONDS} for
     * backends to appear; IllegalStateException naming the missing ops after that.
     */
    public Kernels await(Collection<Kernels.Need> needs) {
        return await(needs, WAIT_SECONDS, TimeUnit.SECONDS);
    }

    Kernels await(Collection<Kernels.Need> needs, long timeout, TimeUnit unit) {
        Kernels k = current;
        if (k.missing(needs).isEmpty()) return k;
        long deadline = System.nanoTime() + unit.toNanos(timeout);
        LOG.log(Level.INFO, "waiting for a kernel backend supporting {0}", k.missing(needs));
        synchronized (lock) {
            while (!(k = current).missing(needs).isEmpty()) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    throw new IllegalStateException("no kernel backend supports " + k.missing(needs) + " (waited "
                            + unit.toSeconds(timeout) + " s; registered: " + names() + ")");
                }
                try {
                    TimeUnit.NANOSECONDS.timedWait(lock, left);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException("interrupted while waiting for a kernel backend", e);
                }
            }
        }
        return k;
    }

    /** Recomputes the choice; call with the lock held. */
    private void resolve() {
        Map<Kernels.Need, KernelBackend> chosen = new HashMap<>();
        for (Kernels.Need need : SLOTS) {
            KernelBackend best = null;
            for (KernelBackend b : ranked()) {
                if (!supports(b, need)) continue;
                if (best == null) best = b;
                if (b.name().equals(pinned)) {
                    best = b;
                    break;
                }
            }
            if (best != null) chosen.put(need, best);
        }
        current = new Kernels(chosen);
        lock.notifyAll();
    }

    /** Backends by score, best first; equal scores by name. */
    private List<KernelBackend> ranked() {
        List<KernelBackend> r = new ArrayList<>(backends);
        r.sort(Comparator.comparingInt(KernelBackend::score).reversed().thenComparing(KernelBackend::name));
        return r;
    }

    private static boolean supports(KernelBackend b, Kernels.Need need) {
        try {
            return b.supports(need.op(), need.dtype());
        } catch (RuntimeException e) {
            LOG.log(Level.WARNING, "kernel backend " + b.name() + " failed to answer supports(" + need + ")", e);
            return false;
        }
    }

    private List<String> names() {
        return ranked().stream().map(KernelBackend::name).toList();
    }

    // ---------------------------------------------------------------- KernelSelection

    @Override
    public List<Choice> choices() {
        List<KernelBackend> r;
        synchronized (lock) {
            r = ranked();
        }
        Kernels k = current;
        List<Choice> out = new ArrayList<>();
        for (Kernels.Need need : SLOTS) {
            List<Candidate> candidates = new ArrayList<>();
            for (KernelBackend b : r) if (supports(b, need)) candidates.add(new Candidate(b.name(), b.score()));
            KernelBackend chosen = k.backend(need.op(), need.dtype());
            out.add(new Choice(need.op(), need.dtype(), candidates, chosen == null ? null : chosen.name()));
        }
        return out;
    }

    @Override
    public List<String> backends() {
        synchronized (lock) {
            return names();
        }
    }

    @Override
    public Optional<String> pinned() {
        synchronized (lock) {
            return Optional.ofNullable(pinned);
        }
    }

    @Override
    public void pin(String backend) {
        synchronized (lock) {
            if (backends.stream().noneMatch(b -> b.name().equals(backend))) {
                throw new IllegalArgumentException("no kernel backend named " + backend + " (registered: " + names() + ")");
            }
            pinned = backend;
            resolve();
        }
        LOG.log(Level.INFO, "kernel backend {0} pinned", backend);
    }

    @Override
    public void unpin() {
        synchronized (lock) {
            pinned = null;
            resolve();
        }
        LOG.log(Level.INFO, "kernel backend pin removed: best score per op");
    }
}
