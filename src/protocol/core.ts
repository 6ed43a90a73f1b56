// The Paxos core of one key-group replica, as a pure state machine:
//   step(state, now, input) -> Ready { persist, send, answers, wakeAt }
// No I/O, no timers, no clock, no Math.random: time comes in as `now`, randomness from a
// PRNG seeded by the config. The caller (a key-group actor, or the simulation) does the I/O.
//
// `step` updates `state` in place (it is the caller's, and copying a group's data on every
// message would dominate the cost) and returns what the caller must do. Where each rule of
// the protocol lives:
//   acceptor.ts  promises and accepts (and the fast-round guard)     fastRound.ts  who may skip Prepare
//   proposer.ts  batching, Prepare/Accept rounds, adoption, backoff  learner.ts    applying chosen values, dedupe
//   catchUp.ts   one-behind entry and chunked data catch-up          read.ts       ReadProbe reads, stale reads
//   apply.ts     what put/delete/cas/txn do to the data              quorum.ts     majorities
//   recovery.ts  a replica that lost a group learns, without voting, until voting is safe again
//   membership.ts  the group's configuration per instance, reconfiguration, joining and removed replicas

import { onAccept, onPrepare } from "./acceptor.js";
import { catchUpRetryAt, onCatchUpEntry, onCatchUpSnapshot, progressJoin, requestCatchUp, retryCatchUp, serveCatchUp } from "./catchUp.js";
import type { GroupConfig } from "./config.js";
import { emptyDurableGroup, type DurableGroup } from "./durable.js";
import { Effects } from "./effects.js";
import type { Input, Ready } from "./io.js";
import { learn, onChosen } from "./learner.js";
import { birthConfiguration, expireReconfigs, moved, onReconfigure, reconfigsWakeAt, role } from "./membership.js";
import type { Configuration } from "./ops.js";
import type { PeerMessage } from "./messages.js";
import { mayPropose, newProposer, onAccepted, onPhaseTimeout, onPromise, onReject, proposerReady, sendSpareAccepts, spareAcceptsAt, startProposal } from "./proposer.js";
import { onRead, onReadProbe, onReadProbeReply, progressReads, readsWakeAt } from "./read.js";
import { beginRecovery, onRecoveryProbeReply, progressRecovery, recoveryWakeAt } from "./recovery.js";
import { seedRng } from "./rng.js";
import { chosenIndex, type GroupState } from "./state.js";

export interface RestoreOptions {
  /**
   * The group's stored records failed their checksum: start from nothing, wipe the group's
   * records with the first persist, and recover as a non-voting learner (recovery.ts).
   */
  readonly lost?: boolean;
  /**
   * This node is to join the group (membership.ts): it holds nothing of it yet. `config` is the
   * configuration it is to join, `from` the nodes to copy the data from. The mark goes into the
   * first persist, which must be durable before the reconfiguration is proposed. A joining
   * replica asks for the data by itself, but only once stepped: the node steps it once when it
   * creates it and when it reloads one whose durable meta says `joining` (a tick will do).
   */
  readonly joining?: { readonly config: Configuration; readonly from: readonly string[] };
  /**
   * If the replica recovers (lost, or its durable meta says so): once its target is known, it
   * asks the others to decide the target instance (a no-op if nothing is proposed there)
   * instead of waiting for a write (recovery.ts). For a group nobody may write to.
   */
  readonly settleRecovery?: boolean;
}

/** A replica as its durable image left it; everything volatile starts empty. */
export function restoreReplica(config: GroupConfig, stored: DurableGroup, options: RestoreOptions = {}): GroupState {
  const durable = options.lost ? emptyDurableGroup() : stored;
  const joining = options.joining?.from ?? durable.meta.joining ?? null;
  const members = options.joining?.config ?? durable.meta.config ?? birthConfiguration(config);
  // A node holds a group it is not born in only by joining it (or having held it).
  if (!config.replicas.includes(config.self) && durable.meta.config === undefined && options.joining === undefined) {
    throw new Error(`replica ${config.self} is not in ${config.replicas.join(",")}`);
  }
  const requests = new Map();
  let requestSeq = 0;
  for (const r of [...durable.requests].sort((a, b) => a.seq - b.seq)) {
    requests.set(r.requestId, r);
    requestSeq = Math.max(requestSeq, r.seq);
  }
  // 2^20 probes per incarnation above a random 32-bit base: stays a safe integer.
  const probeBase = (seedRng(config.seed ^ 0x2545f491) >>> 0) * 2 ** 20;
  const state: GroupState = {
    config,
    members,
    // A birth after epoch 0 stores its configuration with the first persist: a node loading
    // the group later need not know which member list the group was born under (the node's
    // birth rule, actors/membersView.ts). Epoch-0 births are the founders' placement.
    membersStored: options.joining !== undefined || durable.meta.config !== undefined || (config.epoch ?? 0) > 0,
    joining,
    chosen: durable.meta.chosen,
    promised: durable.meta.promised,
    accepted: durable.meta.accepted,
    data: new Map(durable.keys),
    requests,
    requestSeq,
    proposer: newProposer(),
    queue: [],
    reads: [],
    reconfigs: [],
    catchUp: { asked: null, askedAt: 0, wanted: 0, snapshot: null, ahead: null, behind: null },
    probeBase,
    probeCounter: probeBase,
    readPeer: null,
    recovering: null,
    resetPending: options.lost === true,
    metaPending: options.joining !== undefined,
    rng: seedRng(config.seed),
  };
  if (options.lost || durable.meta.recovering) beginRecovery(state, options.settleRecovery === true);
  return state;
}

