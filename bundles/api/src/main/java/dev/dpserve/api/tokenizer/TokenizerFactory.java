// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.tokenizer;

import java.io.IOException;
import java.nio.file.Path;
import org.osgi.annotation.versioning.ConsumerType;

/** Loads tokenizers from model directories. Registered as a DS service. */
@ConsumerType
public interface TokenizerFactory {

    /** Whether this factory understands the files in {@code modelDir}. */
    boolean canLoad(Path modelDir);

    /** Loads; IOException for unreadable files, IllegalArgumentException for unsupported content. */
    Tokenizer load(Path modelDir) throws IOException;
}
