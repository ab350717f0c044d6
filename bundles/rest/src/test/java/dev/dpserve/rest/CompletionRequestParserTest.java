// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.rest;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class CompletionRequestParserTest {

    private static CompletionRequest parse(String json) {
        return CompletionRequestParser.parse(json);
    }

    private static OpenAiError error(String json) {
        return assertThrows(OpenAiError.class, () -> parse(json));
    }

    @Test
    void defaults() {
        CompletionRequest r = parse("{\"prompt\":\"hi\"}");
        assertNull(r.model());
        assertEquals(16, r.maxTokens());
        assertEquals(1.0, r.temperature());
        assertEquals(1.0, r.topP());
        assertEquals(0, r.topK());
        assertEquals(0.0, r.minP());
        assertNull(r.seed());
        assertEquals(List.of(), r.stop());
        assertEquals(Set.of(), r.stopTokenIds());
        assertEquals(1, r.n());
        assertTrue(r.skipSpecialTokens());
        assertTrue(r.addSpecialTokens());
        assertFalse(r.echo() || r.stream() || r.ignoreEos() || r.includeStopStrInOutput() || r.returnTokenIds());
        assertNull(r.logprobs());
    }

    @Test
    void promptForms() {
        assertEquals("hi", parse("{\"prompt\":\"hi\"}").prompts().getFirst().text());
        List<Prompt> texts = parse("{\"prompt\":[\"a\",\"b\"]}").prompts();
        assertEquals(List.of("a", "b"), texts.stream().map(Prompt::text).toList());
        List<Prompt> ids = parse("{\"prompt\":[5,6,7]}").prompts();
        assertEquals(1, ids.size());
        assertArrayEquals(new int[] {5, 6, 7}, ids.getFirst().tokenIds());
        List<Prompt> lists = parse("{\"prompt\":[[5],[6,7.0]]}").prompts();
        assertArrayEquals(new int[] {6, 7}, lists.get(1).tokenIds());
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        "{\"prompt\":\"\"}|The decoder prompt cannot be empty|prompt",
        "{\"prompt\":[]}|The decoder prompt cannot be empty|prompt",
        "{\"prompt\":[[]]}|The decoder prompt cannot be empty|prompt",
        "{\"prompt\":[\"a\",\"\"]}|The decoder prompt cannot be empty|prompt",
        "{}|Either prompt or prompt_embeds must be provided and non-empty.|prompt",
        "{\"prompt\":null}|Either prompt or prompt_embeds must be provided and non-empty.|prompt",
        "{\"prompt\":5}|Invalid value for 'prompt'|prompt",
        "{\"prompt\":[1,\"a\"]}|Invalid value for 'prompt'|prompt",
        "{\"prompt\":[\"a\",1]}|Invalid value for 'prompt'|prompt",
        "{\"prompt\":[1.5]}|Invalid value for 'prompt'|prompt",
        "{\"prompt\":{\"a\":1}}|Invalid value for 'prompt'|prompt",
        "{\"prompt\":\"x\",\"max_tokens\":\"16\"}|Invalid value for 'max_tokens'|max_tokens",
        "{\"prompt\":\"x\",\"max_tokens\":1.5}|Invalid value for 'max_tokens'|max_tokens",
        "{\"prompt\":\"x\",\"temperature\":\"hot\"}|Invalid value for 'temperature'|temperature",
        "{\"prompt\":\"x\",\"stream\":1}|Invalid value for 'stream'|stream",
        "{\"prompt\":\"x\",\"model\":7}|Invalid value for 'model'|model",
        "{\"prompt\":\"x\",\"seed\":1e30}|Invalid value for 'seed'|seed",
        "{\"prompt\":\"x\",\"stop\":7}|Invalid value for 'stop'|stop",
        "{\"prompt\":\"x\",\"stop\":[\"\"]}|stop cannot contain an empty string.|stop",
        "{\"prompt\":\"x\",\"stop_token_ids\":[\"a\"]}|Invalid value for 'stop_token_ids'|stop_token_ids",
        "{\"prompt\":\"x\",\"n\":0}|n must be at least 1, got 0.|n",
        "{\"prompt\":\"x\",\"n\":2,\"best_of\":3}|best_of > n is not supported yet|best_of",
        "{\"prompt\":\"x\",\"n\":2,\"best_of\":1}|best_of must be greater than or equal to n|best_of",
        "{\"prompt\":\"x\",\"logprobs\":-1}|`logprobs` must be a positive value.|logprobs",
        "{\"prompt\":\"x\",\"logprobs\":21}|Requested sample logprobs of 21, which is greater than max allowed: 20|logprobs",
        "{\"prompt\":\"x\",\"echo\":true,\"logprobs\":1}|echo together with logprobs is not supported yet|echo",
        "{\"prompt\":\"x\",\"stream_options\":{\"include_usage\":true}}|Stream options can only be defined when `stream=True`.|stream_options",
        "{\"prompt\":\"x\",\"stream\":true,\"stream_options\":{\"include_usage\":\"yes\"}}|Invalid value for 'include_usage'|include_usage",
        "{\"prompt\":\"x\",\"suffix\":\"end\"}|suffix is not currently supported|suffix",
        "{\"prompt\":\"x\",\"frequency_penalty\":0.5}|frequency_penalty is not supported yet|frequency_penalty",
        "{\"prompt\":\"x\",\"presence_penalty\":-1}|presence_penalty is not supported yet|presence_penalty",
        "{\"prompt\":\"x\",\"repetition_penalty\":1.2}|repetition_penalty is not supported yet|repetition_penalty",
        "{\"prompt\":\"x\",\"logit_bias\":{\"5\":10}}|logit_bias is not supported yet|logit_bias",
        "{\"prompt\":\"x\",\"prompt_logprobs\":1}|prompt_logprobs is not supported yet|prompt_logprobs",
        "{\"prompt\":\"x\",\"guided_json\":{}}|guided_json is not supported yet|guided_json",
        "{\"prompt\":\"x\",\"guided_regex\":\"a+\"}|guided_regex is not supported yet|guided_regex",
        "{\"prompt\":\"x\",\"guided_choice\":[\"a\"]}|guided_choice is not supported yet|guided_choice",
        "{\"prompt\":\"x\",\"response_format\":{\"type\":\"json_object\"}}|response_format is not supported yet|response_format",
        "{\"prompt\":\"x\",\"use_beam_search\":true}|use_beam_search is not supported yet|use_beam_search",
        "{\"prompt\":\"x\",\"truncate_prompt_tokens\":-2}|truncate_prompt_tokens must be -1 or at least 0|truncate_prompt_tokens",
    })
    void rejects(String json, String message, String param) {
        OpenAiError e = error(json);
        assertEquals(400, e.status());
        assertEquals("BadRequestError", e.type());
        assertTrue(e.getMessage().startsWith(message), e.getMessage());
        assertEquals(param, e.param());
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        "''", "'{'", "'{\"prompt\":\"x\"} trailing'", "'[1,2]'", "'\"text\"'", "'null'"})
    void malformedBodies(String body) {
        OpenAiError e = error(body);
        assertEquals(400, e.status());
        assertEquals("BadRequestError", e.type());
        assertNull(e.param());
    }

    @Test
    void defaultValuedUnsupportedFieldsAreAccepted() {
        CompletionRequest r = parse("{\"prompt\":\"x\",\"frequency_penalty\":0,\"presence_penalty\":0.0,"
                + "\"repetition_penalty\":1.0,\"logit_bias\":{},\"best_of\":1,\"suffix\":null,\"guided_json\":null,"
                + "\"response_format\":{\"type\":\"text\"},\"length_penalty\":1.0,\"user\":\"u\"}");
        assertEquals(1, r.n());
    }

    @Test
    void unknownFieldsAreIgnored() {
        assertEquals(3, parse("{\"prompt\":\"x\",\"max_tokens\":3,\"whatever\":{\"a\":[1]}}").maxTokens());
    }

    @Test
    void explicitNullMaxTokensMeansUpToTheContextLimit() {
        assertNull(parse("{\"prompt\":\"x\",\"max_tokens\":null}").maxTokens());
        assertEquals(16, parse("{\"prompt\":\"x\",\"temperature\":null}").maxTokens());
    }

    @Test
    void streamOptionsAndMisc() {
        CompletionRequest r = parse("{\"prompt\":\"x\",\"stream\":true,\"stream_options\":{\"include_usage\":true,"
                + "\"continuous_usage_stats\":true},\"stop\":\"\\n\",\"stop_token_ids\":[3,4],\"seed\":-5,"
                + "\"max_tokens\":8.0,\"request_id\":\"abc\"}");
        assertTrue(r.stream() && r.includeUsage() && r.continuousUsageStats());
        assertEquals(List.of("\n"), r.stop());
        assertEquals(Set.of(3, 4), r.stopTokenIds());
        assertEquals(-5L, r.seed());
        assertEquals(8, r.maxTokens());
        assertEquals("abc", r.requestId());
    }
}
