// SPDX-License-Identifier: Apache-2.0
/**
 * The wire protocol between the front end, the DP coordinator and the engine processes: one
 * immutable record per message, one {@link dev.dpserve.api.protocol.MessageType} tag per record.
 *
 * <p>Framing (implemented by the transport bundle): every ZeroMQ message payload is a single frame
 * {@code [tag byte][CBOR map of the record's components]}. Tags are never 0x00 or 0x01 so that a
 * payload can never be mistaken for a subscription on the coordinator's XPUB/XSUB links. No class
 * names travel on the wire; a frame whose tag is unknown, whose body does not match the record, or
 * that exceeds a size limit is rejected and logged by the receiver.
 *
 * <p>Flow (see {@code docs/vllm-dp-spec.md} sections 2-4): engine → head {@link
 * dev.dpserve.api.protocol.EngineHello}; head → engine {@link dev.dpserve.api.protocol.EngineInit}
 * (or {@link dev.dpserve.api.protocol.HandshakeRejected}); engine loads the model, waits for
 * {@link dev.dpserve.api.protocol.CoordinatorReady}, then sends {@link
 * dev.dpserve.api.protocol.EngineReady}. Steady state: front end → engine {@link
 * dev.dpserve.api.protocol.EngineInput}s, engine → front end / coordinator {@link
 * dev.dpserve.api.protocol.EngineOutputs}, coordinator → engines {@link
 * dev.dpserve.api.protocol.StartDpWave}, coordinator → front ends {@link
 * dev.dpserve.api.protocol.CoordinatorStats}, front end → coordinator {@link
 * dev.dpserve.api.protocol.FirstRequest}.
 */
@org.osgi.annotation.bundle.Export
@org.osgi.annotation.versioning.Version("0.2.0")
package dev.dpserve.api.protocol;
