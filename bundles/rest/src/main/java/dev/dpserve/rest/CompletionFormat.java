// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.rest;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;

/**
 * The JSON shapes of one endpoint over the shared {@link CompletionJob} machinery: text
 * completions ({@link CompletionJson}) or chat ({@link ChatCompletionJson}). Called on the thread
 * that drives the job.
 */
interface CompletionFormat {

    /** The non-streaming response, once every choice has finished. */
    ObjectNode response(CompletionJob job);

    /** Chunks streamed before any engine output (chat announces each choice's role). */
    default List<ObjectNode> openingChunks(CompletionJob job) { return List.of(); }

    /**
     * One stream chunk for one choice. {@code text} already includes the echoed prompt on a
     * choice's first chunk; {@code offset} is the code points released before this chunk.
     */
    ObjectNode chunk(CompletionJob job, CompletionJob.Update u, String text, boolean first, int offset);

    /** The final {@code stream_options.include_usage} chunk. */
    ObjectNode usageChunk(CompletionJob job);
}
