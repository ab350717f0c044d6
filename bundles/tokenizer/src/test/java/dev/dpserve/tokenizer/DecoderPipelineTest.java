// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class DecoderPipelineTest {

    private static final ObjectMapper MAPPER = new ObjectMapper();

    private static DecoderPipeline pipeline(String json, boolean cleanUp) throws Exception {
        return DecoderPipeline.fromJson(json == null ? null : MAPPER.readTree(json), cleanUp);
    }

    private static String run(DecoderPipeline p, List<String> tokens) {
        StringBuilder sb = new StringBuilder();
        DecoderPipeline.Stage s = p.open(sb);
        tokens.forEach(s::accept);
        s.end();
        return sb.toString();
    }

    @Test
    void noDecoderJoinsWithSpaces() throws Exception {
        assertEquals("a b c", run(pipeline(null, false), List.of("a", "b", "c")));
    }

    @Test
    void metaspaceDropsReplacementInTheFirstTokenOnly() throws Exception {
        DecoderPipeline p = pipeline("{\"type\": \"Metaspace\", \"replacement\": \"▁\", \"prepend_scheme\": \"always\"}", false);
        assertEquals("Hey friend!", run(p, List.of("▁Hey", "▁friend!")));
        DecoderPipeline never = pipeline("{\"type\": \"Metaspace\", \"replacement\": \"▁\", \"prepend_scheme\": \"never\"}", false);
        assertEquals(" Hey friend!", run(never, List.of("▁Hey", "▁friend!")));
    }

    @Test
    void stripPerTokenAndAfterFuse() throws Exception {
        String perToken = "{\"type\": \"Strip\", \"content\": \" \", \"start\": 1, \"stop\": 1}";
        assertEquals("abc", run(pipeline(perToken, false), List.of(" a ", " b", "c ")));
        String fused = "{\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Fuse\"}, " + perToken + "]}";
        assertEquals("a  b c", run(pipeline(fused, false), List.of(" a ", " b", " c ")));
        assertEquals("", run(pipeline(fused, false), List.of(" ", " ")));
    }

    @Test
    void multiCharacterReplaceAcrossFusedFragments() throws Exception {
        String json = "{\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Fuse\"}, "
                + "{\"type\": \"Replace\", \"pattern\": {\"String\": \"ab\"}, \"content\": \"X\"}]}";
        assertEquals("XXaX", run(pipeline(json, false), List.of("a", "ba", "b", "a", "a", "b")));
    }

    @Test
    void cleanUpStreamsToTheSameResultAsWholeText() throws Exception {
        DecoderPipeline p = pipeline("{\"type\": \"Fuse\"}", true);
        String text = "Hello , world ! It 's a test . Don 't ' quote ' we 're , they 've . I 'm here ? x n ' t";
        String whole = run(p, List.of(text));
        // Same as transformers' sequential str.replace calls (checked with Python).
        assertEquals("Hello, world! It's a test. Don 't'quote'we're, they've. I'm here? xn't", whole);
        Random r = new Random(1);
        for (int round = 0; round < 500; round++) {
            List<String> pieces = new java.util.ArrayList<>();
            for (int i = 0; i < text.length(); ) {
                int n = 1 + r.nextInt(4);
                pieces.add(text.substring(i, Math.min(text.length(), i + n)));
                i += n;
            }
            assertEquals(whole, run(p, pieces));
        }
    }

    @Test
    void unsupportedDecodersAreRejected() {
        assertThrows(IllegalArgumentException.class, () -> pipeline("{\"type\": \"WordPiece\", \"prefix\": \"##\"}", false));
        assertThrows(IllegalArgumentException.class,
                () -> pipeline("{\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Fuse\"}, {\"type\": \"ByteFallback\"}]}", false));
    }
}
