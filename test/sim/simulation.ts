// One seed of the deterministic simulation: N replicas of the REAL Paxos core (src/protocol)
// for 1-4 key-groups, each driven by the live actor's GroupDriver (src/actors/groupDriver.ts:
// persist before release, the timer at wakeAt) with simulated ports: a virtual clock and one
// event queue, a simulated network (drops, duplicates, delays, partitions) and simulated disks
// (random write latency; a crash loses every write not yet completed), with concurrent
// clients. Every step is checked (agreement, convergence, persist-before-send, fast-round, and
// that wakeAt names every time the core needs a tick); the history is checked at seed end
// (durability, linearizability). Everything random comes from the seed, so a failing seed
// replays exactly (see cli.ts).
//
// The run has three phases, like a FoundationDB test (a correctness workload under fault
// workloads, then quiescence):
//   1. faults: crashes and restarts, partitions, drops and duplicates, while clients work;
//   2. heal: the network is healed, crashed nodes restart, no more faults; clients finish;
//   3. final reads: a linearizable get of every key at every replica, which forces every
//      replica to catch up, then the end-of-seed checks.

import { GroupDriver, type GroupPorts } from "../../src/actors/groupDriver.js";
import type { NodeId } from "../../src/protocol/ballot.js";
import type { BreakName, GroupConfig, Limits, Timing } from "../../src/protocol/config.js";
import { DEFAULT_LIMITS, DEFAULT_TIMING } from "../../src/protocol/config.js";
import { restoreReplica, step } from "../../src/protocol/core.js";
import type { DurableGroup, Persist } from "../../src/protocol/durable.js";
import { applyPersist, emptyDurableGroup } from "../../src/protocol/durable.js";
import type { CallId, ErrorCode, Input, Outcome, Ready } from "../../src/protocol/io.js";
import type { PeerMessage } from "../../src/protocol/messages.js";
import type { Configuration, ReadResult, WriteResult } from "../../src/protocol/ops.js";
import { quorumSize } from "../../src/protocol/quorum.js";
import type { GroupState } from "../../src/protocol/state.js";
import { AgreementChecker } from "./checkers/agreement.js";
import { ConvergenceChecker } from "./checkers/convergence.js";
import { FastRoundChecker } from "./checkers/fastRound.js";
import { checkNoAcknowledgedWriteLost } from "./checkers/durability.js";
import { CheckFailure, fail, type CheckerName } from "./checkers/failure.js";
import { checkLinearizability } from "./checkers/linearizability.js";
import { checkPersistBeforeSend } from "./checkers/persistBeforeSend.js";
import { DurableMirror } from "./checkers/durableMirror.js";
import { EventQueue } from "./eventQueue.js";
import type { History, ReadRecord, WriteAttempt, WriteRecord } from "./history.js";
import { emptyHistory } from "./history.js";
import { SimNetwork, randomNetworkProfile } from "./network.js";
import { Prng, seedStreams } from "./prng.js";
import { describeMessage, describeOutcome, describeQuery } from "./trace.js";
import type { ClientOp, ClientPlan, GroupPlan } from "./workload.js";
import { ClientKnowledge, nextOp, pickReplica, planClients, planGroups } from "./workload.js";
import { planChange, planMembership, type MembershipPlan } from "./membership.js";

export interface SeedOptions {
  readonly seed: number;
  readonly replicas: 3 | 5;
  readonly breaks?: ReadonlySet<BreakName>;
  /** Receives one line per event, message and step when set (--verbose). */
  readonly trace?: (line: string) => void;
  /** Membership changes in every seed, 3 to 6 per group (`--membership-stress`). */
  readonly membershipStress?: boolean;
  /** Sees every step's state and Ready (for debugging a seed; must not change anything). */
  readonly inspect?: (node: NodeId, state: GroupState, input: Input, ready: Ready, now: number) => void;
}

export interface SeedStats {
  events: number;
  steps: number;
  messages: number;
  crashes: number;
  disksLost: number;
  partitions: number;
  writes: number;
  reads: number;
  virtualMs: number;
  /** How calls ended and what happened, by name ("write ok", "read timeout", "catchupSnapshot", ...). */
  counts: Record<string, number>;
  /**
   * Oddities that break no checked rule but deserve a look, by kind, with the first example:
   * e.g. the core asking, right after a tick, for a tick in the past (a live actor that arms a
   * timer at wakeAt would spin until the condition clears).
   */
  notes: Record<string, string>;
}

export interface SeedResult {
  readonly seed: number;
  readonly replicas: 3 | 5;
  readonly failure: { readonly checker: CheckerName; readonly message: string } | null;
  readonly stats: SeedStats;
}

/** Per-seed knobs, drawn from the seed so that seeds cover calm and rough runs alike. */
interface FaultPlan {
  readonly faultPhaseMs: number;
  /** Gap between crashes (cluster-wide); null: no crashes this seed. */
  readonly crashGapMs: readonly [number, number] | null;
  /** Chance that a crash also loses one group's disk image. */
  readonly loseDiskChance: number;
  readonly downMs: readonly [number, number];
  /** Gap between partitions; null: none this seed. */
  readonly partitionGapMs: readonly [number, number] | null;
  readonly partitionMs: readonly [number, number];
  readonly diskMs: readonly [number, number];
}

/** Client <-> replica hop (not subject to network faults: a crashed replica loses the call). */
const CLIENT_HOP_MS: readonly [number, number] = [1, 3];
/** A client that heard nothing this long after its deadline assumes the replica died. */
const CLIENT_GIVE_UP_MS = 300;
const MAX_WRITE_ATTEMPTS = 3;
/** Writes sent without a client request id (the replica makes a fresh one; never retried). */
const FRESH_WRITE_RATE = 0.2;
/** Ops that resend an old write's request id instead of a new op. */
const LATE_RETRY_RATE = 0.08;
/** Writes sent twice to one replica without waiting (see issueWrite). */
const HEDGE_RATE = 0.06;
/** Write attempts whose client gives up long before the deadline (and may retry at the same replica). */
const IMPATIENT_RATE = 0.1;
const FINAL_READ_TRIES = 3;
/** After the heal, everything must settle within this (virtual) time: a liveness bound. */
const SETTLE_MS = 60_000;
const MAX_EVENTS = 5_000_000;

type SimEvent =
  | { readonly kind: "deliver"; readonly from: NodeId; readonly to: NodeId; readonly msg: PeerMessage }
  /** A replica's vote to its own proposer (in-process, lossless; gone with a crash). */
  | { readonly kind: "loopback"; readonly node: NodeId; readonly epoch: number; readonly msg: PeerMessage }
  | { readonly kind: "diskDone"; readonly node: NodeId; readonly group: string; readonly epoch: number; readonly replica: Replica }
  | { readonly kind: "tick"; readonly node: NodeId; readonly group: string; readonly epoch: number; readonly gen: number }
  | { readonly kind: "request"; readonly call: Call }
  | { readonly kind: "answer"; readonly call: Call; readonly outcome: Outcome }
  | { readonly kind: "giveUp"; readonly call: Call }
  | { readonly kind: "hedge"; readonly client: ClientRun; readonly record: WriteRecord; readonly node: NodeId }
  | { readonly kind: "clientNext"; readonly client: ClientRun }
  | { readonly kind: "crash" }
  | { readonly kind: "restart"; readonly node: NodeId; readonly epoch: number }
  | { readonly kind: "partition" }
  | { readonly kind: "partitionHeal"; readonly generation: number }
  | { readonly kind: "heal" }
  | { readonly kind: "membershipStart"; readonly group: string }
  | { readonly kind: "reconfigRequest"; readonly node: NodeId; readonly group: string; readonly call: CallId; readonly config: Configuration; readonly deadline: number }
  | { readonly kind: "reconfigAnswer"; readonly call: CallId; readonly outcome: Outcome }
  | { readonly kind: "reconfigGiveUp"; readonly call: CallId }
  | { readonly kind: "dropCheck"; readonly group: string }
  | { readonly kind: "settleCheck" };

/** One group's membership changes as the simulation (the operator) drives them. */
interface GroupMembershipRun {
  /** The configuration of the last change that completed (what clients route by). */
  current: Configuration;
  /** The change under way: its target, the nodes it adds and removes. */
  pending: { readonly config: Configuration; readonly joiners: readonly NodeId[]; readonly removed: readonly NodeId[]; readonly kind: string } | null;
  /** Start times of changes not yet started. */
  readonly starts: number[];
  /** Removed replicas whose copy is dropped once a quorum of `config` holds the data at `index`. */
  readonly drops: { readonly node: NodeId; readonly index: number; readonly config: Configuration }[];
  dropCheckScheduled: boolean;
}

