// Catch-up for a replica that is behind. The slim log keeps only the last chosen entry, so:
//   one behind      -> the peer sends its last chosen entry, learned like any chosen value;
//   further behind  -> the peer sends its data as of its chosen index, in chunks that fit a
//                      message; the replica installs it atomically when the last chunk lands.
// A snapshot is a consistent cut only while the source stays at that index: if it moved on,
// it restarts the copy from the first chunk at its new index.
//
// Jumping ahead is safe for the acceptor: its promises and accepts were all at instances up
// to its old open one, which are decided; at the new open instance it has promised nothing.

import type { NodeId } from "./ballot.js";
import type { Effects } from "./effects.js";
import { answerApplied, learn } from "./learner.js";
import type { CatchUpEntry, CatchUpRequest, CatchUpSnapshot, ChosenEntry } from "./messages.js";
import type { Entry, WriteResult } from "./ops.js";
import { birthConfiguration, catchUpPeers, joinerTakes, settleMembership } from "./membership.js";
import { newProposer } from "./proposer.js";
import { chosenIndex, type GroupState } from "./state.js";

/**
 * Asks `peer`, which has chosen at least `wanted`, for what follows our chosen index, unless
 * a request is already out. Retries (retryCatchUp) go on only until we reach `wanted`.
 */
export function requestCatchUp(state: GroupState, fx: Effects, now: number, peer: NodeId, wanted: number, force = false): void {
  const cu = state.catchUp;
  if (peer === state.config.self) return;
  cu.wanted = Math.max(cu.wanted, wanted);
  if (chosenIndex(state) >= cu.wanted && cu.snapshot === null) return;
  if (!force && cu.asked !== null && now - cu.askedAt < state.config.timing.catchUpRetryMs) return;
  cu.asked = peer;
  cu.askedAt = now;
  const snap = cu.snapshot;
  const request: CatchUpRequest = {
    type: "catchupRequest",
    group: state.config.group,
    chosen: chosenIndex(state),
    snapshotAt: snap !== null && snap.from === peer ? snap.at.index : null,
    after: snap !== null && snap.from === peer ? snap.expectAfter : null,
  };
  fx.sendTo(peer, state.joining === null ? request : { ...request, snapshot: true });
}

/** A joining replica asks for a copy of the data until it holds one (membership.ts). */
export function progressJoin(state: GroupState, fx: Effects, now: number): void {
  if (state.joining === null || state.catchUp.asked !== null || state.recovering !== null) return;
  const peer = catchUpPeers(state)[0];
  if (peer !== undefined) requestCatchUp(state, fx, now, peer, chosenIndex(state) + 1, true);
}

/**
 * When an unanswered catch-up request is asked again: after catchUpSpareMs while nothing came
 * (a silent peer: dead, paused or cut off, as the one whose message showed us behind often is),
 * after catchUpRetryMs while a copy is coming in chunks (a slow peer, whose copy would be lost).
 */
export function catchUpRetryAt(state: GroupState): number | null {
  const cu = state.catchUp;
  if (cu.asked === null) return null;
  const t = state.config.timing;
  return cu.askedAt + (cu.snapshot === null ? Math.min(t.catchUpSpareMs, t.catchUpRetryMs) : t.catchUpRetryMs);
}

/** Re-asks, rotating to the next peer, when a request went unanswered. */
export function retryCatchUp(state: GroupState, fx: Effects, now: number): void {
  const cu = state.catchUp;
  const at = catchUpRetryAt(state);
  if (cu.asked === null || at === null || now < at) return;
  if (chosenIndex(state) >= cu.wanted) {
    // Caught up: nothing left to ask for, and a copy still coming is of an index we passed.
    cu.asked = null;
    cu.ahead = null;
    cu.snapshot = null;
    return;
  }
  const peers = catchUpPeers(state);
  if (peers.length === 0) {
    // Nobody to ask now: look again a retry later, not at every tick from now on.
    cu.askedAt = now;
    return;
  }
  // A node outside our configuration that is ahead (state.ts) first, then the ones we know in
  // turn. Once only: it too may have dropped the group since (a joiner's source that was told
  // of the reconfiguration is outside the configuration it joins), and a sticky `ahead` would
  // alternate between it and the next peer forever (sim seed 57).
  const ahead = cu.ahead !== null && cu.ahead !== cu.asked ? cu.ahead : null;
  cu.ahead = null;
  const next = ahead ?? peers[(peers.indexOf(cu.asked) + 1) % peers.length]!;
  cu.snapshot = null; // a half-copied snapshot from a silent peer is abandoned
  requestCatchUp(state, fx, now, next, cu.wanted, true);
}

