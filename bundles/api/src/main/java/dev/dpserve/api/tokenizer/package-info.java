// SPDX-License-Identifier: Apache-2.0
/** SPI for tokenizers loaded from a Hugging Face model directory. */
@org.osgi.annotation.bundle.Export
@org.osgi.annotation.versioning.Version("0.1.0")
package dev.dpserve.api.tokenizer;
