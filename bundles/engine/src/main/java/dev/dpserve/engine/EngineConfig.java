// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.engine;

import org.osgi.service.metatype.annotations.AttributeDefinition;
import org.osgi.service.metatype.annotations.ObjectClassDefinition;

/** Configuration of the in-process engine (PID {@code dev.dpserve.engine}), written by the launcher from the serve flags. */
@ObjectClassDefinition(name = "dpserve engine", description = "The model an in-process engine serves and its limits")
public @interface EngineConfig {

    @AttributeDefinition(description = "Hugging Face model directory")
    String model();

    @AttributeDefinition(description = "Name clients use as `model`; empty = the model path")
    String served_model_name() default "";

    @AttributeDefinition(description = "Prompt + output token limit; 0 = the model's max_position_embeddings")
    int max_model_len() default 0;

    @AttributeDefinition(description = "Most sequences decoded together")
    int max_num_seqs() default 256;

    @AttributeDefinition(description = "Token budget of one forward pass; 0 = max(2048, max_model_len)")
    int max_num_batched_tokens() default 0;

    @AttributeDefinition(description = "Seed of the engine's random stream for requests without a seed")
    long seed() default 0;

    @AttributeDefinition(description = "Weight/compute dtype: auto, float32, bfloat16, float16")
    String dtype() default "auto";

    @AttributeDefinition(description = "Weight quantization: none, or w8a8 (int8 weights per output channel, int8 activations per token, quantized at load)")
    String quantization() default "none";

    @AttributeDefinition(description = "LDAP filter selecting the ModelArchitecture service (set from config.json model_type)")
    String architecture_target() default "(dpserve.model.type=*)";

    @AttributeDefinition(description = "Tokens per KV cache block")
    int block_size() default 16;

    @AttributeDefinition(description = "Share KV blocks of equal prompt prefixes between requests")
    boolean enable_prefix_caching() default true;

    @AttributeDefinition(description = "Fraction of device memory for weights + KV cache")
    double gpu_memory_utilization() default 0.9;

    @AttributeDefinition(description = "Device memory in bytes; 0 = physical RAM divided by data_parallel_size_local (CPU)")
    long device_memory() default 0;

    @AttributeDefinition(description = "Engine ranks sharing this host's memory (divides the physical RAM)")
    int data_parallel_size_local() default 1;

    @AttributeDefinition(description = "KV cache bytes; 0 = gpu_memory_utilization x device memory - weights")
    long kv_cache_memory() default 0;

    @AttributeDefinition(description = "Most tokens of one request per step (chunking long prefills); 0 = off")
    int long_prefill_token_threshold() default 0;

    @AttributeDefinition(description = "Name of the scheduling policy (dpserve.scheduler.name); empty = the highest service.ranking")
    String scheduler() default "";
}
