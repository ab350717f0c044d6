// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The BPE {@code model} of tokenizer.json: vocabulary, ranked merges and the options
 * ({@code byte_fallback}, {@code unk_token}, {@code fuse_unk}, {@code ignore_merges},
 * {@code continuing_subword_prefix}, {@code end_of_word_suffix}). Encodes one pre-tokenized
 * word at a time by repeatedly applying the lowest-ranked merge (leftmost first on ties), using a
 * heap over a linked list of symbols: O(n log n) per word. Immutable and thread-safe; results for
 * short words are kept in a bounded cache.
 */
final class BpeModel {

    private static final int CACHE_CAPACITY = 20_000;
    private static final int CACHE_MAX_WORD_LENGTH = 256;

    private final Map<String, Integer> vocab;
    private final String[] idToToken;   // (maxId + 1,) null for gaps
    private final MergeTable merges;
    private final boolean byteFallback;
    private final int[] byteFallbackIds; // (256,) id of "<0xXX>", -1 when absent
    private final int unkId;             // -1 when no unk_token
    private final boolean fuseUnk;
    private final boolean ignoreMerges;
    private final String continuingSubwordPrefix; // null when unused
    private final String endOfWordSuffix;         // null when unused
    private final ConcurrentHashMap<String, int[]> cache = new ConcurrentHashMap<>();

    /**
     * @param model the {@code model} section without vocab and merges (its options)
     * @param vocab token to id
     * @param mergePairs merges in rank order, each {left, right}
     */
    BpeModel(JsonNode model, Map<String, Integer> vocab, List<String[]> mergePairs) {
        String type = model.path("type").asText("BPE");
        if (!type.equals("BPE")) {
            throw new IllegalArgumentException("unsupported model type: " + type + " (only BPE)");
        }
        JsonNode dropout = model.get("dropout");
        if (dropout != null && !dropout.isNull() && dropout.asDouble() != 0.0) {
            throw new IllegalArgumentException("BPE dropout is not supported for inference");
        }
        this.vocab = vocab;
        int maxId = -1;
        for (int id : vocab.values()) maxId = Math.max(maxId, id);
        idToToken = new String[maxId + 1];
        for (Map.Entry<String, Integer> e : vocab.entrySet()) {
            idToToken[e.getValue()] = e.getKey();
        }
        continuingSubwordPrefix = emptyToNull(model.path("continuing_subword_prefix"));
        endOfWordSuffix = emptyToNull(model.path("end_of_word_suffix"));
        byteFallback = model.path("byte_fallback").asBoolean(false);
        fuseUnk = model.path("fuse_unk").asBoolean(false);
        ignoreMerges = model.path("ignore_merges").asBoolean(false);
        String unk = emptyToNull(model.path("unk_token"));
        unkId = unk == null ? -1 : vocab.getOrDefault(unk, -1);
        byteFallbackIds = new int[256];
        for (int b = 0; b < 256; b++) {
            byteFallbackIds[b] = vocab.getOrDefault(String.format("<0x%02X>", b), -1);
        }
        merges = buildMergeTable(mergePairs);
    }

    private static String emptyToNull(JsonNode node) {
        return node == null || node.isNull() || node.isMissingNode() || node.asText().isEmpty() ? null : node.asText();
    }

    private MergeTable buildMergeTable(List<String[]> pairs) {
        MergeTable table = new MergeTable(pairs.size());
        int prefixLength = continuingSubwordPrefix == null ? 0 : continuingSubwordPrefix.length();
        int rank = 0;
        for (String[] pair : pairs) {
            String a = pair[0];
            String b = pair[1];
            Integer idA = vocab.get(a);
            Integer idB = vocab.get(b);
            Integer merged = vocab.get(a + (prefixLength > 0 && b.length() >= prefixLength ? b.substring(prefixLength) : b));
            if (idA == null || idB == null || merged == null) {
                throw new IllegalArgumentException("merge uses a token missing from the vocab: " + a + " " + b);
            }
            // Later duplicates win, as in the reference implementation.
            table.put(idA, idB, rank++, merged);
        }
        return table;
    }

    Integer tokenToId(String token) {
        return vocab.get(token);
    }

    String idToToken(int id) {
        return id >= 0 && id < idToToken.length ? idToToken[id] : null;
    }

    /** Highest id + 1. */
    int size() {
        return idToToken.length;
    }

    /** Appends the ids of one word. */
    void encodeWord(String word, IntArrayBuilder out) {
        if (word.isEmpty()) return;
        int[] cached = cache.get(word);
        if (cached == null) {
            cached = encodeUncached(word);
            if (word.length() <= CACHE_MAX_WORD_LENGTH && cache.size() < CACHE_CAPACITY) {
                cache.putIfAbsent(word, cached);
            }
        }
        out.addAll(cached);
    }

    private int[] encodeUncached(String word) {
        if (ignoreMerges) {
            Integer id = vocab.get(word);
            if (id != null) return new int[] {id};
        }
        Symbols symbols = initialSymbols(word);
        symbols.mergeAll(merges);
        return symbols.ids();
    }