/** A persist on its way to the simulated disk (one replica's writes complete in order). */
interface DiskWrite {
  readonly persist: Persist;
  /** Lowered when a record that waits (`waiting`) is taken into an earlier commit. */
  doneAt: number;
  /** The driver's callback: releases what waited on this persist. */
  readonly durable: () => void;
  /**
   * Written with mayWait and no commit has taken it yet: it lands with the next persist of the
   * replica that does not wait, at a hurry, or on its own a little later (storage/writer.ts).
   */
  waiting: boolean;
  /** The break `learn-without-sync`: reported durable at once, and lost by a crash soon after. */
  readonly unsynced: boolean;
}

/**
 * The break `learn-without-sync`: a record written without sync, applied to the disk image,
 * but lost by a crash until `lostUntil` while the synced records after it (`after`) survive,
 * as LevelDB loses the unsynced tail of a log it rotated away from.
 */
interface UnsyncedWrite {
  readonly group: string;
  readonly before: DurableGroup;
  readonly after: Persist[];
  readonly lostUntil: number;
}

/**
 * One replica of one group on one node: the core's state, the driver that does its steps' I/O
 * (the live actor's GroupDriver, with simulated ports) and its disk queue; all volatile.
 */
interface Replica {
  readonly state: GroupState;
  readonly driver: GroupDriver;
  readonly diskQueue: DiskWrite[];
  tick: { at: number; gen: number } | null;
  /** The chosen index last shown to the convergence checker. */
  convergedAt: number;
  /** Its disk once every queued persist lands: checked against the state after every step. */
  readonly mirror: DurableMirror;
}

interface SimNode {
  readonly id: NodeId;
  up: boolean;
  /** Bumped by every crash: events addressed to an older epoch are void. */
  epoch: number;
  restarts: number;
  replicas: Map<string, Replica>;
  /** What survives a crash: one durable image per group. */
  readonly disks: Map<string, DurableGroup>;
  /** Groups whose disk image this crash lost (a failed checksum): they restart recovering. */
  readonly lost: Set<string>;
  /** The break `learn-without-sync` only: unsynced records a crash would lose. */
  unsynced: UnsyncedWrite[];
}

interface ClientRun {
  readonly plan: ClientPlan;
  readonly knowledge: ClientKnowledge;
  opsLeft: number;
  done: boolean;
}

interface Call {
  readonly id: CallId;
  readonly node: NodeId;
  readonly group: string;
  readonly input: Input;
  /** null for the final reads, which belong to no client. */
  readonly client: ClientRun | null;
  readonly write: WriteRecord | null;
  readonly attempt: WriteAttempt | null;
  readonly read: ReadRecord | null;
  /** The final read's try number. */
  readonly finalTry: number;
  /** A second copy of a write sent without waiting for the first: its end drives nothing. */
  readonly hedge?: boolean;
  done: boolean;
}

export function runSeed(options: SeedOptions): SeedResult {
  const sim = new Simulation(options);
  let failure: SeedResult["failure"] = null;
  try {
    sim.run();
  } catch (e) {
    if (e instanceof CheckFailure) failure = { checker: e.checker, message: e.message };
    else failure = { checker: "core-exception", message: e instanceof Error ? (e.stack ?? e.message) : String(e) };
  }
  sim.stats.virtualMs = sim.queue.now;
  return { seed: options.seed, replicas: options.replicas, failure, stats: sim.stats };
}

class Simulation {
  readonly queue = new EventQueue<SimEvent>();
  readonly stats: SeedStats = { events: 0, steps: 0, messages: 0, crashes: 0, disksLost: 0, partitions: 0, writes: 0, reads: 0, virtualMs: 0, counts: {}, notes: {} };
  private readonly streams: ReturnType<typeof seedStreams>;
  /** The groups' birth configuration (every node when no membership changes run). */
  private readonly nodeIds: NodeId[];
  /** Every node: the birth configuration and the spares that groups may move to. */
  private readonly allNodes: NodeId[];
  private readonly membership: MembershipPlan | null;
  private readonly runs = new Map<string, GroupMembershipRun>();
  /** Reconfigure calls out: group and epoch, done once answered or given up on. */
  private readonly reconfigCalls = new Map<CallId, { readonly group: string; readonly epoch: number; done: boolean }>();
  private settleCheckScheduled = false;
  private readonly nodes = new Map<NodeId, SimNode>();
  private readonly network: SimNetwork;
  private readonly groups: GroupPlan[];
  private readonly clients: ClientRun[];
  private readonly faults: FaultPlan;
  private readonly tuning: { timing: Timing; limits: Limits };
  /** The storage writer's mayWaitMs for this seed; 0: every persist starts a commit (the old way). */
  private readonly mayWaitMs: number;
  private readonly breaks: ReadonlySet<BreakName>;
  private readonly replyBeforePersist: boolean;
  private readonly trace: ((line: string) => void) | undefined;

  private readonly history: History = emptyHistory();
  /** Client calls not yet answered or given up on, by the id the core echoes. */
  private readonly calls = new Map<CallId, Call>();
  /** Calls given up on: a replica may still answer them (the answer is dropped). */
  private readonly abandoned = new Set<CallId>();
  /** Hedged copies scheduled and not yet sent. */
  private hedgesScheduled = 0;
  private readonly agreement = new AgreementChecker();
  private readonly convergence = new ConvergenceChecker();
  private readonly fastRound = new FastRoundChecker();

  private faultsOn = true;
  private healedAt: number | null = null;
  private partitionGeneration = 0;
  private nextCall = 1;
  private nextRequest = 1;
  private finalReadsPending = -1;
  private finished = false;

  constructor(private readonly options: SeedOptions) {
    this.streams = seedStreams(options.seed);
    this.breaks = options.breaks ?? new Set();
    this.replyBeforePersist = this.breaks.has("reply-before-persist");
    this.trace = options.trace;
    this.nodeIds = Array.from({ length: options.replicas }, (_, i) => `n${i + 1}`);
    this.network = new SimNetwork(this.streams.network, randomNetworkProfile(this.streams.faults));
    const planned = planFaults(this.streams.faults);
    // A targeted bug gets its targeted fault (as FoundationDB pairs a workload with its faults):
    // a replica voting while it recovers only matters where disks are lost.
    this.faults = this.breaks.has("vote-while-recovering") && planned.crashGapMs !== null
      ? { ...planned, loseDiskChance: Math.max(planned.loseDiskChance, 0.5) }
      : planned;
    this.tuning = planTuning(this.streams.tuning);
    // Drawn after the rest of the tuning, so a seed's other choices stay what they were.
    this.mayWaitMs = this.breaks.has("learn-without-sync") ? 10 : this.streams.tuning.pick([0, 1, 10, 50]);
    this.groups = planGroups(this.streams.workload, this.nodeIds);
    const plans = planClients(this.streams.workload, this.groups, this.nodeIds);
    this.membership = planMembership(this.streams.membership, this.groups.map((g) => g.group), options.replicas, this.faults.faultPhaseMs, this.breaks, options.membershipStress === true);
    this.allNodes = [...this.nodeIds];
    for (let i = 0; i < (this.membership?.spares ?? 0); i++) this.allNodes.push(`n${options.replicas + i + 1}`);
    for (const [group, starts] of this.membership?.starts ?? []) {
      this.runs.set(group, { current: { epoch: 0, replicas: this.nodeIds }, pending: null, starts: [...starts], drops: [], dropCheckScheduled: false });
    }
    const totalOps = this.streams.workload.int(30, 80);
    this.clients = plans.map((plan, i) => ({
      plan,
      knowledge: new ClientKnowledge(plan.id),
      opsLeft: Math.floor(totalOps / plans.length) + (i < totalOps % plans.length ? 1 : 0),
      done: false,
    }));
  }

  run(): void {
    this.log(() => this.describeSetup());
    for (const id of this.allNodes) {
      const node: SimNode = { id, up: false, epoch: 0, restarts: -1, replicas: new Map(), disks: new Map(), lost: new Set(), unsynced: [] };
      // Spares hold nothing until a group moves to them.
      if (this.nodeIds.includes(id)) for (const g of this.groups) node.disks.set(g.group, emptyDurableGroup());
      this.nodes.set(id, node);
      this.start(node);
    }
    for (const client of this.clients) this.queue.schedule(this.streams.workload.int(0, 50), { kind: "clientNext", client });
    if (this.faults.crashGapMs !== null) this.queue.schedule(this.streams.faults.int(...this.faults.crashGapMs), { kind: "crash" });
    if (this.faults.partitionGapMs !== null) {
      this.queue.schedule(this.streams.faults.int(...this.faults.partitionGapMs), { kind: "partition" });
    }
    this.queue.schedule(this.faults.faultPhaseMs, { kind: "heal" });
    for (const [group, run] of this.runs) for (const at of run.starts) this.queue.schedule(at, { kind: "membershipStart", group });

    while (!this.finished) {
      const next = this.queue.pop();
      if (next === null) fail("liveness", `t=${this.queue.now}: nothing left to do, but ${this.waitingFor()}`);
      if (++this.stats.events > MAX_EVENTS) fail("liveness", `more than ${MAX_EVENTS} events; ${this.waitingFor()}`);
      if (this.healedAt !== null && this.queue.now > this.healedAt + SETTLE_MS) {
        fail("liveness", `not settled ${SETTLE_MS} ms after the heal: ${this.waitingFor()}`);
      }
      this.handle(next.event);
    }
    this.endOfSeedChecks();
  }

