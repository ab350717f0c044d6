// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.tokenizer;

import java.util.Optional;
import java.util.OptionalInt;
import java.util.Set;
import org.osgi.annotation.versioning.ConsumerType;

/**
 * A tokenizer loaded from a Hugging Face model directory ({@code tokenizer.json} plus
 * {@code tokenizer_config.json}). Immutable and thread-safe.
 */
@ConsumerType
public interface Tokenizer {

    /**
     * Encodes text as Python transformers does: with {@code addSpecialTokens}, the BOS (and EOS)
     * tokens that tokenizer_config.json asks for ({@code add_bos_token}) or the post-processor adds.
     * Lone UTF-16 surrogates are replaced by U+FFFD first.
     */
    int[] encode(String text, boolean addSpecialTokens);

    /** Decodes ids; {@code skipSpecialTokens} drops ids of added tokens marked special. */
    String decode(int[] ids, boolean skipSpecialTokens);

    /** A streaming decoder that never emits half a UTF-8 character. */
    IncrementalDetokenizer newDetokenizer(boolean skipSpecialTokens);

    /** Number of ids (highest id + 1), added tokens included. */
    int vocabSize();

    OptionalInt bosTokenId();

    /** EOS id from tokenizer_config.json (generation_config.json may add more, the engine merges). */
    OptionalInt eosTokenId();

    boolean isSpecial(int id);

    /** The token string of an id (null when unknown). */
    String idToToken(int id);

    OptionalInt tokenToId(String token);

    /** The {@code chat_template} from tokenizer_config.json, when present. */
    Optional<String> chatTemplate();

    /** Added tokens marked special, as strings. */
    Set<String> specialTokens();
}
