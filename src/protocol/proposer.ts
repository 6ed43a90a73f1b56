// The proposer side of one replica: turns queued client writes into the next instance's
// value (per-group batching) and drives it to a decision.
//
//   owner of the instance, own acceptor untouched:  Accept(round 0)  -> majority Accepted
//   anyone else:   Prepare(round r) -> majority Promise -> Accept(highest accepted value,
//                  or our own batch if none) -> majority Accepted
//
// Every message goes to the replica's own acceptor too, through the same rules as any peer's,
// and in the same step; so the proposer's own promise/accept is persisted with that step, and
// its own vote comes back to it (like a peer's) only once that persist is durable. A Prepare
// leaves only after our promise of its ballot is durable, so a restarted proposer never reuses
// a ballot it already used (its next round is above its own durable promise); an Accept leaves
// at once (Ready.sendNow), while our own accept is still being written, and to only as many
// peers as a majority needs; the others get it after `acceptSpareMs` without a majority. A lost
// round (Reject, or no quorum before the phase deadline) backs off with jitter and retries with
// a higher round; the writes stay queued.

import { compareBallots, FAST_ROUND, type Ballot, type NodeId } from "./ballot.js";
import type { Effects } from "./effects.js";
import { mayUseFastRound } from "./fastRound.js";
import { isMember, nextReconfig, reconfigValue } from "./membership.js";
import type { Accept, AcceptedValue, Accepted, ChosenEntry, Promise_, Reject } from "./messages.js";
import { commandBytes, valueBytes, type Value } from "./ops.js";
import { isQuorum, quorumSize } from "./quorum.js";
import { nextRandom } from "./rng.js";
import { chosenIndex, type GroupState, type Proposer } from "./state.js";

export function newProposer(): Proposer {
  return {
    phase: "idle",
    index: 0,
    ballot: null,
    promises: new Map(),
    accepts: new Set(),
    value: null,
    phaseDeadline: 0,
    backoffUntil: 0,
    attempts: 0,
    maxRoundSeen: 0,
    valueCounter: 0,
    settle: false,
    unsent: [],
    spareAt: 0,
    pendingAccept: null,
    acceptPeer: null,
  };
}

/** Is there a reason to drive the open instance, and may we now? */
export function proposerReady(state: GroupState, now: number): boolean {
  const p = state.proposer;
  if (p.phase !== "idle" || now < p.backoffUntil || !mayPropose(state)) return false;
  return p.settle || state.queue.length > 0 || nextReconfig(state) !== null;
}

/**
 * Not while installing a peer's data (wait for it), recovering, joining (no data yet) or
 * removed (membership.ts): only a voter of the open instance proposes.
 */
export function mayPropose(state: GroupState): boolean {
  return state.catchUp.snapshot === null && state.recovering === null && isMember(state);
}

export function startProposal(state: GroupState, fx: Effects, now: number): void {
  const p = state.proposer;
  const { self, timing } = state.config;
  const replicas = state.members.replicas;
  p.index = chosenIndex(state) + 1;
  p.promises.clear();
  p.accepts.clear();
  p.phaseDeadline = now + timing.phaseTimeoutMs;
  if (mayUseFastRound(state)) {
    p.ballot = { round: FAST_ROUND, node: self };
    sendAccept(state, fx, now, buildValue(state));
    return;
  }
  const round = Math.max(p.maxRoundSeen, state.promised?.round ?? 0, state.accepted?.ballot.round ?? 0) + 1;
  p.ballot = { round, node: self };
  p.phase = "preparing";
  p.value = null;
  fx.broadcast(replicas, { type: "prepare", group: state.config.group, index: p.index, ballot: p.ballot, prev: inlinePrev(state) });
}

/**
 * The next value: the oldest queued writes, or a no-op to settle the instance. A write stays
 * queued until it is applied, so one whose value lost goes again in the next attempt.
 */
function buildValue(state: GroupState): Value {
  const p = state.proposer;
  const { self, incarnation, limits } = state.config;
  // A reconfiguration goes alone, before the writes (they follow in the new configuration).
  const reconfig = nextReconfig(state);
  if (reconfig !== null) return reconfigValue(`${self}/${incarnation}/${++p.valueCounter}`, reconfig);
  const commands = [];
  let bytes = 0;
  for (const w of state.queue) {
    const size = commandBytes(w.command);
    if (commands.length > 0 && (commands.length >= limits.maxBatchCommands || bytes + size > limits.maxBatchBytes)) break;
    commands.push(w.command);
    bytes += size;
    w.sent = true;
  }
  return { id: `${self}/${incarnation}/${++p.valueCounter}`, commands };
}

/**
 * Queued writes carried by `value` go out now: their outcome is unknown from here on. Our own
 * batch marks its writes in buildValue; an ADOPTED value may carry queued writes too (an
 * earlier attempt with the same request id, proposed elsewhere).
 */