  // ---- events -------------------------------------------------------------------------------

  private handle(e: SimEvent): void {
    switch (e.kind) {
      case "deliver":
        return this.deliver(e.from, e.to, e.msg);
      case "loopback": {
        const node = this.nodes.get(e.node)!;
        if (!node.up || node.epoch !== e.epoch) return;
        // A copy dropped after a membership change between the persist and its loopback: the
        // vote goes nowhere, as at a node, whose actor drops a message for a group it no longer holds.
        if (!node.replicas.has(e.msg.group)) return;
        return this.step(node, e.msg.group, { type: "message", from: e.node, msg: e.msg }, `${e.node}->self ${describeMessage(e.msg)}`);
      }
      case "diskDone":
        return this.diskDone(e.node, e.group, e.epoch, e.replica);
      case "tick": {
        const node = this.nodes.get(e.node)!;
        if (!node.up || node.epoch !== e.epoch) return;
        const replica = node.replicas.get(e.group);
        // (A copy dropped after a membership change hears no more ticks.)
        if (replica === undefined || replica.tick === null || replica.tick.gen !== e.gen) return;
        replica.tick = null;
        replica.driver.timerFired();
        return this.step(node, e.group, { type: "tick" }, "tick");
      }
      case "request":
        return this.request(e.call);
      case "answer":
        return this.answer(e.call, e.outcome);
      case "giveUp":
        if (e.call.done) return;
        this.log(() => `client ${e.call.client?.plan.id ?? "final"} gives up on call ${e.call.id} at ${e.call.node}`);
        return this.complete(e.call, { kind: "lost" });
      case "clientNext":
        return this.clientNext(e.client);
      case "hedge":
        this.hedgesScheduled--;
        this.count("write hedge");
        return this.issueWrite(e.client, e.record, { same: e.node }, true);
      case "crash":
        return this.crashSomeNode();
      case "restart": {
        const node = this.nodes.get(e.node)!;
        if (node.up || node.epoch !== e.epoch) return;
        return this.start(node);
      }
      case "partition":
        return this.partition();
      case "partitionHeal":
        if (e.generation !== this.partitionGeneration || !this.faultsOn) return;
        this.network.heal();
        this.log(() => "partition healed");
        return;
      case "heal":
        return this.heal();
      case "membershipStart":
        return this.startChange(e.group);
      case "reconfigRequest":
        return this.reconfigRequest(e);
      case "reconfigAnswer":
        return this.reconfigAnswer(e.call, e.outcome);
      case "reconfigGiveUp": {
        const c = this.reconfigCalls.get(e.call);
        if (c === undefined || c.done) return;
        c.done = true;
        this.log(() => `operator gives up on reconfigure call ${e.call} of ${c.group}`);
        return this.submitReconfig(c.group, this.streams.membership.int(10, 100));
      }
      case "dropCheck":
        return this.dropCheck(e.group);
      case "settleCheck":
        this.settleCheckScheduled = false;
        return this.maybeStartFinalReads();
    }
  }

  private deliver(from: NodeId, to: NodeId, msg: PeerMessage): void {
    const node = this.nodes.get(to)!;
    // Lost: the node is down, or a partition came up while the message was in flight.
    if (!node.up || !this.network.connected(from, to)) {
      this.log(() => `drop ${from}->${to} ${describeMessage(msg)} (${node.up ? "partitioned" : "node down"})`);
      return;
    }
    if (!node.replicas.has(msg.group)) {
      // A node that does not hold the group (any more): a live node ignores it as well.
      this.log(() => `drop ${from}->${to} ${describeMessage(msg)} (${to} holds no copy of ${msg.group})`);
      return;
    }
    if (msg.type === "catchupSnapshot" || msg.type === "catchupEntry") this.count(msg.type);
    this.step(node, msg.group, { type: "message", from, msg }, `${from}->${to} ${describeMessage(msg)}`);
  }

  private note(kind: string, detail: () => string): void {
    this.count(`note ${kind}`);
    if (this.stats.notes[kind] === undefined) this.stats.notes[kind] = detail();
  }

  private count(what: string): void {
    this.stats.counts[what] = (this.stats.counts[what] ?? 0) + 1;
  }

  /**
   * The replica's pending persists due by now are durable, oldest first: apply each, release
   * what waited on it. A write taken into an earlier commit left its old event behind: then
   * nothing is due, and nothing happens.
   */
  private diskDone(nodeId: NodeId, group: string, epoch: number, of: Replica): void {
    const node = this.nodes.get(nodeId)!;
    if (!node.up || node.epoch !== epoch) return; // the crash lost it
    for (;;) {
      const replica = node.replicas.get(group);
      if (replica !== of) return; // the copy was dropped (membership change): so is its disk
      const write = replica.diskQueue[0];
      if (write === undefined || write.doneAt > this.queue.now) return;
      replica.diskQueue.shift();
      const disk = node.disks.get(group)!;
      for (const u of node.unsynced) if (u.group === group && u.lostUntil > this.queue.now) u.after.push(write.persist);
      if (write.unsynced) node.unsynced.push({ group, before: copyDisk(disk), after: [], lostUntil: this.queue.now + UNSYNCED_LOSS_MS });
      applyPersist(disk, write.persist);
      this.log(() => `disk ${nodeId}/${group} ${write.unsynced ? "wrote (no sync)" : "synced"} ${describePersist(write.persist)}`);
      write.durable();
    }
  }

  /** The break `learn-without-sync`: a crash loses the oldest unsynced record still at risk. */
  private loseUnsynced(node: SimNode): void {
    const now = this.queue.now;
    node.unsynced = node.unsynced.filter((u) => u.lostUntil > now);
    const lostGroups = new Set<string>();
    for (const u of node.unsynced) {
      if (lostGroups.has(u.group)) continue;
      lostGroups.add(u.group);
      const disk = node.disks.get(u.group);
      if (disk === undefined) continue; // the copy was dropped since
      // In place: the image object is the node's for good (its replicas' mirrors start from it).
      const rebuilt = copyDisk(u.before);
      for (const p of u.after) applyPersist(rebuilt, p);
      disk.meta = rebuilt.meta;
      disk.keys = rebuilt.keys;
      disk.requests = rebuilt.requests;
      this.log(() => `disk ${node.id}/${u.group} LOST an unsynced record (${u.after.length} synced after it kept)`);
    }
    node.unsynced = [];
  }

  // ---- the core ----------------------------------------------------------------------------

  private step(node: SimNode, group: string, input: Input, what: string): void {
    const replica = node.replicas.get(group);
    if (replica === undefined) throw new Error(`sim: ${node.id} has no replica of ${group}`);
    const now = this.queue.now;
    this.stats.steps++;
    const ready: Ready = step(replica.state, now, input);
    this.log(() => `step ${node.id}/${group} ${what} -> ${describeReady(ready, replica.state)}`);
    this.options.inspect?.(node.id, replica.state, input, ready, now);
    if (input.type === "tick" && ready.wakeAt !== null && ready.wakeAt < now) {
      this.note("tick-in-the-past", () => `t=${now} ${node.id}/${group}: after a tick the core asks for one at ${ready.wakeAt} (${describeWaits(replica.state)})`);
    }
    this.observe(node, replica, group, false, what);
    if (ready.persist !== null) replica.mirror.apply(node.id, ready.persist, `t=${now} ${what}`);
    // A lost group's state is empty before its first step wipes the bad copy: nothing to compare.
    if (!node.lost.has(group)) replica.mirror.check(node.id, replica.state, ready.persist, `t=${now} ${what}`);
    replica.driver.perform(ready, now);
    this.checkWake(node, group, replica.state, ready.wakeAt);
  }

  /**
   * Ticks come only at the core's wakeAt (here as in the live actor), so wakeAt must name
   * every time the core needs: a tick just before it, or at any time when it is null, must
   * find nothing to do (nothing to send, answer or persist). Probed on a copy of the state,
   * so the run goes on unchanged. Without this a wakeAt that is missing or late goes unseen
   * whenever some message happens to step the replica in time.
   */
  private checkWake(node: SimNode, group: string, state: GroupState, wakeAt: number | null): void {
    const now = this.queue.now;
    const probeAt = wakeAt === null ? now + SETTLE_MS : Math.ceil(wakeAt) - 1;
    if (probeAt <= now) return;
    const ready = step(copyForProbe(state), probeAt, { type: "tick" });
    const acts = ready.send.length + ready.sendNow.length + ready.answers.length + ready.answersNow.length + (ready.persist === null ? 0 : 1);
    if (acts === 0) return;
    fail(
      "liveness",
      `t=${now} ${node.id}/${group}: the core asked to wake ${wakeAt === null ? "never" : `at ${wakeAt}`}, but a tick at ${probeAt} would act: ${describeReady(ready, state)} (${describeWaits(state)})`,
    );
  }

