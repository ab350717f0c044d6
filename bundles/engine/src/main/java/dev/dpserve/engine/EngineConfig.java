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

    @AttributeDefinition(description = "LDAP filter selecting the ModelArchitecture service (set from config.json model_type)")
    String architecture_target() default "(dpserve.model.type=*)";
}
