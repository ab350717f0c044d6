// SPDX-License-Identifier: Apache-2.0
/** SPI for kernel backends and the tensor views they compute on. */
@org.osgi.annotation.bundle.Export
@org.osgi.annotation.versioning.Version("0.2.0")
package dev.dpserve.api.tensor;