  /** Feeds the per-step checkers: agreement on every step, convergence when `chosen` moved. */
  private observe(node: SimNode, replica: Replica, group: string, restored: boolean, what: string): void {
    const state = replica.state;
    const where = `t=${this.queue.now} ${restored ? "restart" : what}`;
    this.agreement.observe(node.id, group, state.chosen, restored, `${node.id} ${where}`);
    const index = state.chosen?.index ?? 0;
    // A joining replica holds nothing yet (and only the configuration it is to join).
    if ((restored || index !== replica.convergedAt) && state.joining === null) {
      replica.convergedAt = index;
      this.convergence.observe(node.id, group, index, state.data, state.requests, where, state.members);
    }
  }

  /**
   * The simulated I/O of one replica, plugged into the live actor's GroupDriver: it does what
   * the driver says, with the checkers watching every release. A replica's disk writes
   * complete in order (a FIFO with random latency); a crash voids them by epoch.
   */
  private ports(node: SimNode, group: string, replica: () => Replica): GroupPorts {
    return {
      persist: (persist, durable, _failed, mayWait) => {
        const r = replica();
        const now = this.queue.now;
        const unsynced = mayWait && this.breaks.has("learn-without-sync");
        const tail = r.diskQueue[r.diskQueue.length - 1];
        if (unsynced) {
          // Returns at once (no fsync), still in order behind what the replica wrote before.
          const doneAt = Math.max(now, tail?.doneAt ?? 0);
          r.diskQueue.push({ persist, doneAt, durable, waiting: false, unsynced: true });
          this.queue.schedule(doneAt, { kind: "diskDone", node: node.id, group, epoch: node.epoch, replica: r });
          return;
        }
        if (mayWait) this.count("persists that may wait");
        if (mayWait && this.mayWaitMs > 0) {
          // With the writes already waiting (one batch), or a new wait of up to mayWaitMs.
          const doneAt = tail?.waiting === true ? tail.doneAt : this.commitStart(r) + this.streams.disk.int(1, this.mayWaitMs) + this.streams.disk.int(...this.faults.diskMs);
          r.diskQueue.push({ persist, doneAt, durable, waiting: true, unsynced: false });
          this.queue.schedule(doneAt, { kind: "diskDone", node: node.id, group, epoch: node.epoch, replica: r });
          return;
        }
        const doneAt = this.commitStart(r) + this.streams.disk.int(...this.faults.diskMs);
        r.diskQueue.push({ persist, doneAt, durable, waiting: false, unsynced: false });
        // The commit takes every write still waiting before it.
        this.commitWaiting(r, doneAt);
        this.queue.schedule(doneAt, { kind: "diskDone", node: node.id, group, epoch: node.epoch, replica: r });
      },
      hurry: () => {
        const r = replica();
        if (!r.diskQueue.some((w) => w.waiting)) return;
        this.count("hurried persists");
        const doneAt = this.commitStart(r) + this.streams.disk.int(...this.faults.diskMs);
        this.commitWaiting(r, doneAt);
        this.queue.schedule(doneAt, { kind: "diskDone", node: node.id, group, epoch: node.epoch, replica: r });
      },
      send: (to, msg) => {
        const now = this.queue.now;
        checkPersistBeforeSend(node.id, to, msg, node.disks.get(group), now);
        this.fastRound.onRelease(node.id, msg, now);
        if (to === node.id) {
          // A vote to our own proposer: in-process on a live node (keyGroup.ts), so no network.
          this.queue.schedule(now, { kind: "loopback", node: node.id, epoch: node.epoch, msg });
          return;
        }
        this.stats.messages++;
        const delays = this.network.plan(node.id, to);
        if (delays.length === 0) this.log(() => `lose ${node.id}->${to} ${describeMessage(msg)}`);
        for (const d of delays) this.queue.schedule(now + d, { kind: "deliver", from: node.id, to, msg });
      },
      answer: (callId, outcome) => {
        if (this.reconfigCalls.has(callId)) {
          this.queue.schedule(this.queue.now + this.streams.network.int(...CLIENT_HOP_MS), { kind: "reconfigAnswer", call: callId, outcome });
          return;
        }
        const call = this.calls.get(callId);
        if (call === undefined) {
          // A call its client stopped waiting for: the answer goes nowhere.
          if (this.abandoned.has(callId)) return;
          throw new Error(`sim: ${node.id} answered unknown call ${callId}`);
        }
        this.queue.schedule(this.queue.now + this.streams.network.int(...CLIENT_HOP_MS), { kind: "answer", call, outcome });
      },
      // Ticks come only when the driver arms the timer, by the live actor's rule
      // (releaseQueue.ts nextTimer): no periodic ticks that the live node would not have.
      armTimer: (at) => {
        const r = replica();
        const gen = (r.tick?.gen ?? 0) + 1;
        r.tick = { at, gen };
        this.queue.schedule(at, { kind: "tick", node: node.id, group, epoch: node.epoch, gen });
      },
      fatal: (error) => {
        throw error;
      },
    };
  }

  // ---- nodes: start, crash, restart -----------------------------------------------------------

  /** When a new commit of the replica may start: after the last one not waiting (one batch in flight). */
  private commitStart(r: Replica): number {
    let last = 0;
    for (const w of r.diskQueue) if (!w.waiting) last = w.doneAt;
    return Math.max(this.queue.now, last);
  }

  /** The writes waiting in `r`'s queue go with a commit that lands at `doneAt`. */
  private commitWaiting(r: Replica, doneAt: number): void {
    for (const w of r.diskQueue) {
      if (!w.waiting) continue;
      w.waiting = false;
      w.doneAt = Math.min(w.doneAt, doneAt);
    }
  }

  /** Starts (or restarts) a node from its disks: new incarnation, new seed, nothing volatile. */
  private start(node: SimNode): void {
    node.up = true;
    node.restarts++;
    node.replicas = new Map();
    for (const g of this.groups) {
      if (!node.disks.has(g.group)) continue; // not (or no longer) one of its replicas
      this.createReplica(node, g.group);
    }
    this.log(() => `${node.restarts === 0 ? "start" : "restart"} ${node.id} (incarnation ${node.id}.${node.restarts}) chosen ${[...node.replicas].map(([group, r]) => `${group}@${r.state.chosen?.index ?? 0}`).join(" ")}`);
  }

  /** A replica of `group` on `node`, from its disk image (new incarnation, nothing volatile). */
  private createReplica(node: SimNode, group: string): void {
    // A copy made by joining gets its own incarnation: the node may have held (and dropped)
    // the group before, in this same incarnation, and value ids must never repeat.
    const incarnation = `${node.id}.${node.restarts}${this.joinCount(node, group)}`;
    const config: GroupConfig = {
      group,
      self: node.id,
      replicas: this.nodeIds, // the birth configuration; a changed one is in the disk image
      incarnation,
      // Every start but the first may follow a crash that lost an Accept's own persist.
      ...(node.restarts > 0 ? { fastRoundFence: `${node.id}/${incarnation}/` } : {}),
      seed: this.streams.nodes.nextU32(),
      timing: this.tuning.timing,
      limits: this.tuning.limits,
      breaks: this.breaks,
    };
    const lost = node.lost.delete(group);
    const state = restoreReplica(config, node.disks.get(group)!, { lost });
    if (lost) this.log(() => `${node.id} lost its copy of ${group}: recovering as a learner`);
    const driver = new GroupDriver(this.ports(node, group, () => replica), { replyBeforePersist: this.replyBeforePersist });
    const replica: Replica = { state, driver, diskQueue: [], tick: null, convergedAt: -1, mirror: new DurableMirror(node.disks.get(group)!) };
    node.replicas.set(group, replica);
    this.observe(node, replica, group, true, "restart");
    // A joining replica acts on its own (it asks for the data): a node steps it once to start.
    if (state.joining !== null) this.step(node, group, { type: "tick" }, "join");
  }

  // ---- membership changes (issue 13) -------------------------------------------------------

  private readonly joins = new Map<string, number>();

  /** "" for a copy not made by joining; ".jN" for the N-th join of `group` by `node`. */
  private joinCount(node: SimNode, group: string): string {
    const n = this.joins.get(`${node.id}/${group}`);
    return n === undefined ? "" : `.j${n}`;
  }

  /** Where a client sends a group's request: the configuration it knows, sometimes the one being moved to. */
  private route(group: string): readonly NodeId[] {
    const run = this.runs.get(group);
    if (run === undefined) return this.nodeIds;
    if (run.pending !== null && this.streams.membership.chance(this.membership!.routeNewRate)) return run.pending.config.replicas;
    return run.current.replicas;
  }

