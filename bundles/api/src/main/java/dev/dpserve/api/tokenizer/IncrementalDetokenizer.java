// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.tokenizer;

import org.osgi.annotation.versioning.ConsumerType;

/**
 * Turns a stream of token ids into text deltas. The concatenation of all deltas plus
 * {@link #flush()} equals {@code decode(allIds)}; a delta never ends inside a UTF-8 sequence
 * that later tokens may complete. One instance per sequence, not thread-safe.
 */
@ConsumerType
public interface IncrementalDetokenizer {

    /** Adds one id; returns the text that became final (possibly empty). */
    String push(int id);

    /** Ends the stream: returns whatever is held back (incomplete bytes become U+FFFD). */
    String flush();
}
