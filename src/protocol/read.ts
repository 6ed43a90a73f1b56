// Reads without a lease. A linearizable read runs no Paxos and writes nothing:
//   1. ReadProbe the replicas; a majority (self included) replies with its chosen index and
//      whether it holds an accepted value at chosen+1. Only as many peers as a majority needs
//      are probed first (one of two in a group of three), the peer that answered last time
//      first; the others only if no majority answered within `probeSpareMs`. Which majority
//      answers does not matter to step 2, so this halves a read's messages at no risk; a dead
//      or slow first peer costs that read `probeSpareMs`, and the next read probes the one
//      that answered (DESIGN.md, "Reads probe a majority, not every replica").
//   2. target = max over the replies of (chosen + 1 if it holds an accepted value, else chosen).
//      Any write acknowledged before the read began was accepted by a majority, which shares a
//      replica with the probe majority; that replica has either chosen it or holds an accepted
//      value at its open instance, so its index is <= target.
//   3. Wait until the local chosen index reaches the target (catch up from a peer that is ahead;
//      an accepted-but-undecided instance is settled by driving it with a higher ballot after a
//      short wait), then answer from the local data.
// A stale read answers from the local replica at once.

import type { NodeId } from "./ballot.js";
import type { Effects } from "./effects.js";
import type { CallId, Consistency } from "./io.js";
import type { ReadProbe, ReadProbeReply } from "./messages.js";
import type { ReadQuery, ReadResult } from "./ops.js";
import { quorumSize } from "./quorum.js";
import { requestCatchUp } from "./catchUp.js";
import { mute } from "./recovery.js";
import { moved, role } from "./membership.js";
import { chosenIndex, type GroupState, type PendingRead } from "./state.js";

export function onRead(
  state: GroupState,
  fx: Effects,
  now: number,
  call: CallId,
  query: ReadQuery,
  consistency: Consistency,
  deadline: number,
): void {
  const skipProbe = consistency === "stale" || (state.config.breaks?.has("read-without-probe") ?? false);
  if (skipProbe && state.recovering !== null) {
    // The local copy is being rebuilt: never serve it.
    fx.answerError(call, "unavailable", "this replica is recovering the group; read through another replica or linearizably");
    return;
  }
  const where = role(state);
  if (where === "joining" || (where === "removed" && !skipProbe)) {
    // A joiner holds no copy yet; a removed replica is no longer in the majority a read needs.
    moved(state, fx, call, "read");
    return;
  }
  if (skipProbe) {
    fx.answerRead(call, readLocal(state, query));
    return;
  }
  const read: PendingRead = {
    call,
    query,
    consistency,
    deadline,
    probe: ++state.probeCounter,
    epoch: state.members.epoch,
    // A recovering replica's own standing is what it forgot: only the others count.
    replies: state.recovering === null ? new Map([[state.config.self, standing(state)]]) : new Map(),
    target: null,
    targetAt: 0,
    probeSentAt: now,
    unprobed: [],
  };
  state.reads.push(read);
  probe(state, fx, read);
  maybeSetTarget(state, fx, now, read); // a single-replica group needs no peers
}

/** Replies a read's target needs: a majority, self included when it counts. */
function repliesNeeded(state: GroupState): number {
  // The deliberate bug: one reply short of a majority (the simulation must catch it).
  return quorumSize(state.members.replicas) - (state.config.breaks?.has("read-short-quorum") === true ? 1 : 0);
}

/**
 * Probes as many peers as a majority still needs, the last read's fastest peer first and then
 * the replicas in configuration order from the one after self (so the nodes of a group spread
 * their probes); the rest wait in `read.unprobed` for `probeSpareMs`.
 */
function probe(state: GroupState, fx: Effects, read: PendingRead): void {
  const replicas = state.members.replicas;
  const self = state.config.self;
  const at = replicas.indexOf(self);
  const peers: NodeId[] = [];
  if (state.readPeer !== null && state.readPeer !== self && replicas.includes(state.readPeer)) peers.push(state.readPeer);
  for (let i = 1; i <= replicas.length; i++) {
    const r = replicas[(Math.max(at, 0) + i) % replicas.length]!;
    if (r !== self && !peers.includes(r)) peers.push(r);
  }
  const need = Math.max(0, repliesNeeded(state) - read.replies.size);
  const first = state.config.timing.probeSpareMs > 0 && need < peers.length ? peers.slice(0, need) : peers;
  read.unprobed = peers.slice(first.length);
  for (const to of first) fx.sendTo(to, { type: "readProbe", group: state.config.group, probe: read.probe });
}

