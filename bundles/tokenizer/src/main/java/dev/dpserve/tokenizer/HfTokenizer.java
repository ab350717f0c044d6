// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.tokenizer;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.dpserve.api.tokenizer.IncrementalDetokenizer;
import dev.dpserve.api.tokenizer.Tokenizer;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.Set;

/**
 * A Hugging Face tokenizer ({@code tokenizer.json} with a BPE model, plus
 * {@code tokenizer_config.json}) behaving like Python transformers' fast tokenizer.
 *
 * <p>Encoding: lone surrogates become U+FFFD; added tokens not marked {@code normalized} are cut
 * out of the raw text; the rest is normalized, then added tokens marked {@code normalized} are
 * cut out; the remaining pieces are pre-tokenized and each word is BPE-encoded. With
 * {@code addSpecialTokens}, BOS/EOS are added as transformers does: for the Llama and Gemma
 * tokenizer classes from {@code add_bos_token}/{@code add_eos_token}, otherwise from the
 * tokenizer.json post-processor.
 *
 * <p>Decoding: ids unknown to the vocabulary are dropped; with {@code skipSpecialTokens}, ids of
 * added tokens marked {@code special} are dropped; the decoder chain of tokenizer.json runs over
 * the token strings, followed by transformers' space clean-up when the config asks for it.
 *
 * <p>Immutable and thread-safe after {@link #load(Path)}.
 */
public final class HfTokenizer implements Tokenizer {

    static final String TOKENIZER_JSON = "tokenizer.json";
    static final String TOKENIZER_CONFIG_JSON = "tokenizer_config.json";
    static final String CHAT_TEMPLATE_JINJA = "chat_template.jinja";

    private static final ObjectMapper MAPPER = new ObjectMapper();

    static {
        // tokenizer.json vocabularies can hold very long strings; lift Jackson's default limits.
        MAPPER.getFactory().setStreamReadConstraints(StreamReadConstraints.builder()
                .maxStringLength(Integer.MAX_VALUE).maxNameLength(Integer.MAX_VALUE).build());
    }

    private final BpeModel model;
    private final Normalizer normalizer;
    private final PreTokenizer preTokenizer;
    private final AddedVocabulary rawAddedTokens;        // matched before normalization
    private final AddedVocabulary normalizedAddedTokens; // matched after normalization
    private final Map<Integer, AddedVocabulary.AddedToken> addedById;
    private final Map<String, Integer> addedByContent;
    private final Set<String> specialTokens;
    private final SpecialTokenTemplate specialTokenTemplate;
    private final DecoderPipeline decoder;
    private final int vocabSize;
    private final OptionalInt bos;
    private final OptionalInt eos;
    private final String chatTemplate;