  /**
   * The operator starts a group's next change: the joiners are marked joining on their disks
   * first (as a node does before it lets the reconfiguration be proposed), then the
   * reconfiguration goes to a replica of the group, and again until one answers it is done.
   */
  private startChange(group: string): void {
    const run = this.runs.get(group)!;
    if (run.pending !== null) {
      this.queue.schedule(this.queue.now + 50, { kind: "membershipStart", group }); // one change at a time
      return;
    }
    run.starts.shift();
    const prng = this.streams.membership;
    const current = run.current;
    // Free to join: holds no copy (a removed node's copy is dropped first).
    const available = this.allNodes.filter((n) => !current.replicas.includes(n) && !this.nodes.get(n)!.disks.has(group));
    const change = planChange(prng, current.replicas, available, this.membership!.majorityFirst && current.epoch === 0);
    if (change === null) return;
    const config: Configuration = { epoch: current.epoch + 1, replicas: change.replicas };
    const joiners = config.replicas.filter((n) => !current.replicas.includes(n));
    const removed = current.replicas.filter((n) => !config.replicas.includes(n));
    run.pending = { config, joiners, removed, kind: change.kind };
    this.count(`membership ${change.kind}`);
    this.log(() => `MEMBERSHIP ${group}: ${change.kind}: [${current.replicas.join(",")}] -> [${config.replicas.join(",")}] epoch ${config.epoch}`);
    for (const j of joiners) {
      const node = this.nodes.get(j)!;
      this.joins.set(`${j}/${group}`, (this.joins.get(`${j}/${group}`) ?? 0) + 1);
      node.disks.set(group, { meta: { chosen: null, promised: null, accepted: null, config, joining: current.replicas }, keys: new Map(), requests: [] });
      if (node.up) this.createReplica(node, group);
    }
    this.submitReconfig(group, 0);
  }

  private submitReconfig(group: string, delay: number): void {
    const run = this.runs.get(group)!;
    const pending = run.pending!;
    const prng = this.streams.membership;
    // To a replica of the configuration the operator knows; one that moved on answers anyway.
    const node = prng.pick(run.current.replicas);
    const call = this.nextCall++;
    const deadline = this.queue.now + delay + prng.int(300, 1500);
    this.reconfigCalls.set(call, { group, epoch: pending.config.epoch, done: false });
    this.queue.schedule(this.queue.now + delay + this.streams.network.int(...CLIENT_HOP_MS), { kind: "reconfigRequest", node, group, call, config: pending.config, deadline });
    this.queue.schedule(deadline + CLIENT_GIVE_UP_MS, { kind: "reconfigGiveUp", call });
  }

  private reconfigRequest(e: Extract<SimEvent, { kind: "reconfigRequest" }>): void {
    const node = this.nodes.get(e.node)!;
    if (!node.up) return this.log(() => `reconfigure call ${e.call} lost: ${e.node} is down`);
    if (!node.replicas.has(e.group)) {
      this.queue.schedule(this.queue.now + 1, { kind: "reconfigAnswer", call: e.call, outcome: { kind: "error", code: "moved", message: "no copy" } });
      return;
    }
    this.step(node, e.group, { type: "reconfigure", call: e.call, config: e.config, deadline: e.deadline }, `reconfigure call ${e.call}`);
  }

  private reconfigAnswer(callId: CallId, outcome: Outcome): void {
    const c = this.reconfigCalls.get(callId)!;
    if (c.done) return;
    c.done = true;
    const run = this.runs.get(c.group)!;
    this.log(() => `operator: reconfigure call ${callId} of ${c.group}: ${describeOutcome(outcome)}`);
    if (run.pending === null || run.pending.config.epoch !== c.epoch) return; // an older call's late answer
    if (outcome.kind === "reconfigured" && outcome.config.epoch >= c.epoch) {
      const wanted = run.pending.config;
      if (outcome.config.epoch !== wanted.epoch || outcome.config.replicas.join(",") !== wanted.replicas.join(",")) {
        fail("placement", `t=${this.queue.now} ${c.group}: reconfigured to epoch ${outcome.config.epoch} [${outcome.config.replicas.join(",")}], but the only change at that epoch is [${wanted.replicas.join(",")}]`);
      }
      this.completeChange(c.group, outcome.index);
      return;
    }
    this.count(`membership retry`);
    this.submitReconfig(c.group, this.streams.membership.int(10, 100));
  }

  private completeChange(group: string, index: number): void {
    const run = this.runs.get(group)!;
    const pending = run.pending!;
    this.log(() => `MEMBERSHIP ${group}: epoch ${pending.config.epoch} chosen at #${index}`);
    run.current = pending.config;
    run.pending = null;
    for (const node of pending.removed) run.drops.push({ node, index, config: pending.config });
    this.scheduleDropCheck(group);
    this.maybeStartFinalReads();
  }

  private scheduleDropCheck(group: string): void {
    const run = this.runs.get(group)!;
    if (run.dropCheckScheduled || run.drops.length === 0) return;
    run.dropCheckScheduled = true;
    this.queue.schedule(this.queue.now + 20, { kind: "dropCheck", group });
  }

  /**
   * A removed replica's copy goes once a quorum of the new configuration holds the group at
   * or past the reconfiguration's index ON DISK (not joining): from then on the data does not
   * depend on the removed copy (docs/DESIGN.md, "Removed replicas and their data").
   */
  private dropCheck(group: string): void {
    const run = this.runs.get(group)!;
    run.dropCheckScheduled = false;
    let kept = 0;
    for (const d of run.drops) {
      const holding = (config: Configuration): NodeId[] =>
        config.replicas.filter((n) => {
          const image = this.nodes.get(n)!.disks.get(group);
          return image !== undefined && image.meta.joining === undefined && !image.meta.recovering && (image.meta.chosen?.index ?? 0) >= d.index;
        });
      // The configuration it left, or a later one (its members may have moved on in turn).
      const holders = [d.config, run.current].map(holding);
      if (holders[0]!.length < quorumSize(d.config.replicas) && holders[1]!.length < quorumSize(run.current.replicas)) {
        run.drops[kept++] = d; // still a source the new replicas may need
        continue;
      }
      const holdersText = holders[0]!.join(",");
      const node = this.nodes.get(d.node)!;
      node.replicas.delete(group);
      node.disks.delete(group);
      this.count("membership drop");
      this.log(() => `MEMBERSHIP ${group}: ${d.node} drops its copy (removed at #${d.index}; [${holdersText}] hold it)`);
    }
    run.drops.length = kept;
    this.scheduleDropCheck(group);
    this.maybeStartFinalReads();
    if (this.finalReadsPending === 0) this.maybeFinish();
  }

  /** The seed ends once the final reads are done and every removed copy is dropped. */
  private maybeFinish(): void {
    for (const run of this.runs.values()) if (run.drops.length > 0) return;
    this.finished = true;
  }

  /**
   * No change under way or to come, every member holding the group. (Removed copies may still
   * wait to be dropped: in a group nobody writes to any more, the final reads are what brings a
   * quorum of the new configuration up to the change.)
   */
  private membershipSettled(): boolean {
    for (const [group, run] of this.runs) {
      if (run.pending !== null || run.starts.length > 0) return false;
      for (const n of run.current.replicas) {
        const image = this.nodes.get(n)!.disks.get(group);
        if (image === undefined || image.meta.joining !== undefined) return false;
      }
    }
    return true;
  }

  /**
   * At seed end every group's copies are on exactly the replicas of its configuration, each of
   * which holds that configuration (on disk and in memory), joining no more.
   */
  private checkPlacement(): void {
    for (const g of this.groups) {
      const expected = this.runs.get(g.group)?.current ?? { epoch: 0, replicas: this.nodeIds };
      const holders = this.allNodes.filter((n) => this.nodes.get(n)!.disks.has(g.group));
      const want = [...expected.replicas].sort().join(",");
      if (holders.slice().sort().join(",") !== want) {
        fail("placement", `at seed end ${g.group} is held by [${holders.join(",")}], but its configuration (epoch ${expected.epoch}) is [${expected.replicas.join(",")}]`);
      }
      for (const n of holders) {
        const node = this.nodes.get(n)!;
        const image = node.disks.get(g.group)!;
        const onDisk = image.meta.config ?? { epoch: 0, replicas: this.nodeIds };
        const live = node.replicas.get(g.group)?.state.members;
        for (const [what, c] of [["disk", onDisk], ["memory", live]] as const) {
          if (c === undefined) continue;
          if (c.epoch !== expected.epoch || c.replicas.join(",") !== expected.replicas.join(",")) {
            fail("placement", `at seed end ${n} holds ${g.group} with configuration epoch ${c.epoch} [${c.replicas.join(",")}] in ${what}, but it is epoch ${expected.epoch} [${expected.replicas.join(",")}]`);
          }
        }
        if (image.meta.joining !== undefined) fail("placement", `at seed end ${n} is still joining ${g.group}`);
      }
    }
  }

