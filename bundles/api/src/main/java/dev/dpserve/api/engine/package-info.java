// SPDX-License-Identifier: Apache-2.0
/** Caller-facing engine API: what the REST layer and the shell use to run requests. */
@org.osgi.annotation.bundle.Export
@org.osgi.annotation.versioning.Version("0.4.0")
package dev.dpserve.api.engine;
