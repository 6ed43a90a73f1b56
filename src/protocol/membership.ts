// Per-group reconfiguration (issue 13; the argument is in docs/DESIGN.md, "Membership changes").
//
// A group's configuration (who votes, preferred first, and its epoch) is part of its replicated
// state: `config(i)`, the configuration of instance i, is that of the last chosen value below i
// that carried one (a reconfiguration), else the birth configuration (GroupConfig.replicas).
// A replica acts at i only with i-1 chosen, so it always knows config(i) exactly, and every
// replica computes the same one: no index is ever decided by two configurations. A
// reconfiguration chosen at i is decided by config(i), the OLD configuration; instances above
// it use the new one.
//
// Roles at the open instance chosen+1:
//   voter       in config(chosen+1): votes and proposes;
//   joining     marked durably before the reconfiguration that adds it could be chosen; holds
//               nothing; learns only by installing a data copy whose configuration includes it
//               (it does not know the group's history, so it cannot replay entries); never votes
//               before that;
//   removed     not in config(chosen+1): never votes or proposes; answers writes and
//               linearizable reads `moved`; serves data catch-up and stale reads until its node
//               drops the copy;
//   recovering  recovery.ts.

import type { NodeId } from "./ballot.js";
import type { GroupConfig } from "./config.js";
import type { Effects } from "./effects.js";
import type { CallId } from "./io.js";
import type { ChosenEntry } from "./messages.js";
import type { Configuration, Value } from "./ops.js";
import { valueProposer } from "./ops.js";
import { newProposer } from "./proposer.js";
import { chosenIndex, type GroupState } from "./state.js";

export type Role = "voter" | "joining" | "removed" | "recovering";

export function birthConfiguration(config: GroupConfig): Configuration {
  return { epoch: config.epoch ?? 0, replicas: config.replicas };
}

export function role(state: GroupState): Role {
  if (state.recovering !== null) return "recovering";
  if (state.joining !== null) return "joining";
  return state.members.replicas.includes(state.config.self) ? "voter" : "removed";
}

/**
 * Is this replica in the configuration of its open instance, knowing the group? (Recovery may
 * still keep it from voting: recovery.ts `mute`.) The deliberate bug
 * "reconfig-joiner-votes-early" lets a joining replica act as a member of the configuration it
 * is to join, with its empty copy.
 */
export function isMember(state: GroupState): boolean {
  if (state.joining !== null && !joinerVotesEarly(state)) return false;
  return state.members.replicas.includes(state.config.self);
}

export function joinerVotesEarly(state: GroupState): boolean {
  return state.config.breaks?.has("reconfig-joiner-votes-early") ?? false;
}

/**
 * The owner of the fast round at the open instance: the proposer of the value chosen at
 * chosen if it is in config(chosen+1), else that configuration's first (preferred) replica;
 * at instance 1, the birth configuration's first replica. A function of the chosen entry and
 * config(chosen+1), which every replica agrees on: still one owner per index.
 */
export function fastRoundOwnerAt(members: Configuration, chosen: ChosenEntry | null): NodeId | null {
  const first = members.replicas[0] ?? null;
  if (chosen === null) return first;
  const proposer = valueProposer(chosen.value);
  return members.replicas.includes(proposer) ? proposer : first;
}

/** Peers to ask for catch-up: the configuration's others (a joiner's sources first). */
export function catchUpPeers(state: GroupState): NodeId[] {
  const self = state.config.self;
  const peers: NodeId[] = [];
  for (const n of [...(state.joining ?? []), ...state.members.replicas]) if (n !== self && !peers.includes(n)) peers.push(n);
  return peers;
}

// ---- reconfigure calls ----------------------------------------------------------------------

export function onReconfigure(state: GroupState, fx: Effects, call: CallId, config: Configuration, deadline: number): void {
  if (config.replicas.length === 0 || new Set(config.replicas).size !== config.replicas.length) {
    throw new Error(`reconfigure ${state.config.group}: replicas must be distinct and not empty, got ${config.replicas.join(",")}`);
  }
  if (!Number.isSafeInteger(config.epoch) || config.epoch < 0) throw new Error(`reconfigure ${state.config.group}: bad epoch ${config.epoch}`);
  if (config.epoch <= state.members.epoch && state.joining === null) {
    answerReconfigured(state, fx, call); // already there (a retry, or a later change won)
    return;
  }
  switch (role(state)) {
    case "recovering":
      fx.answerError(call, "unavailable", "this replica is recovering the group; reconfigure through another replica");
      return;
    case "joining":
    case "removed":
      moved(state, fx, call, "reconfigure");
      return;
    case "voter":
      state.reconfigs.push({ call, config, deadline });
  }
}

