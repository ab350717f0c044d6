// SPDX-License-Identifier: Apache-2.0
/** SPI for kernel backends and the tensor views they compute on; API for the per-op backend choice. */
@org.osgi.annotation.bundle.Export
@org.osgi.annotation.versioning.Version("0.3.0")
package dev.dpserve.api.tensor;
