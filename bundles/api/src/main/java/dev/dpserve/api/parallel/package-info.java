// SPDX-License-Identifier: Apache-2.0
/**
 * Collectives of a data-parallel group and the engine's lockstep (wave) contract.
 *
 * <p>{@link dev.dpserve.api.parallel.Communicator} is a process group's CPU collective (the DP
 * group's token-count exchange and idle consensus, spec 4.2 and 5.3); a
 * {@link dev.dpserve.api.parallel.CommunicatorFactory} service joins one. The TP/EP work will add
 * tensor collectives (raw little-endian float frames) to the same interface.
 * {@link dev.dpserve.api.parallel.LockstepEngine} is what an engine offers when MoE ranks must step
 * together (spec 4.2-4.3): the transport hands it the group and the wave events.
 */
@org.osgi.annotation.bundle.Export
@org.osgi.annotation.versioning.Version("0.1.0")
package dev.dpserve.api.parallel;