  private crashSomeNode(): void {
    if (!this.faultsOn || this.faults.crashGapMs === null) return;
    const prng = this.streams.faults;
    this.queue.schedule(this.queue.now + prng.int(...this.faults.crashGapMs), { kind: "crash" });
    const up = this.allNodes.filter((id) => this.nodes.get(id)!.up);
    // Keep one node up: a whole-cluster outage tests nothing the rest does not.
    if (up.length <= 1) return;
    const node = this.nodes.get(prng.pick(up))!;
    node.up = false;
    node.epoch++;
    node.replicas = new Map(); // volatile state and unsynced persists: gone
    this.loseUnsynced(node);
    this.stats.crashes++;
    this.maybeLoseDisk(node, prng);
    this.log(() => `CRASH ${node.id}`);
    this.queue.schedule(this.queue.now + prng.int(...this.faults.downMs), { kind: "restart", node: node.id, epoch: node.epoch });
  }

  /**
   * Sometimes a crash also loses one group's disk image (as a record failing its checksum
   * does): the replica restarts with nothing and must recover without voting. Only while no
   * other replica of that group is losing or recovering it: Paxos keeps chosen values only
   * while a majority keeps its disk.
   */
  private maybeLoseDisk(node: SimNode, prng: Prng): void {
    if (this.faults.loseDiskChance === 0 || !prng.chance(this.faults.loseDiskChance)) return;
    // Not in a group whose configuration changes this seed: a replica that lost its copy knows
    // only the birth configuration (docs/DESIGN.md, membership: not covered yet).
    const eligible = this.groups
      .map((g) => g.group)
      .filter((group) => !this.runs.has(group) && node.disks.has(group))
      .filter((group) =>
        [...this.nodes.values()].every(
          (other) =>
            other === node ||
            !other.disks.has(group) ||
            (!other.lost.has(group) && !other.disks.get(group)!.meta.recovering && (other.replicas.get(group)?.state.recovering ?? null) === null),
        ),
      );
    if (eligible.length === 0) return;
    const group = prng.pick(eligible);
    // Either the restart finds the bad copy (restoreReplica with `lost`), or it had already been
    // wiped and flagged before this crash (restart resumes recovery from the durable flag).
    if (prng.chance(0.5)) node.lost.add(group);
    else node.disks.set(group, { meta: { chosen: null, promised: null, accepted: null, recovering: true }, keys: new Map(), requests: [] });
    this.stats.disksLost++;
    this.log(() => `DISK LOSS ${node.id} ${group}`);
  }

  private partition(): void {
    if (!this.faultsOn || this.faults.partitionGapMs === null) return;
    const prng = this.streams.faults;
    const description = this.network.partition(this.allNodes);
    this.stats.partitions++;
    this.partitionGeneration++;
    this.log(() => `PARTITION ${description}`);
    const healAt = this.queue.now + prng.int(...this.faults.partitionMs);
    this.queue.schedule(healAt, { kind: "partitionHeal", generation: this.partitionGeneration });
    this.queue.schedule(healAt + prng.int(...this.faults.partitionGapMs), { kind: "partition" });
  }

  private heal(): void {
    this.faultsOn = false;
    this.healedAt = this.queue.now;
    this.network.faulty = false;
    this.network.heal();
    this.log(() => "HEAL: network healed, crashed nodes restart, no more faults");
    for (const node of this.nodes.values()) if (!node.up) this.start(node);
    this.maybeStartFinalReads();
  }

  // ---- clients --------------------------------------------------------------------------------

  private clientNext(client: ClientRun): void {
    if (client.opsLeft === 0) {
      client.done = true;
      this.maybeStartFinalReads();
      return;
    }
    client.opsLeft--;
    const group = client.plan.group.group;
    const late = this.streams.workload.chance(LATE_RETRY_RATE) ? this.pickLateRetry(group) : null;
    if (late !== null) {
      // A retry long after the first attempt: past a small request memory the id is
      // forgotten and applied again (docs/API.md: the at-most-once window).
      this.count("write late retry");
      this.issueWrite(client, late, null);
      return;
    }
    const op: ClientOp = nextOp(this.streams.workload, client.plan, client.knowledge);
    if (op.kind === "write") {
      const record: WriteRecord = {
        group,
        client: client.plan.id,
        requestId: `${client.plan.id}.w${this.nextRequest++}`,
        op: op.op,
        fresh: this.streams.workload.chance(FRESH_WRITE_RATE),
        attempts: [],
      };
      this.history.writes.set(record.requestId, record);
      this.stats.writes++;
      this.issueWrite(client, record, null);
    } else {
      const node = pickReplica(this.streams.workload, client.plan, this.route(group), null);
      this.issueRead(client, group, node, op.query, op.consistency, 0);
    }
  }

  /**
   * A write of `group` to send again with its request id, long after: one near the edge of the
   * request memory (the last few times `requestMemory` writes), whose attempts are all over,
   * that the client may retry (not fresh, never answered "unavailable": that id is dead).
   */
  private pickLateRetry(group: string): WriteRecord | null {
    const span = Math.min(this.tuning.limits.requestMemory * 2 + 4, 64);
    const recent: WriteRecord[] = [];
    for (const w of this.history.writes.values()) if (w.group === group) recent.push(w);
    const candidates = recent
      .slice(-span)
      .filter((w) => !w.fresh && w.attempts.every((a) => a.outcome !== null && !(a.outcome.kind === "error" && a.outcome.code === "unavailable")));
    return candidates.length === 0 ? null : this.streams.workload.pick(candidates);
  }

  private deadline(): number {
    return this.queue.now + this.streams.workload.int(300, 2000);
  }

  /** `to`: a replica (the same one again, for a retry), or one to avoid, or null (the client's choice). */
  private issueWrite(client: ClientRun, record: WriteRecord, to: { same: NodeId } | { avoid: NodeId } | null, hedge = false): void {
    const node = to !== null && "same" in to ? to.same : pickReplica(this.streams.workload, client.plan, this.route(record.group), to?.avoid ?? null);
    const attempt: WriteAttempt = { node, invokedAt: this.queue.now, completedAt: null, outcome: null };
    record.attempts.push(attempt);
    const id = this.nextCall++;
    const input: Input = { type: "propose", call: id, command: { requestId: record.requestId, op: record.op }, deadline: this.deadline(), fresh: record.fresh };
    this.sendCall({ id, node, group: record.group, input, client, write: record, attempt, read: null, finalTry: 0, hedge, done: false });
    if (!hedge && !record.fresh && this.streams.workload.chance(HEDGE_RATE)) {
      // The same request id again, to the same replica, a moment later (a hedged or doubled
      // send): one value may then carry the id twice with other writes between.
      this.hedgesScheduled++;
      this.queue.schedule(this.queue.now + this.streams.workload.int(0, 25), { kind: "hedge", client, record, node });
    }
  }

  private issueRead(
    client: ClientRun | null,
    group: string,
    node: NodeId,
    query: ReadRecord["query"],
    consistency: ReadRecord["consistency"],
    finalTry: number,
  ): void {
    const read: ReadRecord = {
      group,
      client: client?.plan.id ?? "final",
      node,
      query,
      consistency,
      invokedAt: this.queue.now,
      completedAt: null,
      outcome: null,
    };
    this.history.reads.push(read);
    this.stats.reads++;
    const id = this.nextCall++;
    const input: Input = { type: "read", call: id, query, consistency, deadline: this.deadline() };
    this.sendCall({ id, node, group, input, client, write: null, attempt: null, read, finalTry, done: false });
  }

  private sendCall(call: Call): void {
    this.calls.set(call.id, call);
    const deadline = (call.input as { deadline: number }).deadline;
    this.log(() => `client ${call.client?.plan.id ?? "final"} call ${call.id} -> ${call.node}/${call.group}: ${describeInput(call.input)}`);
    this.queue.schedule(this.queue.now + this.streams.network.int(...CLIENT_HOP_MS), { kind: "request", call });
    // An impatient client stops waiting long before the replica's deadline (a raw client
    // with a shorter timeout than the node's): its attempt stays queued at the replica while
    // the retry, with the same request id, may be queued at the same one (one value can then
    // carry the id twice: the second must be deduplicated, or, past a tiny request memory,
    // applied again and remembered on disk as in memory).
    const impatient = call.write !== null && !call.write.fresh && this.streams.workload.chance(IMPATIENT_RATE);
    const giveUpAt = impatient ? this.queue.now + this.streams.workload.int(5, 150) : deadline + CLIENT_GIVE_UP_MS;
    this.queue.schedule(giveUpAt, { kind: "giveUp", call });
  }

  private request(call: Call): void {
    const node = this.nodes.get(call.node)!;
    if (!node.up) {
      this.log(() => `call ${call.id} lost: ${call.node} is down`);
      return;
    }
    if (!node.replicas.has(call.group)) {
      // The node's answer for a group it does not hold: where the group lives, as it knows it.
      const config = this.runs.get(call.group)!.current;
      const outcome: Outcome = { kind: "error", code: "moved", message: `${node.id} holds no copy of ${call.group}`, config };
      this.queue.schedule(this.queue.now + this.streams.network.int(...CLIENT_HOP_MS), { kind: "answer", call, outcome });
      return;
    }
    this.step(node, call.group, call.input, `call ${call.id}`);
  }

