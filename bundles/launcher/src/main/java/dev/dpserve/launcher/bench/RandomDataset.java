// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.launcher.bench;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;

/**
 * vLLM's RandomDataset (spec 8.5), drawn with a seeded {@link SplittableRandom} instead of
 * numpy.default_rng: same seed, same prompts on every run, but not vLLM's prompts.
 * Draw order follows vLLM: prefix ids, input lengths, output lengths, offsets; then each request
 * gets its own split generator (in index order) for the re-encode adjustment, so prompts can be
 * built in parallel and stay deterministic.
 */
final class RandomDataset {

    /** One request: the prompt text, its token count after re-encoding, and max_tokens. */
    record SampleRequest(String prompt, int promptLen, int expectedOutputLen) {
    }

    /** Inclusive ranges the lengths are drawn from. */
    record Ranges(int inputLow, int inputHigh, int outputLow, int outputHigh) {
    }

    static final int MAX_RETRY = 10;

    private RandomDataset() {
    }

    /** vLLM: input in [floor(I'(1−r)), ceil(I'(1+r))] with I' = I − special tokens; output in [max(1, floor(O(1−r))), ceil(O(1+r))]. */
    static Ranges ranges(int inputLen, int outputLen, double rangeRatio, int numSpecialTokens) {
        int realInput = Math.max(0, inputLen - numSpecialTokens);
        int inLow = (int) Math.floor(realInput * (1 - rangeRatio));
        int inHigh = (int) Math.ceil(realInput * (1 + rangeRatio));
        int outLow = Math.max(1, (int) Math.floor(outputLen * (1 - rangeRatio)));
        int outHigh = (int) Math.ceil(outputLen * (1 + rangeRatio));
        return new Ranges(inLow, inHigh, outLow, Math.max(outLow, outHigh));
    }

    /** Builds the requests; {@code parallelism} prompts are decoded/re-encoded at a time. */
    static List<SampleRequest> sample(BenchTokenizer tok, int numRequests, int inputLen, int outputLen, double rangeRatio,
            int prefixLen, long seed, int parallelism, java.io.PrintStream log) throws IOException {
        int vocab = tok.vocabSize();
        Ranges r = ranges(inputLen, outputLen, rangeRatio, tok.numSpecialTokensToAdd());
        if (log != null) {
            log.println("Sampling input_len from [" + r.inputLow() + ", " + r.inputHigh() + "] and output_len from ["
                    + r.outputLow() + ", " + r.outputHigh() + "]");
        }
        SplittableRandom rng = new SplittableRandom(seed);
        int[] prefix = new int[prefixLen];
        for (int i = 0; i < prefixLen; i++) prefix[i] = rng.nextInt(vocab);
        int[] inputLens = new int[numRequests];
        int[] outputLens = new int[numRequests];
        int[] offsets = new int[numRequests];
        for (int i = 0; i < numRequests; i++) inputLens[i] = rng.nextInt(r.inputLow(), r.inputHigh() + 1);
        for (int i = 0; i < numRequests; i++) outputLens[i] = rng.nextInt(r.outputLow(), r.outputHigh() + 1);
        for (int i = 0; i < numRequests; i++) offsets[i] = rng.nextInt(vocab);
        SplittableRandom[] perRequest = new SplittableRandom[numRequests];
        for (int i = 0; i < numRequests; i++) perRequest[i] = rng.split();

        SampleRequest[] out = new SampleRequest[numRequests];
        int[] mismatch = new int[numRequests];
        Semaphore permits = new Semaphore(Math.max(1, parallelism));
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<?>> futures = new ArrayList<>();
            for (int i = 0; i < numRequests; i++) {
                final int idx = i;
                futures.add(pool.submit(() -> {
                    permits.acquire();
                    try {
                        int[] tokens = Arrays.copyOf(prefix, prefixLen + inputLens[idx]);
                        for (int j = 0; j < inputLens[idx]; j++) {
                            tokens[prefixLen + j] = (int) (((long) offsets[idx] + idx + j) % vocab);
                        }
                        Adjusted a = decodeToTargetLen(tok, tokens, prefixLen + inputLens[idx], vocab, perRequest[idx]);
                        mismatch[idx] = a.mismatch();
                        out[idx] = new SampleRequest(a.prompt(), a.tokens().length, outputLens[idx]);
                    } finally {
                        permits.release();
                    }
                    return null;
                }));
            }
            for (Future<?> f : futures) f.get();
        } catch (ExecutionException e) {
            if (e.getCause() instanceof IOException io) throw io;
            throw new IOException("building the random dataset failed: " + e.getCause(), e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        }
        long totalMismatch = 0;
        for (int m : mismatch) totalMismatch += Math.abs(m);
        if (totalMismatch > 0 && log != null) {
            log.println("Across all generated prompts, there were " + totalMismatch
                    + " tokens of mismatch between the requested and the re-encoded lengths");
        }
        return List.of(out);
    }

    record Adjusted(String prompt, int[] tokens, int mismatch) {
    }

    /**
     * vLLM's gen_prompt_decode_to_target_len: decode, re-encode (no special tokens); if the length
     * is off, pad with random ids or truncate and try again, at most {@link #MAX_RETRY} times.
     */
    static Adjusted decodeToTargetLen(BenchTokenizer tok, int[] tokens, int target, int vocab, SplittableRandom rng)
            throws IOException {
        int[] seq = tokens;
        int remaining = MAX_RETRY;
        String prompt;
        int mismatch = 0;
        while (true) {
            prompt = tok.decode(seq);
            seq = tok.encode(prompt, false);
            if (remaining <= 0) {
                if (seq.length != target) mismatch = seq.length - target;
                break;
            }
            if (seq.length == target) break;
            if (seq.length < target) {
                int old = seq.length;
                seq = Arrays.copyOf(seq, target);
                for (int k = old; k < target; k++) seq[k] = rng.nextInt(vocab);
            } else {
                seq = Arrays.copyOf(seq, target);
            }
            remaining--;
        }
        return new Adjusted(prompt, seq, mismatch);
    }
}