function standing(state: GroupState): { chosen: number; accepted: boolean } {
  return { chosen: chosenIndex(state), accepted: state.accepted !== null };
}

export function onReadProbe(state: GroupState, fx: Effects, from: NodeId, m: ReadProbe): void {
  if (mute(state)) return; // its standing would understate what it once accepted
  const { chosen, accepted } = standing(state);
  fx.sendTo(from, { type: "readProbeReply", group: m.group, probe: m.probe, chosen, accepted });
  // A recovering replica waits for an instance we have not decided yet (recovery.ts): drive
  // our open instance, as a read does (a no-op unless a value is accepted there or queued).
  if (m.settle !== undefined && chosen < m.settle) state.proposer.settle = true;
}

export function onReadProbeReply(state: GroupState, fx: Effects, now: number, from: NodeId, m: ReadProbeReply): void {
  // After a reconfiguration, a replica behind it may not know where the group lives now (its
  // old configuration's other replicas may be gone): tell it what we chose, so it catches up
  // (also when the read is answered already: its last replies are the slow replicas').
  if (state.membersStored && state.chosen !== null && m.chosen < state.chosen.index) {
    const c = state.chosen;
    fx.sendTo(from, { type: "chosen", group: m.group, index: c.index, ballot: c.ballot, valueId: c.value.id, value: m.chosen + 1 === c.index ? c.value : null });
  }
  const read = state.reads.find((r) => r.probe === m.probe);
  if (read === undefined || !state.members.replicas.includes(from)) return;
  // A reply after the target is set changes nothing but tells that its sender is up (settleDelay).
  read.replies.set(from, { chosen: m.chosen, accepted: m.accepted });
  if (read.target === null) {
    maybeSetTarget(state, fx, now, read);
    if (read.target !== null) state.readPeer = from; // it completed the majority: ask it first next time
  }
}

function maybeSetTarget(state: GroupState, fx: Effects, now: number, read: PendingRead): void {
  if (read.replies.size < repliesNeeded(state)) return;
  read.unprobed = [];
  let target = 0;
  for (const r of read.replies.values()) target = Math.max(target, r.accepted ? r.chosen + 1 : r.chosen);
  const ahead = furthestAhead(read, chosenIndex(state));
  read.target = target;
  read.targetAt = now;
  if (ahead !== null) requestCatchUp(state, fx, now, ahead.node, ahead.chosen);
}

function furthestAhead(read: PendingRead, chosen: number): { node: NodeId; chosen: number } | null {
  let ahead: { node: NodeId; chosen: number } | null = null;
  for (const [node, r] of read.replies) if (r.chosen > chosen) ((chosen = r.chosen), (ahead = { node, chosen }));
  return ahead;
}