function markSent(state: GroupState, value: Value): void {
  if (state.queue.length === 0 || value.commands.length === 0) return;
  const ids = new Set(value.commands.map((c) => c.requestId));
  for (const w of state.queue) if (ids.has(w.command.requestId)) w.sent = true;
}

/** The previous chosen entry, when small enough to ride along (see Limits.prevInlineBytes). */
function inlinePrev(state: GroupState): ChosenEntry | null {
  const prev = state.chosen;
  return prev !== null && valueBytes(prev.value) <= state.config.limits.prevInlineBytes ? prev : null;
}

function sendAccept(state: GroupState, fx: Effects, now: number, value: Value): void {
  const p = state.proposer;
  p.phase = "accepting";
  p.value = value;
  p.accepts.clear();
  markSent(state, value);
  // To the peers at once, before our own accept (taken by our acceptor in this step) is durable:
  // an Accept is a proposal, not a vote. Safe because our own vote counts only once durable
  // (effects.ts sendTo), this ballot is ours alone (round >= 1: our Prepare of it left only
  // after our promise of it was durable, so a restart picks a higher round; round 0: a
  // restarted process never reuses it where it may have sent one, fastRound.ts).
  const accept: Accept = { type: "accept", group: state.config.group, index: p.index, ballot: p.ballot!, value, prev: inlinePrev(state) };
  // Thrifty: our own acceptor and only as many peers as a majority needs get it now (one of
  // two in a group of three), the peer that accepted first last time first; the others at
  // `spareAt` unless a majority accepted by then. Any majority decides the same way, so this
  // changes which replicas vote, never what may be chosen; a dead or slow first peer costs
  // the spare delay (DESIGN.md, "An Accept goes to a majority first"). A reconfiguration goes
  // to every replica at once: it is rare, and the replicas it removes should hear of it.
  const replicas = state.members.replicas;
  const self = state.config.self;
  const peers = peerOrder(state, replicas, self);
  const spareMs = Math.min(state.config.timing.acceptSpareMs, Math.floor(state.config.timing.phaseTimeoutMs / 2));
  const need = acceptsNeeded(state) - (replicas.includes(self) ? 1 : 0);
  const first = spareMs > 0 && value.config === undefined && need < peers.length ? peers.slice(0, Math.max(need, 0)) : peers;
  fx.propose(replicas.includes(self) ? [self, ...first] : first, accept);
  p.unsent = peers.slice(first.length);
  p.pendingAccept = p.unsent.length > 0 ? accept : null;
  p.spareAt = now + spareMs;
}

/** The peers of `replicas` in the order an Accept goes to them: acceptPeer first, then from the one after self. */
function peerOrder(state: GroupState, replicas: readonly NodeId[], self: NodeId): NodeId[] {
  const peers: NodeId[] = [];
  const preferred = state.proposer.acceptPeer;
  if (preferred !== null && preferred !== self && replicas.includes(preferred)) peers.push(preferred);
  const at = Math.max(replicas.indexOf(self), 0);
  for (let i = 1; i <= replicas.length; i++) {
    const r = replicas[(at + i) % replicas.length]!;
    if (r !== self && !peers.includes(r)) peers.push(r);
  }
  return peers;
}

/** Accepts that choose a value: a majority (one fewer under the deliberate bug). */
function acceptsNeeded(state: GroupState): number {
  return quorumSize(state.members.replicas) - (state.config.breaks?.has("accept-short-quorum") === true ? 1 : 0);
}

/** No majority accepted by `spareAt`: the Accept goes to the peers that did not get it yet. */
export function sendSpareAccepts(state: GroupState, fx: Effects, now: number): void {
  const p = state.proposer;
  if (p.phase !== "accepting" || p.pendingAccept === null || p.unsent.length === 0 || now < p.spareAt) return;
  fx.proposeTo(p.unsent, p.pendingAccept);
  p.unsent = [];
  p.pendingAccept = null;
}

/** When the proposer next needs a tick for its spare Accepts, or null. */
export function spareAcceptsAt(state: GroupState): number | null {
  const p = state.proposer;
  return p.phase === "accepting" && p.pendingAccept !== null && p.unsent.length > 0 ? p.spareAt : null;
}

export function onPromise(state: GroupState, fx: Effects, now: number, from: string, m: Promise_): void {
  const p = state.proposer;
  if (m.accepted !== null) p.maxRoundSeen = Math.max(p.maxRoundSeen, m.accepted.ballot.round);
  if (p.phase !== "preparing" || m.index !== p.index || compareBallots(m.ballot, p.ballot) !== 0) return;
  // Only voters of this instance's configuration count (membership.ts).
  if (!state.members.replicas.includes(from)) return;
  p.promises.set(from, m.accepted);
  if (!isQuorum(p.promises.size, state.members.replicas)) return;
  // Paxos' core rule: a majority promised not to accept below our ballot, and if any of them
  // accepted a value at this instance, the one with the highest ballot may already be chosen:
  // we must propose it, not ours. Our queued writes wait for the next instance.
  const adopted = highestAccepted(p.promises.values());
  p.phaseDeadline = now + state.config.timing.phaseTimeoutMs;
  sendAccept(state, fx, now, adopted !== null ? adopted.value : buildValue(state));
}

