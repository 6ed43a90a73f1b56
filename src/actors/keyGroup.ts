// A key-group actor: the thin, I/O-doing caller of the pure Paxos core for one group on this
// node. nact gives it a mailbox (one message at a time, async handlers awaited), which is
// what serialises the group's steps; the state is loaded from storage on the first message.
//
// The Ready pattern: a step updates the state at once, queues its Persist with the storage
// writer (group commit, one synced batch per tick across groups) and goes on to the next
// message; the step's sends and answers are released only when that persist, and every
// earlier one of this group, is durable. The mailbox never waits on the disk. What is released
// when, and when the group's timer fires, is done by groupDriver.ts (deciding by
// protocol/releaseQueue.ts), the same code the simulation drives; this file only plugs in the
// live I/O and the mailbox.

import { randomInt } from "node:crypto";
import type { NodeId } from "../protocol/ballot.js";
import type { BreakName, GroupConfig, Limits, Timing } from "../protocol/config.js";
import { restoreReplica, step } from "../protocol/core.js";
import { emptyDurableGroup } from "../protocol/durable.js";
import type { CallId, Input, Outcome, Ready } from "../protocol/io.js";
import type { PeerMessage } from "../protocol/messages.js";
import { role, type Role } from "../protocol/membership.js";
import type { Configuration } from "../protocol/ops.js";
import { chosenIndex } from "../protocol/state.js";
import type { GroupState } from "../protocol/state.js";
import { isStorageError } from "../storage/errors.js";
import type { Storage } from "../storage/storage.js";
import type { StorageWriter } from "../storage/writer.js";
import { GroupDriver, type GroupPorts } from "./groupDriver.js";
import type { RecoveryPlan } from "./lostDisk.js";
import type { GroupMetrics } from "./metrics.js";
import { MEMBERS_GROUP } from "./membersView.js";

/**
 * A group actor's messages are the core's inputs (the actor only adds the I/O around them), and
 * three of the node's membership mover (mover.ts): create the group here as a joiner, report
 * the group's configuration, and drop a copy this node no longer replicates.
 */
export type GroupMsg = Input | JoinMsg | InspectMsg | DropMsg;

export interface JoinMsg {
  readonly type: "join";
  readonly config: Configuration;
  readonly from: readonly NodeId[];
  /** Called once the joining mark is durable (or the group is held here already). */
  readonly done: (error: Error | null) => void;
}

/** What the mover needs to know of a group this node holds. */
export interface GroupInfo {
  readonly role: Role;
  readonly members: Configuration;
  readonly chosen: number;
}

export interface InspectMsg {
  readonly type: "inspect";
  /** null: this node holds no copy of the group. */
  readonly reply: (info: GroupInfo | null) => void;
}

export interface DropMsg {
  readonly type: "drop";
  /** Only if the copy is still removed at or past this epoch (a later change may add it back). */
  readonly epoch: number;
  readonly done: (dropped: boolean) => void;
}

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
  /**
   * The configuration a group no node holds is born in here; null: no birth (membersView.ts).
   * `initiating`: a client's call, not a peer's message, would create it.
   */
  birth(group: string, initiating: boolean): Configuration | null;
  /** This node has read a written membership view (the log `__members` exists somewhere). */
  membersLogWritten?(): boolean;
  /** The birth configuration of a stored group that carries none (born at epoch 0). */
  foundingBirth(group: string): Configuration;
  /** A call for a group this node neither holds nor may create: answered not_replica. */
  notHeld(call: CallId, group: string): void;
  /**
   * A call for a group this lost disk does not hold YET (its peers are listing what it
   * replicates): a linearizable read goes to another replica, anything else is answered `outcome`.
   */
  notLoadedYet?(call: CallId, group: string, outcome: Outcome): void;
  /** Removes every record of a group this node no longer replicates (storage). */
  dropGroup(group: string): Promise<void>;
  send(to: NodeId, msg: PeerMessage): void;
  /** A vote of this node's acceptor to its own proposer, released after its persist: back into the group. */
  loopback(group: string, msg: PeerMessage): void;
  /**
   * False in the first process ever to run on this data directory (a new node): no earlier
   * process can have sent an Accept that its disk lacks. True otherwise; then a group uses the
   * fast round only after a value this process proposed (protocol/fastRound.ts).
   */
  readonly restarted: boolean;
  answer(call: CallId, outcome: Outcome): void;
  /** Wakes the group later (the registry dispatches a tick). */
  dispatchTick(group: string): void;
  /**
   * Test-only fault injection: called before each step; a throw there is a crash of the actor
   * (tests use it to check that a crashed group reloads only after its persists settled).
   */
  readonly beforeStep?: (group: string, msg: GroupMsg) => void;
  /** A group's stored copy failed its checksum: it is being recovered from the peers. */
  onLostGroup(group: string, error: unknown): void;
  /**
   * This node lost its data directory (actors/lostDisk.ts): must this group, which has no
   * record here, start in recovery because this node may have voted in it before the loss, and
   * in which configuration (the group's current one, from the peers)? Or must it wait, not
   * loaded, until the peers have said?
   */
  recoveryPlan?(group: string): RecoveryPlan;
  /** The disk failed: nothing that depends on it may be revealed; the node must stop. */
  fatal(error: unknown): void;
  now(): number;
  /** Counts loads and what each step sends (metrics.ts); absent when metrics are off. */
  readonly metrics?: GroupMetrics;
}

