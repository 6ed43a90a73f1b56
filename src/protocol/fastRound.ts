// The fast round (round 0) skips Prepare: one round trip per write. It is safe only because
// at most one node ever uses it at an instance: the OWNER of instance i, the node that
// PROPOSED the value chosen at i-1 (the same on every replica, since that value is unique),
// or at instance 1 the group's first configured replica; when that proposer is not in
// config(i) (a reconfiguration removed it), config(i)'s first replica (membership.ts).
//
// Not "the node whose ballot chose it": one value can be chosen under several ballots (a
// proposer that adopted it drives it again), and replicas that learned it under different
// ballots would then disagree on the owner; two owners skipping Prepare at one index can
// choose two values (the simulation found exactly that: seed 100580, 5 replicas). Two nodes
// skipping Prepare at one index could each get a majority for different values.
//
// A proposer uses the fast round only while its own acceptor has neither promised nor
// accepted anything at the instance: so one process sends at most one round-0 value at an
// instance (its acceptor takes it in the same step; a reload of the group in the same process
// happens only once every persist of the previous actor is on disk, where it then finds it).
//
// Across processes: its Accept leaves BEFORE its own accept is durable (Ready.sendNow), so a
// process that dies may have sent Accept(round 0, v) at i without a trace on its disk, and a
// peer may have accepted v (v may even be chosen, by the peers' votes). A restarted process
// must then not send a different value at round 0 at i: two values under one ballot break
// Paxos (a later Prepare could see both at the same ballot and adopt the wrong one). So a
// process that is not the first life of its data directory (config.fastRoundFence set) uses
// round 0 at i only when the value chosen at i-1 was proposed by THIS process (its value id
// starts with the fence): no earlier process can have known that value, so none can have
// opened instance i, let alone sent an Accept there. Elsewhere it prepares (round >= 1),
// which adopts whatever a peer accepted. A data directory's first life has no earlier process.
// Cost: after a restart, each group's first write takes a Prepare round.

import type { NodeId } from "./ballot.js";
import { FAST_ROUND } from "./ballot.js";
import { fastRoundOwnerAt } from "./membership.js";
import type { GroupState } from "./state.js";

/**
 * The node that may use round 0 at the open instance. At instance 1 nothing was chosen before,
 * so the owner is the group's first replica in the configured order, which every replica
 * agrees on (the nodes list replicas preferred-first, by the same rendezvous hash the clients
 * use, so a group's first write through its preferred replica is already one round trip).
 */
export function fastRoundOwner(state: GroupState): NodeId | null {
  // Across a reconfiguration the proposer of the previous value may not be a member any more:
  // then the new configuration's first replica owns the round (membership.ts).
  return fastRoundOwnerAt(state.members, state.chosen);
}

/** May this replica's proposer skip Prepare at the open instance? */
export function mayUseFastRound(state: GroupState): boolean {
  const anyNode = state.config.breaks?.has("fast-round-any-node") ?? false;
  const owner = anyNode || fastRoundOwner(state) === state.config.self;
  return owner && state.promised === null && state.accepted === null && pastFence(state);
}

/** Is the open instance's fast round this process's to use (see the top of this file)? */
function pastFence(state: GroupState): boolean {
  const fence = state.config.fastRoundFence;
  if (fence === undefined) return true;
  // The deliberate bug: a restarted proposer reuses round 0 where its unpersisted Accept may have gone out.
  if (state.config.breaks?.has("fast-round-after-restart")) return true;
  return state.chosen !== null && state.chosen.value.id.startsWith(fence);
}

/** Should an acceptor take a round-0 Accept from `node`? Only from the owner. */
export function fastRoundAllowedFrom(state: GroupState, node: NodeId, round: number): boolean {
  if (round !== FAST_ROUND) return true;
  if (state.config.breaks?.has("fast-round-any-node")) return true;
  return fastRoundOwner(state) === node;
}