/** The reconfiguration the next value should carry, if one is waiting. */
export function nextReconfig(state: GroupState): Configuration | null {
  for (const r of state.reconfigs) if (r.config.epoch > state.members.epoch) return r.config;
  return null;
}

export function reconfigValue(id: string, config: Configuration): Value {
  return { id, commands: [], config };
}

/** Learning `entry` (learner.ts): a reconfiguration moves the open instance to its configuration. */
export function adoptChosenConfig(state: GroupState, entry: ChosenEntry): boolean {
  const next = entry.value.config;
  if (next === undefined || next.epoch <= state.members.epoch) return false; // a stale or repeated one changes nothing
  state.members = next;
  state.membersStored = true;
  return true;
}

/**
 * After `chosen` or `members` changed: answers the reconfigure calls that are settled, and, if
 * this replica is no longer in the configuration, everything it can no longer serve.
 */
export function settleMembership(state: GroupState, fx: Effects, changed = false): void {
  if (state.reconfigs.length > 0) {
    let kept = 0;
    for (const r of state.reconfigs) {
      if (r.config.epoch <= state.members.epoch) answerReconfigured(state, fx, r.call);
      else state.reconfigs[kept++] = r;
    }
    state.reconfigs.length = kept;
  }
  const now = role(state);
  if (now === "removed") leave(state, fx);
  // The new configuration confirms the hand-over: the owner of the first instance after it
  // drives it (a no-op if nothing is queued), so a quorum of new replicas soon holds the group
  // past the change and the removed copies may go, even in a group nobody writes to.
  else if (changed && now === "voter" && fastRoundOwnerAt(state.members, state.chosen) === state.config.self) state.proposer.settle = true;
}

/** A removed replica stops: its waiting writes, reads and reconfigure calls are answered `moved`. */
function leave(state: GroupState, fx: Effects): void {
  for (const w of state.queue) moved(state, fx, w.call, "write");
  state.queue.length = 0;
  let kept = 0;
  for (const r of state.reads) {
    if (r.consistency === "stale") state.reads[kept++] = r;
    else moved(state, fx, r.call, "read");
  }
  state.reads.length = kept;
  for (const r of state.reconfigs) moved(state, fx, r.call, "reconfigure");
  state.reconfigs.length = 0;
  if (state.proposer.phase !== "idle" || state.proposer.settle) Object.assign(state.proposer, { ...newProposer(), valueCounter: state.proposer.valueCounter });
}

export function moved(state: GroupState, fx: Effects, call: CallId, what: "write" | "read" | "reconfigure"): void {
  const where = state.members.replicas.join(", ");
  const message =
    state.joining !== null
      ? `this replica is still joining group ${state.config.group} (it does not hold it yet); its replicas are ${where}`
      : `group ${state.config.group} moved: its replicas are ${where} (epoch ${state.members.epoch})${what === "write" ? "; the write may have been applied if it went out before the move: retry with the same request id there" : ""}`;
  fx.answerError(call, "moved", message, state.members);
}

function answerReconfigured(state: GroupState, fx: Effects, call: CallId): void {
  fx.answerReconfigured(call, state.members, chosenIndex(state));
}

/** Reconfigure calls past their deadline: the change may still be chosen (retry to learn). */
export function expireReconfigs(state: GroupState, fx: Effects, now: number): void {
  if (state.reconfigs.length === 0) return;
  let kept = 0;
  for (const r of state.reconfigs) {
    if (now < r.deadline) state.reconfigs[kept++] = r;
    else fx.answerError(r.call, "timeout", "the reconfiguration was not decided before the deadline; it may still be (retry with the same epoch to learn)");
  }
  state.reconfigs.length = kept;
}

export function reconfigsWakeAt(state: GroupState): number | null {
  let at: number | null = null;
  for (const r of state.reconfigs) at = at === null ? r.deadline : Math.min(at, r.deadline);
  return at;
}

// ---- joining --------------------------------------------------------------------------------

/**
 * Should a joining replica install a copy with this configuration? Only one at the epoch it
 * joins (or later) that includes it. An OLDER configuration may include it too: when this node
 * was a replica before, was removed and dropped its copy, and now joins again. Its votes of
 * then are forgotten with the copy, so it must not vote at those indexes again; a copy at the
 * epoch it joins lies past the reconfiguration that removed it, past every index it voted at
 * (the simulation found a rejoining node voting twice at one index: seed 5515).
 */
export function joinerTakes(state: GroupState, config: Configuration | undefined): boolean {
  if (state.joining === null) return true;
  return config !== undefined && config.epoch >= state.members.epoch && config.replicas.includes(state.config.self);
}