export function step(state: GroupState, now: number, input: Input): Ready {
  const fx = new Effects(state.config.self);
  if (state.resetPending) {
    // A lost group's corrupt records go before anything else is written or revealed.
    state.resetPending = false;
    fx.reset = true;
    fx.metaChanged = true;
  }
  if (state.metaPending) {
    state.metaPending = false;
    fx.metaChanged = true; // a joining replica's mark
  }
  switch (input.type) {
    case "message":
      // From any node of the cluster: a member of a newer configuration than ours is how a
      // replica behind a reconfiguration finds where the group lives now (membership.ts). Votes
      // count only from members of the instance's configuration (proposer.ts, read.ts).
      if (input.msg.group === state.config.group) deliver(state, fx, now, input.from, input.msg);
      break;
    case "propose": {
      // Already applied (a retry of an answered request): answer with the first result.
      const known = state.requests.get(input.command.requestId);
      const fresh = input.fresh === true;
      if (state.recovering !== null) {
        // Not queued here. Only a fresh id is provably never applied: a client's own id may
        // have been proposed by an earlier attempt at another replica.
        if (fresh) fx.answerError(input.call, "unavailable", "this replica is recovering the group and takes no writes; the write was not applied (try another replica)");
        else fx.answerError(input.call, "timeout", "this replica is recovering the group and takes no writes; an earlier attempt with this request id may still be applied: retry with the same request id at another replica");
      } else if (known !== undefined) fx.answerWrite(input.call, known.result);
      else if (role(state) === "removed") moved(state, fx, input.call, "write");
      // A joining replica queues the write: it proposes it once it holds the group.
      else state.queue.push({ call: input.call, command: input.command, deadline: input.deadline, fresh, sent: false });
      break;
    }
    case "read":
      onRead(state, fx, now, input.call, input.query, input.consistency, input.deadline);
      break;
    case "reconfigure":
      onReconfigure(state, fx, input.call, input.config, input.deadline);
      break;
    case "tick":
      onTick(state, fx, now);
      break;
  }
  pump(state, fx, now);
  return { persist: fx.persist(state), send: fx.send, sendNow: fx.sendNow, answers: fx.answers, answersNow: fx.answersNow, proposed: fx.proposed, wakeAt: wakeAt(state) };
}

/** Runs until quiet: self-addressed messages, a proposal that may start, reads that may finish. */
function pump(state: GroupState, fx: Effects, now: number): void {
  for (let rounds = 0; ; rounds++) {
    while (fx.inbox.length > 0) {
      const { from, msg } = fx.inbox.shift()!;
      deliver(state, fx, now, from, msg);
    }
    answerBehind(state, fx, now);
    progressRecovery(state, fx, now);
    progressJoin(state, fx, now);
    progressReads(state, fx, now);
    if (proposerReady(state, now)) startProposal(state, fx, now);
    if (fx.inbox.length === 0) return;
    if (rounds > 1000) throw new Error("core: self-messages do not settle"); // an impossible loop
  }
}

/**
 * The Prepare or Accept that found this replica behind, once it has caught up to that instance:
 * handled now, as a message the network delayed (which Paxos allows). Dropped once the
 * instance is decided here: its proposer learns that from the others, as it did before.
 */
function answerBehind(state: GroupState, fx: Effects, now: number): void {
  const b = state.catchUp.behind;
  if (b === null) return;
  const c = chosenIndex(state);
  if (b.msg.index > c + 1) return;
  state.catchUp.behind = null;
  if (b.msg.index === c + 1) deliver(state, fx, now, b.from, b.msg);
}