    HfTokenizer(TokenizerJsonReader.Contents contents, TokenizerConfig config, String chatTemplateFile) {
        JsonNode tokenizerJson = contents.root();
        model = new BpeModel(tokenizerJson.path("model"), contents.vocab(), contents.merges());
        normalizer = Normalizer.fromJson(tokenizerJson.get("normalizer"));
        preTokenizer = PreTokenizer.fromJson(tokenizerJson.get("pre_tokenizer"));

        List<AddedVocabulary.AddedToken> added = new ArrayList<>();
        for (JsonNode t : tokenizerJson.path("added_tokens")) {
            added.add(new AddedVocabulary.AddedToken(t.path("id").asInt(), t.path("content").asText(),
                    t.path("special").asBoolean(false), t.path("single_word").asBoolean(false),
                    t.path("lstrip").asBoolean(false), t.path("rstrip").asBoolean(false),
                    t.path("normalized").asBoolean(!t.path("special").asBoolean(false))));
        }
        addedById = new HashMap<>();
        addedByContent = new HashMap<>();
        Set<String> specials = new LinkedHashSet<>();
        int maxId = model.size() - 1;
        for (AddedVocabulary.AddedToken t : added) {
            addedById.put(t.id(), t);
            addedByContent.put(t.content(), t.id());
            if (t.special()) specials.add(t.content());
            maxId = Math.max(maxId, t.id());
        }
        specialTokens = Collections.unmodifiableSet(specials);
        vocabSize = maxId + 1;
        rawAddedTokens = new AddedVocabulary(added.stream().filter(t -> !t.normalized()).toList(),
                AddedVocabulary.AddedToken::content);
        normalizedAddedTokens = new AddedVocabulary(added.stream().filter(AddedVocabulary.AddedToken::normalized).toList(),
                t -> normalizer.normalize(t.content()));

        decoder = DecoderPipeline.fromJson(tokenizerJson.get("decoder"), config.cleanUpTokenizationSpaces());
        bos = idOf(config.bosToken());
        eos = idOf(config.eosToken());
        if (config.overridesSpecialTokens()) {
            int[] prefix = config.addBos() && bos.isPresent() ? new int[] {bos.getAsInt()} : new int[0];
            int[] suffix = config.addEos() && eos.isPresent() ? new int[] {eos.getAsInt()} : new int[0];
            specialTokenTemplate = new SpecialTokenTemplate(prefix, suffix);
        } else {
            specialTokenTemplate = SpecialTokenTemplate.fromJson(tokenizerJson.get("post_processor"));
        }
        chatTemplate = config.chatTemplate() != null ? config.chatTemplate() : chatTemplateFile;
    }

    /**
     * Loads {@code tokenizer.json} and, when present, {@code tokenizer_config.json} and
     * {@code chat_template.jinja} from a model directory.
     *
     * @throws IOException when a file cannot be read or is not JSON
     * @throws IllegalArgumentException when the tokenizer uses features this bundle does not implement
     */
    public static HfTokenizer load(Path modelDir) throws IOException {
        TokenizerJsonReader.Contents tokenizerJson;
        try (InputStream in = Files.newInputStream(modelDir.resolve(TOKENIZER_JSON))) {
            tokenizerJson = TokenizerJsonReader.read(MAPPER, in);
        }
        Path configPath = modelDir.resolve(TOKENIZER_CONFIG_JSON);
        TokenizerConfig config = Files.isRegularFile(configPath)
                ? TokenizerConfig.fromJson(readJson(configPath)) : TokenizerConfig.EMPTY;
        Path templatePath = modelDir.resolve(CHAT_TEMPLATE_JINJA);
        String templateFile = Files.isRegularFile(templatePath) ? Files.readString(templatePath) : null;
        return new HfTokenizer(tokenizerJson, config, templateFile);
    }

    /** Builds a tokenizer from the contents of the two JSON files (the config may be null). */
    static HfTokenizer fromStreams(InputStream tokenizerJson, InputStream tokenizerConfig) throws IOException {
        TokenizerConfig config = tokenizerConfig == null ? TokenizerConfig.EMPTY
                : TokenizerConfig.fromJson(MAPPER.readTree(tokenizerConfig));
        return new HfTokenizer(TokenizerJsonReader.read(MAPPER, tokenizerJson), config, null);
    }