function highestAccepted(accepted: Iterable<AcceptedValue | null>): AcceptedValue | null {
  let best: AcceptedValue | null = null;
  for (const a of accepted) if (a !== null && (best === null || compareBallots(a.ballot, best.ballot) > 0)) best = a;
  return best;
}

/** Returns the chosen entry when this Accepted completed a majority. */
export function onAccepted(state: GroupState, from: string, m: Accepted): ChosenEntry | null {
  const p = state.proposer;
  if (p.phase !== "accepting" || m.index !== p.index || compareBallots(m.ballot, p.ballot) !== 0) return null;
  if (!state.members.replicas.includes(from)) return null;
  // The first peer to accept is the one the next Accept goes to first.
  const self = state.config.self;
  if (from !== self && (p.accepts.size === 0 || (p.accepts.size === 1 && p.accepts.has(self)))) p.acceptPeer = from;
  p.accepts.add(from);
  if (p.accepts.size < acceptsNeeded(state)) return null;
  p.unsent = [];
  p.pendingAccept = null;
  return { index: p.index, ballot: p.ballot!, value: p.value! };
}

export function onReject(state: GroupState, now: number, m: Reject): void {
  const p = state.proposer;
  if (m.promised !== null && m.index === chosenIndex(state) + 1) p.maxRoundSeen = Math.max(p.maxRoundSeen, m.promised.round);
  if (p.phase === "idle" || m.index !== p.index || compareBallots(m.ballot, p.ballot) !== 0) return;
  // One refusal means a higher ballot is in play: retrying at once would only duel with it.
  abandon(state, now);
}

/** Gives up the current round; queued writes stay and are retried after a jittered backoff. */
export function abandon(state: GroupState, now: number): void {
  const p = state.proposer;
  p.phase = "idle";
  p.value = null;
  p.unsent = [];
  p.pendingAccept = null;
  p.attempts++;
  p.backoffUntil = now + backoff(state, p.attempts);
}

/** Jittered exponential backoff in [b, 2b), b = base * 2^(attempts-1), capped. */
function backoff(state: GroupState, attempts: number): number {
  const { backoffBaseMs, backoffMaxMs } = state.config.timing;
  const b = Math.min(backoffMaxMs, backoffBaseMs * 2 ** Math.min(attempts - 1, 16));
  const [rng, r] = nextRandom(state.rng);
  state.rng = rng;
  return b + Math.floor(r * b);
}

/**
 * Our acceptor just promised a higher ballot of another proposer at the open instance: that
 * proposer is driving it (and will adopt any accepted value). Competing would only preempt
 * it and start a duel, so we stand back for about `yieldMs` (at most a phase timeout): longer
 * than its next round trip, so a live one finishes first; no longer, because it may have died
 * right after its Prepare and then everyone waits out the stand-back (issue 10: up to 750 ms
 * with a phase timeout). Usually its Chosen comes first, and learning it ends the wait
 * (onInstanceDecided). Liveness only: how long we wait never affects what may be chosen.
 */
export function yieldToHigherBallot(state: GroupState, now: number, ballot: Ballot): void {
  const p = state.proposer;
  if (ballot.node === state.config.self) return;
  if (p.phase !== "idle" && compareBallots(p.ballot, ballot) < 0) abandon(state, now);
  const [rng, r] = nextRandom(state.rng);
  state.rng = rng;
  const { phaseTimeoutMs, yieldMs } = state.config.timing;
  p.backoffUntil = Math.max(p.backoffUntil, now + Math.floor(Math.min(phaseTimeoutMs, yieldMs) * (0.5 + r)));
}

/** The learner decided the open instance (by our value or another). */
export function onInstanceDecided(state: GroupState, now: number, entry: ChosenEntry): void {
  const p = state.proposer;
  const ours = p.value !== null && p.value.id === entry.value.id;
  const wasDriving = p.phase !== "idle";
  p.phase = "idle";
  p.value = null;
  p.unsent = [];
  p.pendingAccept = null;
  p.ballot = null;
  p.maxRoundSeen = 0;
  p.settle = false;
  if (ours) {
    p.attempts = 0;
    p.backoffUntil = 0;
  } else if (wasDriving || state.queue.length > 0) {
    // Someone else owns the next instance's fast round: give it a head start instead of
    // preempting it with a Prepare right away.
    p.attempts = Math.max(p.attempts, 1);
    p.backoffUntil = now + backoff(state, 1);
  }
}

export function onPhaseTimeout(state: GroupState, now: number): void {
  const p = state.proposer;
  if (p.phase !== "idle" && now >= p.phaseDeadline) abandon(state, now);
}

export type { Ballot };