function deliver(state: GroupState, fx: Effects, now: number, from: string, msg: PeerMessage): void {
  switch (msg.type) {
    case "prepare":
      if (onPrepare(state, fx, now, from, msg) === "behind") {
        state.catchUp.behind = { from, msg };
        requestCatchUp(state, fx, now, from, msg.index - 1, aheadOfUs(state, from));
      }
      return;
    case "accept":
      if (onAccept(state, fx, now, from, msg) === "behind") {
        state.catchUp.behind = { from, msg };
        requestCatchUp(state, fx, now, from, msg.index - 1, aheadOfUs(state, from));
      }
      return;
    case "promise":
      onPromise(state, fx, now, from, msg);
      return;
    case "accepted": {
      const entry = onAccepted(state, from, msg);
      if (entry === null) return;
      // Chosen. Peers that accepted it have the value; the others get it in the message.
      // Every counted vote is durable (a peer's was before it left the peer; ours comes back
      // to us only once durable: effects.ts sendTo), so the value is chosen whatever this
      // replica's disk holds: the Chosen and the answers need not wait for this step's persist.
      // A reconfiguration is also told to the replicas it adds: they ask for the data at once.
      const accepts = state.proposer.accepts;
      const tell = entry.value.config === undefined ? state.members.replicas : [...new Set([...state.members.replicas, ...entry.value.config.replicas])];
      for (const to of tell) {
        if (to === state.config.self) continue;
        const value = accepts.has(to) ? null : entry.value;
        fx.tellNow(to, { type: "chosen", group: msg.group, index: entry.index, ballot: entry.ballot, valueId: entry.value.id, value });
      }
      fx.chosenByDurableVotes = true;
      learn(state, fx, now, entry);
      fx.chosenByDurableVotes = false;
      return;
    }
    case "reject":
      if (msg.chosen > chosenIndex(state)) requestCatchUp(state, fx, now, from, msg.chosen);
      onReject(state, now, msg);
      return;
    case "chosen":
      // A joiner is told this when the reconfiguration that adds it is chosen: ask at once.
      if (!onChosen(state, fx, now, msg)) {
        if (!state.members.replicas.includes(from)) state.catchUp.ahead = from;
        requestCatchUp(state, fx, now, from, msg.index, state.joining !== null || aheadOfUs(state, from));
      }
      return;
    case "catchupRequest":
      serveCatchUp(state, fx, from, msg);
      return;
    case "catchupEntry":
      onCatchUpEntry(state, fx, now, msg);
      return;
    case "catchupSnapshot":
      onCatchUpSnapshot(state, fx, now, from, msg);
      return;
    case "readProbe":
      onReadProbe(state, fx, from, msg);
      return;
    case "readProbeReply":
      if (msg.probe === state.probeBase) onRecoveryProbeReply(state, fx, now, from, msg);
      else onReadProbeReply(state, fx, now, from, msg);
      return;
  }
}

/**
 * A node outside our configuration that is ahead of us: a member of a configuration we have
 * not learned yet (membership.ts). Ask it at once, even with a request out to a replica we
 * know: those may have dropped the group since. (Not while a copy is coming in.)
 */
function aheadOfUs(state: GroupState, from: string): boolean {
  return !state.members.replicas.includes(from) && state.catchUp.snapshot === null;
}

function onTick(state: GroupState, fx: Effects, now: number): void {
  onPhaseTimeout(state, now);
  sendSpareAccepts(state, fx, now);
  expireWrites(state, fx, now);
  expireReconfigs(state, fx, now);
  retryCatchUp(state, fx, now);
}

/**
 * Writes past their deadline are answered "timeout" (outcome unknown), except a write with a
 * fresh request id that never went out in any Accept: no proposal anywhere can hold it, and
 * it leaves the queue now, so it is never applied: "unavailable". A client's own request id
 * may be in a value that an earlier attempt elsewhere put out, or that this replica adopted.
 */
function expireWrites(state: GroupState, fx: Effects, now: number): void {
  let kept = 0;
  for (const w of state.queue) {
    if (now < w.deadline) {
      state.queue[kept++] = w;
    } else if (w.sent || !w.fresh) {
      fx.answerError(w.call, "timeout", "no decision before the deadline; the write may still be applied (retry with the same request id to learn)");
    } else {
      fx.answerError(w.call, "unavailable", "no decision before the deadline (replicas unreachable or busy with competing proposals); the write was not applied");
    }
  }
  state.queue.length = kept;
}

function wakeAt(state: GroupState): number | null {
  const p = state.proposer;
  let at = readsWakeAt(state);
  const recoveryAt = recoveryWakeAt(state);
  const consider = (t: number): void => {
    at = at === null ? t : Math.min(at, t);
  };
  if (recoveryAt !== null) consider(recoveryAt);
  const reconfigsAt = reconfigsWakeAt(state);
  if (reconfigsAt !== null) consider(reconfigsAt);
  const spareAt = spareAcceptsAt(state);
  if (spareAt !== null) consider(spareAt);
  if (p.phase !== "idle") consider(p.phaseDeadline);
  // Only a proposal that may start needs its backoff's end (not while a copy is installed).
  else if ((state.queue.length > 0 || p.settle || state.reconfigs.length > 0) && mayPropose(state)) consider(p.backoffUntil);
  // (The deliberate bug "wake-ignores-write-deadlines" proves the simulation sees a late wake.)
  if (!(state.config.breaks?.has("wake-ignores-write-deadlines") ?? false)) for (const w of state.queue) consider(w.deadline);
  const catchUpAt = catchUpRetryAt(state);
  if (catchUpAt !== null) consider(catchUpAt);
  return at;
}