  private answer(call: Call, outcome: Outcome): void {
    if (call.done) return; // already given up on
    this.log(() => `answer call ${call.id} from ${call.node}: ${describeOutcome(outcome)}`);
    if (outcome.kind === "error") this.complete(call, { kind: "error", code: outcome.code });
    else if (outcome.kind === "write" && call.write !== null) this.complete(call, { kind: "ok", result: outcome.result });
    else if (outcome.kind === "read" && call.read !== null) this.complete(call, { kind: "ok", result: outcome.result });
    else throw new Error(`sim: call ${call.id} got a ${outcome.kind} answer`);
  }

  private complete(
    call: Call,
    outcome: { kind: "ok"; result: WriteResult | ReadResult } | { kind: "error"; code: ErrorCode } | { kind: "lost" },
  ): void {
    call.done = true;
    this.calls.delete(call.id);
    if (outcome.kind === "lost") this.abandoned.add(call.id);
    this.count(`${call.write !== null ? "write" : call.client === null ? "final read" : "read"} ${outcome.kind === "error" ? outcome.code : outcome.kind}`);
    const now = this.queue.now;
    if (call.attempt !== null && call.write !== null) {
      call.attempt.completedAt = now;
      call.attempt.outcome = outcome as WriteAttempt["outcome"];
      const client = call.client!;
      if (outcome.kind === "ok") learnFromWrite(client.knowledge, call.write, outcome.result as WriteResult);
      if (call.hedge === true) {
        // The client may be done already: the final reads wait for its last hedge.
        this.maybeStartFinalReads();
        return;
      }
      const unknown = outcome.kind === "lost" || (outcome.kind === "error" && (outcome.code === "timeout" || outcome.code === "moved"));
      // Outcome unknown: often retry the same request id elsewhere; dedupe must answer the first result.
      // A fresh write has no id of the client's own to retry with.
      if (unknown && !call.write.fresh && call.write.attempts.length < MAX_WRITE_ATTEMPTS && this.streams.workload.chance(0.6)) {
        this.count("write retry");
        // Elsewhere, or the same replica again (where the first attempt may still be queued).
        this.issueWrite(client, call.write, this.streams.workload.chance(0.6) ? { avoid: call.node } : { same: call.node });
        return;
      }
      this.thinkThenNext(client);
      return;
    }
    const read = call.read!;
    read.completedAt = now;
    read.outcome = outcome as ReadRecord["outcome"];
    if (call.client !== null) {
      if (outcome.kind === "ok") learnFromRead(call.client.knowledge, read, outcome.result as ReadResult);
      this.thinkThenNext(call.client);
      return;
    }
    // A final read: it must succeed now that the cluster is healed.
    if (outcome.kind !== "ok") {
      if (call.finalTry + 1 >= FINAL_READ_TRIES) {
        fail("liveness", `final read ${describeQuery(read.query)} of ${read.group} at ${read.node} failed ${FINAL_READ_TRIES} times after the heal (last: ${outcome.kind === "error" ? outcome.code : "lost"})`);
      }
      this.issueRead(null, read.group, read.node, read.query, "linearizable", call.finalTry + 1);
      return;
    }
    if (--this.finalReadsPending === 0) this.maybeFinish();
  }

  private thinkThenNext(client: ClientRun): void {
    this.queue.schedule(this.queue.now + this.streams.workload.int(0, 30), { kind: "clientNext", client });
  }

  /** After the heal, once every client is done: read every key at every replica. */
  private maybeStartFinalReads(): void {
    if (this.finalReadsPending !== -1 || this.healedAt === null || !this.clients.every((c) => c.done)) return;
    // A hedged copy can outlive its client's last op; its answer (ok at some index) must come
    // before the final reads, which check every replica reached every acknowledged write.
    if (this.hedgesScheduled > 0) return;
    for (const c of this.calls.values()) if (c.hedge === true) return;
    // Membership changes finish first: every change done, removed copies dropped, joiners joined.
    if (!this.membershipSettled()) {
      if (!this.settleCheckScheduled) {
        this.settleCheckScheduled = true;
        this.queue.schedule(this.queue.now + 20, { kind: "settleCheck" });
      }
      return;
    }
    this.finalReadsPending = 0;
    this.log(() => "FINAL READS");
    for (const g of this.groups) {
      for (const node of this.runs.get(g.group)?.current.replicas ?? this.nodeIds) {
        for (const key of g.keys) {
          this.finalReadsPending++;
          this.issueRead(null, g.group, node, { kind: "get", key }, "linearizable", 0);
        }
      }
    }
  }

  // ---- end of seed ------------------------------------------------------------------------------

  private endOfSeedChecks(): void {
    const positions: { node: NodeId; group: string; chosen: number }[] = [];
    for (const node of this.nodes.values()) {
      for (const [group, replica] of node.replicas) positions.push({ node: node.id, group, chosen: replica.state.chosen?.index ?? 0 });
    }
    this.log(() => `END t=${this.queue.now}: ${positions.map((p) => `${p.node}/${p.group}@${p.chosen}`).join(" ")}`);
    // Every end check runs, so a report names all that object; the first one leads.
    const failures: CheckFailure[] = [];
    const attempt = (check: () => void): void => {
      try {
        check();
      } catch (e) {
        if (e instanceof CheckFailure) failures.push(e);
        else throw e;
      }
    };
    attempt(() => this.checkDiskImages());
    attempt(() => this.checkPlacement());
    attempt(() => checkLinearizability(this.history, this.agreement.log, this.tuning.limits.requestMemory));
    attempt(() => checkNoAcknowledgedWriteLost(this.history, this.agreement.log, positions));
    const first = failures[0];
    if (first === undefined) return;
    const others = failures.slice(1).map((f) => `\n  also ${f.message}`).join("");
    throw new CheckFailure(first.checker, `${first.detail}${others}`);
  }

  /**
   * As if every node restarted now: each disk image must hold what some replica held in
   * memory at that chosen index (data and remembered request ids alike). A Persist that does
   * not say what the step changed shows up here even when no crash happened to follow it.
   */
  private checkDiskImages(): void {
    for (const node of this.nodes.values()) {
      for (const [group, image] of node.disks) {
        if (image.meta.recovering || image.meta.joining !== undefined || node.lost.has(group)) continue;
        const requests = new Map([...image.requests].sort((a, b) => a.seq - b.seq).map((r) => [r.requestId, r] as const));
        const config = image.meta.config ?? { epoch: 0, replicas: this.nodeIds };
        this.convergence.observe(node.id, group, image.meta.chosen?.index ?? 0, image.keys, requests, `t=${this.queue.now} disk image at seed end`, config);
      }
    }
  }

  private waitingFor(): string {
    const clients = this.clients.filter((c) => !c.done).map((c) => c.plan.id);
    const calls = [...this.calls.values()].map((c) => `${c.id}@${c.node}`);
    // -1: the final reads have not started (they wait for the clients, hedged copies and membership).
    const finalReads = this.finalReadsPending === -1 ? "not started" : `${this.finalReadsPending} pending`;
    const membership = this.membershipWaits();
    return `clients not done: [${clients.join(", ")}], calls open: [${calls.slice(0, 10).join(", ")}${calls.length > 10 ? ", ..." : ""}], hedges scheduled: ${this.hedgesScheduled}, final reads: ${finalReads}${membership.length > 0 ? `, membership: ${membership.join("; ")}` : ""}`;
  }