    private Symbols initialSymbols(String word) {
        Symbols s = new Symbols(word.length());
        int unkPending = -1; // -1: none; otherwise a pending unknown run is open
        for (int i = 0; i < word.length(); ) {
            int cp = word.codePointAt(i);
            int next = i + Character.charCount(cp);
            String piece = word.substring(i, next);
            String key = piece;
            if (i > 0 && continuingSubwordPrefix != null) key = continuingSubwordPrefix + key;
            if (next == word.length() && endOfWordSuffix != null) key = key + endOfWordSuffix;
            i = next;
            Integer id = vocab.get(key);
            if (id != null) {
                if (unkPending >= 0) {
                    s.add(unkId);
                    unkPending = -1;
                }
                s.add(id);
                continue;
            }
            if (byteFallback) {
                byte[] bytes = key.getBytes(StandardCharsets.UTF_8);
                boolean all = true;
                for (byte b : bytes) {
                    if (byteFallbackIds[b & 0xFF] < 0) {
                        all = false;
                        break;
                    }
                }
                if (all) {
                    for (byte b : bytes) s.add(byteFallbackIds[b & 0xFF]);
                    continue;
                }
            }
            if (unkId >= 0) {
                if (unkPending >= 0 && !fuseUnk) {
                    s.add(unkId);
                }
                unkPending = unkId;
            }
        }
        if (unkPending >= 0) s.add(unkId);
        return s;
    }

    /** (idA, idB) -> (rank, merged id), open addressing on a packed long key. */
    static final class MergeTable {
        private final long[] keys;
        private final int[] ranks;
        private final int[] mergedIds;
        private final int mask;

        MergeTable(int expected) {
            int capacity = Integer.highestOneBit(Math.max(16, expected * 2) - 1) << 1;
            keys = new long[capacity];
            Arrays.fill(keys, -1L);
            ranks = new int[capacity];
            mergedIds = new int[capacity];
            mask = capacity - 1;
        }

        private static long key(int a, int b) {
            return ((long) a << 32) | (b & 0xFFFFFFFFL);
        }

        private int slot(long key) {
            long h = key * 0x9E3779B97F4A7C15L;
            int i = (int) (h >>> 40) & mask;
            while (keys[i] != -1L && keys[i] != key) {
                i = (i + 1) & mask;
            }
            return i;
        }

        void put(int a, int b, int rank, int merged) {
            long k = key(a, b);
            int i = slot(k);
            keys[i] = k;
            ranks[i] = rank;
            mergedIds[i] = merged;
        }

        /** Slot index of the pair, or -1. */
        int find(int a, int b) {
            long k = key(a, b);
            int i = slot(k);
            return keys[i] == k ? i : -1;
        }

        int rank(int slot) {
            return ranks[slot];
        }

        int merged(int slot) {
            return mergedIds[slot];
        }
    }

    /** A word as a doubly linked list of symbols being merged. */
    private static final class Symbols {
        int[] id;
        int[] prev;
        int[] next;
        boolean[] dead;
        int n;

        Symbols(int capacity) {
            id = new int[Math.max(4, capacity)];
        }

        void add(int value) {
            if (n == id.length) id = Arrays.copyOf(id, n * 2);
            id[n++] = value;
        }

        void mergeAll(MergeTable merges) {
            if (n < 2) return;
            prev = new int[n];
            next = new int[n];
            dead = new boolean[n];
            for (int i = 0; i < n; i++) {
                prev[i] = i - 1;
                next[i] = i + 1 < n ? i + 1 : -1;
            }
            LongHeap heap = new LongHeap(n);
            for (int i = 0; i + 1 < n; i++) {
                int slot = merges.find(id[i], id[i + 1]);
                if (slot >= 0) heap.push(((long) merges.rank(slot) << 32) | i);
            }
            while (!heap.isEmpty()) {
                long top = heap.pop();
                int rank = (int) (top >>> 32);
                int pos = (int) top;
                if (dead[pos]) continue;
                int right = next[pos];
                if (right < 0) continue;
                int slot = merges.find(id[pos], id[right]);
                if (slot < 0 || merges.rank(slot) != rank) continue; // stale entry
                id[pos] = merges.merged(slot);
                dead[right] = true;
                int after = next[right];
                next[pos] = after;
                if (after >= 0) prev[after] = pos;
                int before = prev[pos];
                if (before >= 0) {
                    int s = merges.find(id[before], id[pos]);
                    if (s >= 0) heap.push(((long) merges.rank(s) << 32) | before);
                }
                if (after >= 0) {
                    int s = merges.find(id[pos], id[after]);
                    if (s >= 0) heap.push(((long) merges.rank(s) << 32) | pos);
                }
            }
        }

        int[] ids() {
            if (dead == null) return Arrays.copyOf(id, n);
            int count = 0;
            for (int i = 0; i < n; i++) if (!dead[i]) count++;
            int[] out = new int[count];
            for (int i = 0, k = 0; i < n; i++) if (!dead[i]) out[k++] = id[i];
            return out;
        }
    }

    /** Binary min-heap of longs. */
    private static final class LongHeap {
        private long[] a;
        private int size;

        LongHeap(int capacity) {
            a = new long[Math.max(4, capacity)];
        }

        boolean isEmpty() {
            return size == 0;
        }

        void push(long v) {
            if (size == a.length) a = Arrays.copyOf(a, size * 2);
            int i = size++;
            while (i > 0) {
                int parent = (i - 1) >>> 1;
                if (a[parent] <= v) break;
                a[i] = a[parent];
                i = parent;
            }
            a[i] = v;
        }

        long pop() {
            long top = a[0];
            long last = a[--size];
            int i = 0;
            int half = size >>> 1;
            while (i < half) {
                int child = 2 * i + 1;
                if (child + 1 < size && a[child + 1] < a[child]) child++;
                if (last <= a[child]) break;
                a[i] = a[child];
                i = child;
            }
            a[i] = last;
            return top;
        }
    }
}
