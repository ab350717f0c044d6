// SPDX-License-Identifier: Apache-2.0
package dev.dpserve.api.protocol;

/**
 * What an engine receives after the handshake: requests and aborts from a front end (requests
 * socket), wave starts from the coordinator (coordinator socket). The engine switches over this
 * sealed type in its input loop.
 */
public sealed interface EngineInput extends ProtocolMessage permits AddRequest, AbortRequests, UtilityCall, StartDpWave {
}
