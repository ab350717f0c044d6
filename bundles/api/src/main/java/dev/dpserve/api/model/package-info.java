// SPDX-License-Identifier: Apache-2.0
/** SPI for model architectures (one DS component per architecture, keyed by model_type). */
@org.osgi.annotation.bundle.Export
@org.osgi.annotation.versioning.Version("0.3.0")
package dev.dpserve.api.model;