  /** What each group's membership still waits for (changes, joiners, removed copies to drop). */
  private membershipWaits(): string[] {
    const waits: string[] = [];
    for (const [group, run] of this.runs) {
      const parts: string[] = [];
      if (run.pending !== null) parts.push(`change to epoch ${run.pending.config.epoch} [${run.pending.config.replicas.join(",")}] under way`);
      if (run.starts.length > 0) parts.push(`${run.starts.length} change(s) to come`);
      const joining = run.current.replicas.filter((n) => {
        const image = this.nodes.get(n)!.disks.get(group);
        return image === undefined || image.meta.joining !== undefined;
      });
      if (joining.length > 0) parts.push(`not holding it yet: [${joining.join(",")}]`);
      if (run.drops.length > 0) parts.push(`copies to drop: [${run.drops.map((d) => `${d.node}@#${d.index}`).join(",")}]`);
      if (parts.length > 0) waits.push(`${group} ${parts.join(", ")}`);
    }
    return waits;
  }

  // ---- trace ------------------------------------------------------------------------------------

  private log(line: () => string): void {
    if (this.trace !== undefined) this.trace(`t=${String(this.queue.now).padStart(6)} ${line()}`);
  }

  private describeSetup(): string {
    const p = this.network.profile;
    const f = this.faults;
    return [
      `seed ${this.options.seed}: ${this.options.replicas} replicas, breaks [${[...this.breaks].join(",")}]`,
      `  network drop ${p.dropRate} dup ${p.duplicateRate} delay ${p.delayMinMs}-${p.delayMaxMs} ms spikes ${p.spikeRate} up to ${p.spikeMaxMs} ms`,
      `  timing ${JSON.stringify(this.tuning.timing)}`,
      `  limits ${JSON.stringify(this.tuning.limits)}`,
      `  faults for ${f.faultPhaseMs} ms: ${f.crashGapMs === null ? "no crashes" : `crashes every ${f.crashGapMs.join("-")} ms (down ${f.downMs.join("-")} ms)`}, ${f.partitionGapMs === null ? "no partitions" : `partitions every ${f.partitionGapMs.join("-")} ms (for ${f.partitionMs.join("-")} ms)`}, disk ${f.diskMs.join("-")} ms`,
      ...this.groups.map((g) => `  group ${g.group}: keys ${g.keys.join(",")} preferred ${g.preferred}${g.contended ? " contended" : ""}`),
      `  clients: ${this.clients.map((c) => `${c.plan.id}(home ${c.plan.home}, ${c.opsLeft} ops)`).join(" ")}`,
    ].join("\n");
  }
}

function planFaults(prng: Prng): FaultPlan {
  return {
    faultPhaseMs: prng.int(800, 3000),
    crashGapMs: prng.chance(0.75) ? prng.pick([[30, 150], [100, 400], [200, 800], [500, 1500]] as const) : null,
    loseDiskChance: prng.chance(0.3) ? prng.pick([0.1, 0.3]) : 0,
    // Short outages let messages from before a crash reach the restarted node.
    downMs: prng.pick([[1, 30], [10, 100], [50, 500], [200, 1500]] as const),
    partitionGapMs: prng.chance(0.6) ? prng.pick([[50, 300], [200, 1000]] as const) : null,
    partitionMs: prng.pick([[20, 200], [100, 800]] as const),
    // A slow disk widens the window between a step and its persist, where crashes bite.
    diskMs: prng.pick([[1, 2], [1, 5], [2, 15], [5, 40]] as const),
  };
}

/**
 * Timings and limits vary by seed: safety must not depend on them, and small limits reach
 * paths the defaults never do at this scale: one command per value, no inlined `prev` (the
 * one-behind replica must fetch it), one key per catch-up chunk (chunked snapshots, restarted
 * when the source moves on), and a short request-id memory (ids forgotten, snapshot copies of
 * the records, eviction order compared across replicas).
 */
function planTuning(prng: Prng): { timing: Timing; limits: Limits } {
  const backoffBaseMs = prng.pick([1, 5, 20]);
  const timing: Timing = {
    ...DEFAULT_TIMING,
    phaseTimeoutMs: prng.pick([100, 250, 500]),
    backoffBaseMs,
    // Never below ~one round trip with its fsyncs: a backoff shorter than that cannot break
    // a duel of proposers (with a 10 ms cap, 4% of seeds livelocked after the heal).
    backoffMaxMs: prng.pick([100, 200, 400]),
    readResolveMs: prng.pick([10, 50, 100]),
    catchUpRetryMs: prng.pick([100, 500]),
    probeRetryMs: prng.pick([50, 250]),
    // 0: every replica probed at once (the old way); else only a majority first.
    probeSpareMs: prng.pick([0, 1, 20, 100]),
    // 0: an Accept to every replica at once (the old way); else only a majority first.
    acceptSpareMs: prng.pick([0, 1, 20, 100]),
  };
  const limits: Limits = {
    ...DEFAULT_LIMITS,
    maxBatchCommands: prng.pick([1, 2, 4, DEFAULT_LIMITS.maxBatchCommands]),
    maxBatchBytes: prng.pick([1, 64, DEFAULT_LIMITS.maxBatchBytes]),
    prevInlineBytes: prng.pick([0, 64, DEFAULT_LIMITS.prevInlineBytes]),
    snapshotChunkBytes: prng.pick([1, 30, DEFAULT_LIMITS.snapshotChunkBytes]),
    // Down to one id: a value carrying a retried id twice, or a retry at the edge, then
    // crosses the window within one step.
    requestMemory: prng.chance(0.3) ? prng.pick([1, 2, 3, 4, 8, 16]) : DEFAULT_LIMITS.requestMemory,
  };
  // Drawn after the rest, so a seed's other choices stay what they were.
  return { timing: { ...timing, catchUpSpareMs: prng.pick([1, 20, 50, 500]) }, limits };
}

/**
 * A copy of a replica's state deep enough that stepping a tick on it leaves the original
 * untouched (entries and values are immutable and shared; structuredClone of every step's
 * state would make the simulation several times slower).
 */
/** How long an unsynced record stays at risk (until LevelDB would flush the memtable it is in). */
const UNSYNCED_LOSS_MS = 200;

function copyDisk(disk: DurableGroup): DurableGroup {
  return { meta: disk.meta, keys: new Map(disk.keys), requests: [...disk.requests] };
}

function copyForProbe(state: GroupState): GroupState {
  const p = state.proposer;
  const r = state.recovering;
  return {
    ...state,
    data: new Map(state.data),
    requests: new Map(state.requests),
    proposer: { ...p, promises: new Map(p.promises), accepts: new Set(p.accepts) },
    queue: state.queue.map((w) => ({ ...w })),
    reconfigs: state.reconfigs.slice(),
    reads: state.reads.map((read) => ({ ...read, replies: new Map(read.replies) })),
    catchUp: { ...state.catchUp, snapshot: state.catchUp.snapshot === null ? null : { ...state.catchUp.snapshot, items: new Map(state.catchUp.snapshot.items) } },
    recovering: r === null ? null : { ...r, replies: new Map(r.replies) },
  };
}

/** What a replica is waiting on, for a note about its wakeAt. */
function describeWaits(state: GroupState): string {
  const p = state.proposer;
  const reads = state.reads.map((r) => `read(deadline ${r.deadline}, target ${r.target ?? "-"} since ${r.targetAt})`);
  const cu = state.catchUp;
  return [
    `proposer ${p.phase} backoff until ${p.backoffUntil} phase deadline ${p.phaseDeadline} settle ${p.settle}`,
    `queue ${state.queue.length}`,
    ...reads,
    `catch-up ${cu.asked === null ? "none" : `from ${cu.asked} since ${cu.askedAt}${cu.snapshot !== null ? " (snapshot in progress)" : ""}`}`,
  ].join(", ");
}

function learnFromWrite(knowledge: ClientKnowledge, w: WriteRecord, result: WriteResult): void {
  const op = w.op;
  if (op.op === "put" && result.type === "put") knowledge.saw(op.key, { value: op.value, version: result.version });
  else if (op.op === "delete") knowledge.saw(op.key, null);
  else if (op.op === "cas" && result.type === "cas" && result.ok) knowledge.saw(op.key, { value: op.value, version: result.version });
}

function learnFromRead(knowledge: ClientKnowledge, r: ReadRecord, result: ReadResult): void {
  if (result.kind === "get" && r.query.kind === "get") knowledge.saw(r.query.key, result.entry);
  else if (result.kind === "scan") for (const item of result.items) knowledge.saw(item.key, item);
}

function describeReady(ready: Ready, state: GroupState): string {
  const parts = [`chosen ${state.chosen?.index ?? 0}`];
  if (ready.persist !== null) parts.push(`persist[${describePersist(ready.persist)}]`);
  if (ready.sendNow.length > 0) parts.push(`sendNow[${ready.sendNow.map((o) => `${o.to}:${describeMessage(o.msg)}`).join(", ")}]`);
  if (ready.send.length > 0) parts.push(`send[${ready.send.map((o) => `${o.to}:${describeMessage(o.msg)}`).join(", ")}]`);
  if (ready.answers.length > 0) parts.push(`answer[${ready.answers.map((a) => `${a.call}:${describeOutcome(a.outcome)}`).join(", ")}]`);
  if (ready.wakeAt !== null) parts.push(`wake ${ready.wakeAt}`);
  return parts.join(" ");
}

function describePersist(p: Persist): string {
  const m = p.meta;
  const accepted = m.accepted === null ? "-" : `${m.accepted.ballot.round}.${m.accepted.ballot.node}:${m.accepted.value.id}`;
  const promised = m.promised === null ? "-" : `${m.promised.round}.${m.promised.node}`;
  return `chosen ${m.chosen?.index ?? 0} promised ${promised} accepted ${accepted}${p.reset ? " RESET" : ""}${p.keys.length > 0 ? ` keys ${p.keys.length}` : ""}`;
}

function describeInput(input: Input): string {
  switch (input.type) {
    case "propose":
      return `propose ${input.command.requestId} ${JSON.stringify(input.command.op, (_k, v: unknown) => (v instanceof Uint8Array ? new TextDecoder().decode(v) : v))} deadline ${input.deadline}`;
    case "read":
      return `${input.consistency} ${describeQuery(input.query)} deadline ${input.deadline}`;
    default:
      return input.type;
  }
}
