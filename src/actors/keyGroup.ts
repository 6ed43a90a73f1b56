// A key-group actor: the thin, I/O-doing caller of the pure Paxos core for one group on this
// node. nact gives it a mailbox (one message at a time, async handlers awaited), which is
// what serialises the group's steps; the state is loaded from storage on the first message.
//
// The Ready pattern: a step updates the state at once, queues its Persist with the storage
// writer (group commit, one synced batch per tick across groups) and goes on to the next
// message; the step's sends and answers are released only when that persist, and every
// earlier one of this group, is durable. The mailbox never waits on the disk.

import { randomInt } from "node:crypto";
import type { NodeId } from "../protocol/ballot.js";
import type { BreakName, GroupConfig, Limits, Timing } from "../protocol/config.js";
import { restoreReplica, step } from "../protocol/core.js";
import { emptyDurableGroup } from "../protocol/durable.js";
import type { CallId, Input, Outcome, Ready } from "../protocol/io.js";
import type { PeerMessage } from "../protocol/messages.js";
import type { GroupState } from "../protocol/state.js";
import { isStorageError } from "../storage/errors.js";
import type { Storage } from "../storage/storage.js";
import type { StorageWriter } from "../storage/writer.js";

/** A group actor's messages are the core's inputs: the actor only adds the I/O around them. */
export type GroupMsg = Input;

/** What a group actor needs from its node. */
export interface GroupEnv {
  readonly nodeId: NodeId;
  readonly incarnation: string;
  readonly timing: Timing;
  readonly limits: Limits;
  /** TEST-ONLY deliberate bugs (src/actors/testHooks.ts); unset in production. */
  readonly breaks?: ReadonlySet<BreakName>;
  readonly storage: Storage;
  readonly writer: StorageWriter;
  replicasFor(group: string): readonly NodeId[];
  send(to: NodeId, msg: PeerMessage): void;
  answer(call: CallId, outcome: Outcome): void;
  /** Wakes the group later (the registry dispatches a tick). */
  dispatchTick(group: string): void;
  /** A group's stored copy failed its checksum: it is being recovered from the peers. */
  onLostGroup(group: string, error: unknown): void;
  /** The disk failed: nothing that depends on it may be revealed; the node must stop. */
  fatal(error: unknown): void;
  now(): number;
}

/** The node-side record of one group actor; it is also the actor's nact state. */
export interface GroupHandle {
  readonly group: string;
  /** Messages dispatched and not yet handled: 0 means the mailbox is empty and idle. */
  inflight: number;
  lastActive: number;
  replica: GroupState | null;
  /** Persists of this group not yet durable, and the newest one (releases wait on it). */
  pendingPersists: number;
  lastPersist: Promise<void>;
  timer: NodeJS.Timeout | null;
  timerAt: number;
}

export function newGroupHandle(group: string, now: number): GroupHandle {
  return { group, inflight: 0, lastActive: now, replica: null, pendingPersists: 0, lastPersist: Promise.resolve(), timer: null, timerAt: 0 };
}

/** Counts group loads in this process: a reloaded group gets fresh value ids (see load). */
let loadCounter = 0;

/** The actor function: nact calls it with the handle as state, one message at a time. */
export function groupActor(env: GroupEnv) {
  return async (handle: GroupHandle, msg: GroupMsg): Promise<GroupHandle> => {
    try {
      handle.replica ??= await load(env, handle.group);
      const now = env.now();
      const ready = step(handle.replica, now, msg);
      perform(env, handle, ready, now);
      return handle;
    } finally {
      handle.inflight--;
      handle.lastActive = env.now();
    }
  };
}

async function load(env: GroupEnv, group: string): Promise<GroupState> {
  let durable = emptyDurableGroup();
  let lost = false;
  try {
    durable = (await env.storage.loadGroup(group)) ?? durable;
  } catch (e) {
    // A record failed its checksum: never serve it. The group is wiped by the first persist
    // and recovered from the peers, without voting until that is safe (protocol/recovery.ts).
    if (!isStorageError(e, "STORAGE_CORRUPT")) throw e;
    env.onLostGroup(group, e);
    lost = true;
  }
  const config: GroupConfig = {
    group,
    self: env.nodeId,
    replicas: env.replicasFor(group),
    // Value ids are node/incarnation/counter; the counter restarts with each load, so each
    // load of a group (after passivation, or a crash of its actor) is its own incarnation.
    incarnation: `${env.incarnation}.${++loadCounter}`,
    seed: randomInt(0x7fffffff),
    timing: env.timing,
    limits: env.limits,
    breaks: env.breaks,
  };
  return restoreReplica(config, durable, { lost });
}

function perform(env: GroupEnv, handle: GroupHandle, ready: Ready, now: number): void {
  schedule(env, handle, ready.wakeAt, now);
  for (const a of ready.answersNow) env.answer(a.call, a.outcome);
  const nothingToRelease = ready.send.length === 0 && ready.answers.length === 0;
  if (ready.persist !== null) {
    handle.pendingPersists++;
    const durable = env.writer.persist(ready.persist).then(
      () => {
        handle.pendingPersists--;
      },
      (err: unknown) => {
        env.fatal(err);
        throw err;
      },
    );
    handle.lastPersist = durable;
    // A failed persist releases nothing: an unpersisted promise or accept must never be revealed.
    durable.then(() => release(env, ready), () => undefined);
  } else if (nothingToRelease) {
    return;
  } else if (handle.pendingPersists > 0) {
    // In order: this step may repeat a Promise/Accepted whose persist is still on its way.
    handle.lastPersist.then(() => release(env, ready), () => undefined);
  } else {
    release(env, ready);
  }
}

function release(env: GroupEnv, ready: Ready): void {
  for (const out of ready.send) env.send(out.to, out.msg);
  for (const a of ready.answers) env.answer(a.call, a.outcome);
}

/** One timer per group, at the earliest time the core asked to be woken. */
function schedule(env: GroupEnv, handle: GroupHandle, wakeAt: number | null, now: number): void {
  if (wakeAt === null) return;
  if (handle.timer !== null && handle.timerAt <= wakeAt) return;
  if (handle.timer !== null) clearTimeout(handle.timer);
  handle.timerAt = wakeAt;
  handle.timer = setTimeout(() => {
    handle.timer = null;
    env.dispatchTick(handle.group);
  }, Math.max(1, Math.ceil(wakeAt - now)));
}

/** Idle: nothing queued, nothing in flight, nothing waiting on the disk or the network. */
export function isQuiescent(handle: GroupHandle): boolean {
  const r = handle.replica;
  if (handle.inflight > 0 || handle.pendingPersists > 0) return false;
  if (r === null) return true;
  return r.queue.length === 0 && r.reads.length === 0 && r.proposer.phase === "idle" && r.catchUp.asked === null;
}