export function serveCatchUp(state: GroupState, fx: Effects, from: NodeId, m: CatchUpRequest): void {
  const c = chosenIndex(state);
  if (c <= m.chosen || state.chosen === null) return; // nothing newer to give
  const group = state.config.group;
  if (m.snapshotAt === c && m.after !== null) {
    fx.sendTo(from, snapshotChunk(state, state.chosen, m.after));
  } else if (c === m.chosen + 1 && m.snapshot !== true) {
    fx.sendTo(from, { type: "catchupEntry", group, entry: state.chosen });
  } else {
    fx.sendTo(from, snapshotChunk(state, state.chosen, null));
  }
}

function snapshotChunk(state: GroupState, at: ChosenEntry, after: string | null): CatchUpSnapshot {
  const keys = [...state.data.keys()].filter((k) => after === null || k > after).sort();
  const items: [string, Entry][] = [];
  const requests = after === null ? [...state.requests.values()] : [];
  // The request records ride in the first chunk and count against its budget, so every chunk
  // (plus the chosen entry it names) stays well inside one frame.
  let bytes = requests.reduce((n, r) => n + r.requestId.length + 48, 0);
  for (const key of keys) {
    if (items.length > 0 && bytes >= state.config.limits.snapshotChunkBytes) break;
    const entry = state.data.get(key)!;
    items.push([key, entry]);
    bytes += key.length + entry.value.length + 16;
  }
  const more = items.length < keys.length;
  const chunk: CatchUpSnapshot = {
    type: "catchupSnapshot",
    group: state.config.group,
    at,
    after,
    items,
    requests,
    next: more ? items[items.length - 1]![0] : null,
  };
  // The configuration of at.index + 1 rides along once it is not the birth one (membership.ts).
  return state.membersStored && state.joining === null ? { ...chunk, config: state.members } : chunk;
}

export function onCatchUpEntry(state: GroupState, fx: Effects, now: number, m: CatchUpEntry): void {
  if (m.entry.index !== chosenIndex(state) + 1) return;
  learn(state, fx, now, m.entry);
}

export function onCatchUpSnapshot(state: GroupState, fx: Effects, now: number, from: NodeId, m: CatchUpSnapshot): void {
  const cu = state.catchUp;
  if (m.at.index <= chosenIndex(state)) return;
  if (m.after === null) {
    // A joiner takes only a copy that makes it a member: one from before its reconfiguration
    // was chosen does not (it asks again later).
    if (!joinerTakes(state, m.config)) return;
    cu.snapshot = { from, at: m.at, config: m.config, items: new Map(), requests: m.requests, expectAfter: null };
  } else {
    const snap = cu.snapshot;
    // Only the chunk that continues the copy in progress counts; stale or foreign ones are dropped.
    if (snap === null || snap.from !== from || snap.at.index !== m.at.index || snap.expectAfter !== m.after) return;
  }
  const snap = cu.snapshot!;
  for (const [key, entry] of m.items) snap.items.set(key, entry);
  if (m.next !== null) {
    snap.expectAfter = m.next;
    requestCatchUp(state, fx, now, from, m.at.index, true);
    return;
  }
  install(state, fx);
}

/** Replaces the group's data with the completed snapshot, atomically (one Persist with reset). */
function install(state: GroupState, fx: Effects): void {
  const snap = state.catchUp.snapshot!;
  state.catchUp.snapshot = null;
  state.catchUp.asked = null;
  state.data.clear();
  fx.keys.clear();
  for (const [key, entry] of snap.items) {
    state.data.set(key, entry);
    fx.keys.set(key, entry);
  }
  state.requests.clear();
  fx.replaceRequests(snap.requests);
  let seq = 0;
  for (const r of snap.requests) {
    state.requests.set(r.requestId, r);
    seq = Math.max(seq, r.seq);
  }
  state.requestSeq = seq;
  state.chosen = snap.at;
  state.promised = null;
  state.accepted = null;
  // The copy's configuration is that of our new open instance; a joiner now holds the group.
  state.members = snap.config ?? (state.joining !== null ? state.members : birthConfiguration(state.config));
  state.membersStored = snap.config !== undefined || state.joining !== null;
  const joined = state.joining !== null;
  state.joining = null;
  fx.reset = true;
  fx.metaChanged = true;
  Object.assign(state.proposer, { ...newProposer(), valueCounter: state.proposer.valueCounter });
  // Writes that were applied somewhere in the copied range are answered from the records.
  const results = new Map<string, WriteResult>();
  for (const w of state.queue) {
    const r = state.requests.get(w.command.requestId);
    if (r !== undefined) results.set(w.command.requestId, r.result);
  }
  answerApplied(state, fx, results);
  settleMembership(state, fx, joined);
}