/** Answers every read whose target is reached; asks for what the others wait on. */
export function progressReads(state: GroupState, fx: Effects, now: number): void {
  if (state.reads.length === 0) return;
  const c = chosenIndex(state);
  const { timing } = state.config;
  const replicas = state.members.replicas;
  let kept = 0;
  for (const read of state.reads) {
    if (read.target !== null && c >= read.target && read.epoch !== state.members.epoch) {
      // The configuration changed under the read: its probe majority may have missed writes
      // the new configuration chose. Probe the new one (membership.ts, DESIGN "Reads across").
      reprobe(state, fx, now, read);
    } else if (read.target !== null && c >= read.target) {
      fx.answerRead(read.call, readLocal(state, read.query));
      continue;
    }
    if (now >= read.deadline) {
      if (read.target === null) fx.answerError(read.call, "unavailable", "no majority of replicas answered the read probe");
      else fx.answerError(read.call, "timeout", "the read could not catch up in time");
      continue;
    }
    if (read.target === null && read.unprobed.length > 0 && now - read.probeSentAt >= timing.probeSpareMs) {
      // No majority from the peers probed first: probe the others too.
      for (const to of read.unprobed) fx.sendTo(to, { type: "readProbe", group: state.config.group, probe: read.probe });
      read.unprobed = [];
    }
    if (read.target === null && now - read.probeSentAt >= timing.probeRetryMs) {
      read.probeSentAt = now;
      read.unprobed = [];
      for (const to of replicas)
        if (!read.replies.has(to)) fx.sendTo(to, { type: "readProbe", group: state.config.group, probe: read.probe });
    }
    if (read.target !== null) {
      // A replica of the probe majority has chosen more than we have: copy from it.
      const ahead = furthestAhead(read, c);
      if (ahead !== null) requestCatchUp(state, fx, now, ahead.node, ahead.chosen);
    }
    // Only the open instance is undecided; settle it if its Chosen is slow to come. Beyond it
    // (target > c + 1) the open instance is decided somewhere, and the copy is asked of the
    // replica that is ahead; if that one died right after its reply, the copy never comes
    // (issue 10: the owner of a hot group is always one ahead). Driving the open instance
    // ourselves then learns it anyway: a Prepare adopts the chosen value (a majority accepted
    // it), or a replica that learned it rejects with its chosen index and we copy from it.
    if (read.target !== null && read.target > c && now - read.targetAt >= settleAfter(state, read, c)) state.proposer.settle = true;
    state.reads[kept++] = read;
  }
  state.reads.length = kept;
}

function reprobe(state: GroupState, fx: Effects, now: number, read: PendingRead): void {
  read.probe = ++state.probeCounter;
  read.epoch = state.members.epoch;
  read.replies = state.recovering === null ? new Map([[state.config.self, standing(state)]]) : new Map();
  read.target = null;
  read.probeSentAt = now;
  probe(state, fx, read);
  maybeSetTarget(state, fx, now, read);
}

export function readLocal(state: GroupState, query: ReadQuery): ReadResult {
  const index = chosenIndex(state);
  if (query.kind === "get") return { kind: "get", index, entry: state.data.get(query.key) ?? null };
  const keys = [...state.data.keys()]
    .filter((k) => k.startsWith(query.prefix) && (query.after === undefined || k > query.after))
    .sort();
  const page = keys.slice(0, query.limit);
  const items = page.map((key) => {
    const e = state.data.get(key)!;
    return { key, value: e.value, version: e.version };
  });
  return page.length < keys.length ? { kind: "scan", index, items, next: page[page.length - 1]! } : { kind: "scan", index, items };
}

/**
 * How long a read waits before driving an undecided instance itself. Staggered by the
 * replica's rank, so when reads wait at several replicas one of them drives (the preferred
 * replica first) instead of all of them dueling. Only replicas that answered this read's
 * probe count ahead of us: a dead preferred replica never drives, and waiting out its turn
 * stalled every read of its groups (issue 10). Timing only: who drives never changes what
 * may be chosen.
 */
function settleDelay(state: GroupState, read: PendingRead): number {
  const { self } = state.config;
  const replicas = state.members.replicas;
  let rank = 0;
  for (const r of replicas) {
    if (r === self) break;
    if (read.replies.has(r)) rank++;
  }
  return state.config.timing.readResolveMs * (1 + 2 * rank);
}

/** When a read settles the open instance itself: later when a copy from a peer should come first. */
function settleAfter(state: GroupState, read: PendingRead, chosen: number): number {
  return settleDelay(state, read) * (read.target !== null && read.target > chosen + 1 ? 2 : 1);
}

/** Earliest time a pending read needs a tick. */
export function readsWakeAt(state: GroupState): number | null {
  let at: number | null = null;
  const { timing } = state.config;
  for (const r of state.reads) {
    let t = r.deadline;
    if (r.target === null) t = Math.min(t, r.probeSentAt + (r.unprobed.length > 0 ? Math.min(timing.probeSpareMs, timing.probeRetryMs) : timing.probeRetryMs));
    else if (!state.proposer.settle && r.target > chosenIndex(state)) t = Math.min(t, r.targetAt + settleAfter(state, r, chosenIndex(state)));
    at = at === null ? t : Math.min(at, t);
  }
  return at;
}