/** The node-side record of one group actor; it is also the actor's nact state. */
export interface GroupHandle {
  readonly group: string;
  /** Messages dispatched and not yet handled: 0 means the mailbox is empty and idle. */
  inflight: number;
  lastActive: number;
  replica: GroupState | null;
  /** Does each step's I/O (shared with the simulation); made on the first message. */
  driver: GroupDriver | null;
  timer: NodeJS.Timeout | null;
  /**
   * Settles when the persists of this group's previous actor (one that crashed) are durable:
   * the group is loaded only after that, or the new actor would read a disk that is about to
   * change under it and could reveal a second value at a fast-round ballot, or forget a
   * promise the old actor revealed (issue 8, defect 4).
   */
  loadAfter: Promise<void> | null;
}

export function newGroupHandle(group: string, now: number): GroupHandle {
  return { group, inflight: 0, lastActive: now, replica: null, driver: null, timer: null, loadAfter: null };
}

/** Counts group loads in this process: a reloaded group gets fresh value ids (see load). */
let loadCounter = 0;

/** The actor function: nact calls it with the handle as state, one message at a time. */
export function groupActor(env: GroupEnv) {
  return async (handle: GroupHandle, msg: GroupMsg): Promise<GroupHandle> => {
    try {
      if (handle.replica === null && handle.loadAfter !== null) await handle.loadAfter;
      if (msg.type === "join") return await join(env, handle, msg);
      if (msg.type === "drop") return await drop(env, handle, msg);
      if (handle.replica === null) {
        // Asking about a group (the mover's inspect) never creates it: an empty copy born by the
        // question would count as a group to move, and one born in the old placement while a
        // change is sealing could never move (its other replicas refuse births by then).
        handle.replica = await load(env, handle.group, msg.type === "propose" || msg.type === "read" || msg.type === "reconfigure", msg.type !== "inspect");
        // A joiner reloaded (passivated or restarted before its copy came) asks for the data
        // only once stepped (core.ts RestoreOptions.joining).
        if (handle.replica?.joining != null && msg.type !== "tick") {
          const now = env.now();
          perform(env, handle, step(handle.replica, now, { type: "tick" }), now);
        }
      }
      if (msg.type === "inspect") {
        const r = handle.replica;
        msg.reply(r === null ? null : { role: role(r), members: r.members, chosen: chosenIndex(r) });
        return handle;
      }
      if (handle.replica === null) {
        // Neither held here nor to be created here: calls are answered, peer messages dropped.
        if (msg.type === "propose" || msg.type === "read" || msg.type === "reconfigure") {
          if (env.recoveryPlan?.(handle.group).kind === "wait") {
            // A lost disk whose peers have not listed their groups yet: this node may be a
            // replica that recovers the group soon, so it is not where the group is not.
            // Nothing was queued here; only a fresh request id is provably applied nowhere.
            // A linearizable read goes to another replica (apiHandler.ts notLoadedYet).
            const why = "this node lost its data directory and is asking its peers which groups it replicates; it serves this group once it has recovered it";
            if (msg.type === "propose" && msg.fresh !== true) env.answer(msg.call, { kind: "error", code: "timeout", message: `${why}; an earlier attempt with this request id may still be applied: retry with the same request id at another replica` });
            else {
              const outcome: Outcome = { kind: "error", code: "unavailable", message: `${why} (try another replica)` };
              if (env.notLoadedYet !== undefined) env.notLoadedYet(msg.call, handle.group, outcome);
              else env.answer(msg.call, outcome);
            }
          } else env.notHeld(msg.call, handle.group);
        }
        return handle;
      }
      env.beforeStep?.(handle.group, msg);
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

/**
 * Creates the group here as a joiner (DESIGN.md "Joining"): the mark is in the first persist,
 * durable before `done`, so before the reconfiguration that adds this node can be proposed.
 */
async function join(env: GroupEnv, handle: GroupHandle, msg: JoinMsg): Promise<GroupHandle> {
  try {
    if (handle.replica === null) {
      const stored = await env.storage.loadGroup(handle.group);
      if (stored !== null) {
        handle.replica = restoreReplica(groupConfig(env, handle.group, env.foundingBirth(handle.group)), stored);
      } else {
        handle.replica = restoreReplica(groupConfig(env, handle.group, msg.config), emptyDurableGroup(), { joining: { config: msg.config, from: msg.from } });
      }
    }
    const held = handle.replica;
    if (held.joining == null && role(held) === "removed" && msg.config.replicas.includes(env.nodeId) && msg.config.epoch > held.members.epoch) {
      // Added back to a group this node was removed from by an earlier change and whose copy
      // it has not dropped yet (drops wait for a change to end, and the next change may begin
      // at once). A removed copy never learns what was chosen after its removal, so it would
      // sit in the new configuration as a member that cannot vote, forever. It joins afresh,
      // as a node that had dropped its copy does: the old copy goes first (its records, then
      // the actor's state), then the joining mark, durable before `done` like any joiner's.
      // Its votes of before are forgotten with the copy, which is safe for the same reason as
      // after a drop: a joiner takes only a copy at the epoch it joins, past every index it
      // voted at (membership.ts joinerTakes).
      await handle.driver?.settled();
      await env.dropGroup(handle.group);
      if (handle.timer !== null) clearTimeout(handle.timer);
      handle.timer = null;
      handle.driver = null;
      handle.replica = restoreReplica(groupConfig(env, handle.group, msg.config), emptyDurableGroup(), { joining: { config: msg.config, from: msg.from } });
    }
    const now = env.now();
    perform(env, handle, step(handle.replica, now, { type: "tick" }), now);
    await handle.driver?.settled();
    msg.done(null);
  } catch (e) {
    msg.done(e as Error);
  }
  return handle;
}

/** Drops this node's copy of a group it was removed from (its records, then the actor's state). */
async function drop(env: GroupEnv, handle: GroupHandle, msg: DropMsg): Promise<GroupHandle> {
  handle.replica ??= await load(env, handle.group, false, false);
  const r = handle.replica;
  if (r === null || role(r) !== "removed" || r.members.epoch < msg.epoch || r.members.replicas.includes(env.nodeId)) {
    msg.done(false);
    return handle;
  }
  await handle.driver?.settled();
  // Its waiting calls were answered `moved` when it left (membership.ts); nothing else is owed.
  await env.dropGroup(handle.group);
  if (handle.timer !== null) clearTimeout(handle.timer);
  handle.timer = null;
  handle.replica = null;
  handle.driver = null;
  msg.done(true);
  return handle;
}

function groupConfig(env: GroupEnv, group: string, birth: Configuration): GroupConfig {
  return {
    group,
    self: env.nodeId,
    replicas: birth.replicas,
    epoch: birth.epoch,
    // Value ids are node/incarnation/counter; the counter restarts with each load, so each
    // load of a group (after passivation, or a crash of its actor) is its own incarnation.
    incarnation: `${env.incarnation}.${++loadCounter}`,
    // Every load in this process shares the fence: a reload within the process finds every
    // persist of the previous actor on disk (passivation waits for them, a crash's successor
    // too: groupRegistry.ts), so only an earlier PROCESS can have sent what the disk lacks.
    ...(env.restarted ? { fastRoundFence: `${env.nodeId}/${env.incarnation}.` } : {}),
    seed: randomInt(0x7fffffff),
    timing: env.timing,
    limits: env.limits,
    breaks: env.breaks,
  };
}

/** The group as stored here; null when this node holds no copy and may not create one. */
async function load(env: GroupEnv, group: string, initiating: boolean, mayBirth = true): Promise<GroupState | null> {
  let durable = emptyDurableGroup();
  let lost = false;
  const started = env.metrics === undefined ? 0 : performance.now();
  try {
    const stored = await env.storage.loadGroup(group);
    if (stored !== null) durable = stored;
    if (group !== MEMBERS_GROUP) env.metrics?.groupLoaded((performance.now() - started) / 1000);
    if (stored === null) {
      if (!mayBirth) return null;
      // No record here, but the node lost its disk: what it promised in this group is
      // forgotten, so it learns without voting until that cannot matter, exactly as for a
      // corrupt group; in the group's current configuration as the peers hold it (its members
      // are the ones whose answers bound what this node may have voted: lostDisk.ts), and not at
      // all while the peers have not said.
      const plan = env.recoveryPlan?.(group) ?? { kind: "none" };
      if (plan.kind === "wait") return null;
      if (plan.kind === "recover" && plan.config !== null) {
        if (!plan.config.replicas.includes(env.nodeId)) return null;
        return restoreReplica(groupConfig(env, group, plan.config), durable, { lost: true, settleRecovery: group === MEMBERS_GROUP });
      }
      lost = plan.kind === "recover";
      // The membership log is born once, when the cluster starts. A node that has read a written
      // view and holds no copy is not one of the log's replicas any more (the log moved and this
      // node dropped its copy): a copy born here again would be empty, and a read of it would
      // answer "not found", that is the founding view (seen: the admin op read epoch 0 stable
      // in the middle of a change). It answers not_replica instead; the admin op follows that.
      if (group === MEMBERS_GROUP && !lost && (env.membersLogWritten?.() ?? false)) return null;
      // A group born here: only in the configuration the membership view gives (membersView.ts).
      const birth = env.birth(group, initiating);
      if (birth === null || !birth.replicas.includes(env.nodeId)) return null;
      return restoreReplica(groupConfig(env, group, birth), durable, { lost, settleRecovery: group === MEMBERS_GROUP });
    }
  } catch (e) {
    // A record failed its checksum: never serve it. The group is wiped by the first persist
    // and recovered from the peers, without voting until that is safe (protocol/recovery.ts).
    if (!isStorageError(e, "STORAGE_CORRUPT")) throw e;
    env.onLostGroup(group, e);
    lost = true;
  }
  // Stored without a configuration: born at epoch 0 (a later birth stores its own). A corrupt
  // group is recovered in its founding configuration (lost disks after a reconfiguration are
  // not handled yet: DESIGN.md).
  const birth = env.foundingBirth(group);
  if (durable.meta.config === undefined && !birth.replicas.includes(env.nodeId)) return null;
  // The membership log is written only by a membership change: its recovery asks for a no-op
  // rather than wait for one (protocol/recovery.ts).
  return restoreReplica(groupConfig(env, group, birth), durable, { lost, settleRecovery: group === MEMBERS_GROUP });
}

function perform(env: GroupEnv, handle: GroupHandle, ready: Ready, now: number): void {
  // The reply-before-persist bug is a switch on the release queue; only a test sets it.
  const replyBeforePersist = handle.replica?.config.breaks?.has("reply-before-persist") ?? false;
  handle.driver ??= new GroupDriver(livePorts(env, handle), { replyBeforePersist });
  // The membership log, read by every node now and then, is not the clients' traffic.
  if (handle.group !== MEMBERS_GROUP) env.metrics?.stepped(ready, env.nodeId);
  handle.driver.perform(ready, now);
}

/** The live I/O: the storage writer (group commit), the transport, and one setTimeout. */
function livePorts(env: GroupEnv, handle: GroupHandle): GroupPorts {
  return {
    // The writer settles batches in order, so one group's persists complete in order.
    persist: (record, durable, failed, mayWait) => void env.writer.persist(record, mayWait).then(durable, failed),
    hurry: () => env.writer.hurry(),
    send: (to, msg) => (to === env.nodeId ? env.loopback(handle.group, msg) : env.send(to, msg)),
    answer: (call, outcome) => env.answer(call, outcome),
    armTimer: (at, now) => {
      if (handle.timer !== null) clearTimeout(handle.timer);
      handle.timer = setTimeout(() => {
        handle.timer = null;
        handle.driver?.timerFired();
        env.dispatchTick(handle.group);
      }, at - now);
    },
    fatal: (error) => env.fatal(error),
  };
}

/** Idle: nothing queued, nothing in flight, nothing waiting on the disk or the network. */
export function isQuiescent(handle: GroupHandle): boolean {
  const r = handle.replica;
  if (handle.inflight > 0 || (handle.driver?.pendingPersists ?? 0) > 0) return false;
  if (r === null) return true;
  return r.queue.length === 0 && r.reads.length === 0 && r.proposer.phase === "idle" && r.catchUp.asked === null;
}