    /**
     * The {@code model.type} of a tokenizer.json, read by streaming past everything else (cheap
     * compared to {@link #load}); "BPE" for files that predate the field but have merges, null
     * when neither is present.
     */
    static String modelType(Path tokenizerJson) throws IOException {
        try (JsonParser p = MAPPER.createParser(tokenizerJson.toFile())) {
            if (p.nextToken() != JsonToken.START_OBJECT) return null;
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String field = p.currentName();
                JsonToken value = p.nextToken();
                if (!field.equals("model") || value != JsonToken.START_OBJECT) {
                    p.skipChildren();
                    continue;
                }
                boolean hasMerges = false;
                while (p.nextToken() == JsonToken.FIELD_NAME) {
                    String name = p.currentName();
                    p.nextToken();
                    if (name.equals("type")) return p.getValueAsString();
                    hasMerges |= name.equals("merges");
                    p.skipChildren();
                }
                return hasMerges ? "BPE" : null;
            }
            return null;
        }
    }

    private static JsonNode readJson(Path path) throws IOException {
        try (InputStream in = Files.newInputStream(path)) {
            JsonNode node = MAPPER.readTree(in);
            if (node == null || !node.isObject()) {
                throw new IOException(path + " is not a JSON object");
            }
            return node;
        }
    }

    private OptionalInt idOf(String token) {
        return token == null ? OptionalInt.empty() : tokenToId(token);
    }

    @Override
    public int[] encode(String text, boolean addSpecialTokens) {
        text = replaceLoneSurrogates(text);
        IntArrayBuilder out = new IntArrayBuilder(text.length() / 3 + 4);
        if (addSpecialTokens) out.addAll(specialTokenTemplate.prefix());
        List<String> words = new ArrayList<>();
        for (AddedVocabulary.Segment raw : rawAddedTokens.split(text)) {
            if (raw.id() >= 0) {
                out.add(raw.id());
                continue;
            }
            String normalized = normalizer.normalize(raw.text());
            for (AddedVocabulary.Segment piece : normalizedAddedTokens.split(normalized)) {
                if (piece.id() >= 0) {
                    out.add(piece.id());
                    continue;
                }
                words.clear();
                preTokenizer.split(piece.text(), raw.start() == 0 && piece.start() == 0, words);
                for (String word : words) {
                    model.encodeWord(word, out);
                }
            }
        }
        if (addSpecialTokens) out.addAll(specialTokenTemplate.suffix());
        return out.toArray();
    }

    /** Replaces each unpaired UTF-16 surrogate by U+FFFD. */
    static String replaceLoneSurrogates(String text) {
        char[] chars = null;
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < text.length() && Character.isLowSurrogate(text.charAt(i + 1))) {
                i++;
            } else if (Character.isSurrogate(c)) {
                if (chars == null) chars = text.toCharArray();
                chars[i] = '\uFFFD';
            }
        }
        return chars == null ? text : new String(chars);
    }

    @Override
    public String decode(int[] ids, boolean skipSpecialTokens) {
        StringBuilder sb = new StringBuilder(ids.length * 4);
        DecoderPipeline.Stage stream = decoder.open(sb);
        for (int id : ids) {
            String token = tokenForDecode(id, skipSpecialTokens);
            if (token != null) stream.accept(token);
        }
        stream.end();
        return sb.toString();
    }

    /** The string the decoder sees for an id, or null when the id is skipped or unknown. */
    String tokenForDecode(int id, boolean skipSpecialTokens) {
        AddedVocabulary.AddedToken added = addedById.get(id);
        if (added != null) {
            return skipSpecialTokens && added.special() ? null : added.content();
        }
        return model.idToToken(id);
    }

    @Override
    public IncrementalDetokenizer newDetokenizer(boolean skipSpecialTokens) {
        return new HfDetokenizer(this, decoder, skipSpecialTokens);
    }

    @Override
    public int vocabSize() {
        return vocabSize;
    }

    @Override
    public OptionalInt bosTokenId() {
        return bos;
    }

    @Override
    public OptionalInt eosTokenId() {
        return eos;
    }

    @Override
    public boolean isSpecial(int id) {
        AddedVocabulary.AddedToken t = addedById.get(id);
        return t != null && t.special();
    }

    @Override
    public String idToToken(int id) {
        AddedVocabulary.AddedToken t = addedById.get(id);
        return t != null ? t.content() : model.idToToken(id);
    }

    @Override
    public OptionalInt tokenToId(String token) {
        Integer id = addedByContent.get(token);
        if (id == null) id = model.tokenToId(token);
        return id == null ? OptionalInt.empty() : OptionalInt.of(id);
    }

    @Override
    public Optional<String> chatTemplate() {
        return Optional.ofNullable(chatTemplate);
    }

    @Override
    public Set<String> specialTokens() {
        return specialTokens;
    }
}
