// A node that lost its data directory (new disk, wiped by mistake, wrong mount of an empty dir)
// must not vote with the promises and accepts it forgot: an acceptor that forgets them can let
// two values be chosen at one instance. newOrLost.ts finds, at start, that the disk was lost;
// this file runs the lost-disk mode until voting is safe in every group.
//
// The lost-disk mode (durable record "lost-disk", written with the identity in one batch):
//   listing:    every group this node loads with no local record starts in recovery
//               (protocol/recovery.ts: a learner that neither votes nor answers probes until it
//               has learned a chosen index above anything it could have voted in); meanwhile
//               each peer is asked for every group it holds a record of where this node is a
//               replica, until ALL peers have answered.
//   recovering: only the listed groups start in recovery when loaded with no local record; each
//               is loaded (nudged) so that it starts recovering; the mode ends when every listed
//               group has finished its recovery.
// Why a group no peer lists is safe to start fresh: this node's vote in a group is a promise or
// an accept made on another replica's Prepare or Accept (its own votes on its own proposals
// alone decide nothing: a majority needs another replica's vote, which that replica makes
// durable, and so holds a record of the group). The sender of a Prepare/Accept made it durable
// (its own promise/accept) before sending it (the Ready pattern), and group records are never
// deleted. So every group in which this node cast a vote that any quorum may count is recorded
// on some other replica, and every other replica is a peer that answered. A group with no
// record at any peer has had no vote of ours that matters, and no decision at all.
// A record with the group on this node was written after the loss, by a group that started in
// recovery (or finished it): it is trusted as it is.
//
// In which configuration a listed group recovers (membership changes, issue 13): the group's
// CURRENT one, as the peers hold it, never one this node computes from its own view (its view
// was on the lost disk: it starts from the founders' list, and placement says where a group
// should live, not where it does). Each peer answers the list with the configuration it stores
// for each group (its meta's, or the founding placement for a group never reconfigured); the
// node takes the highest epoch. That is at least the configuration of every instance this node
// voted in before the loss (the value it last learned was accepted by a majority that had chosen
// the instance before it, so some peer stores that configuration or a later one), and recovery
// in such a configuration is sound: a majority of its other members either voted at the
// reconfiguration that made it (or at the instances after it), or joined it with a copy taken at
// or past that point, so their answers bound every instance this node may have voted in. The
// peers that must answer are the members and the previous members of the CURRENT membership view,
// as the peers' answers give it (a node that left the cluster holds no group any more). While the
// list is not complete, a group with no record here is not loaded at all: it neither votes nor
// answers; a linearizable read through this node goes to its other replicas, other calls are
// answered unavailable (keyGroup.ts `load`, apiHandler.ts `notLoadedYet`).

import { setTimeout as sleep } from "node:timers/promises";
import type { NodeId } from "../protocol/ballot.js";
import type { Configuration } from "../protocol/ops.js";
import type { GroupState } from "../protocol/state.js";
import type { Storage } from "../storage/storage.js";
import { newer, parseView, type MembersView } from "./membersView.js";
import { ask, type GroupsReply, type PeerQuestions } from "./peerControl.js";

export const LOST_DISK_RECORD = "lost-disk";

export type LostDiskState =
  | { readonly phase: "listing"; readonly detectedAt: number }
  | {
      readonly phase: "recovering";
      readonly detectedAt: number;
      readonly groups: readonly string[];
      /**
       * The configuration each listed group recovers in (same order as `groups`): the highest
       * epoch a peer stores for it; null when no peer said (an older peer, or only joiners hold
       * it): then the node's birth rule decides, as before membership changes.
       */
      readonly configs?: readonly (Configuration | null)[];
    };

/** What a group with no record on this node does when it is loaded (keyGroup.ts `load`). */
export type RecoveryPlan =
  /** Not a group this node may have voted in: loaded (or born) as usual. */
  | { readonly kind: "none" }
  /** The peers have not all listed their groups yet: not loaded now (no vote, no answer). */
  | { readonly kind: "wait" }
  /** Recovers before it votes, in `config` (null: the birth rule's configuration). */
  | { readonly kind: "recover"; readonly config: Configuration | null };

/** The durable lost-disk record as read at start; an unreadable one is read the widest way. */
export function readLostDiskRecord(x: unknown): LostDiskState | null {
  if (x === undefined) return null;
  const r = (typeof x === "object" && x !== null ? x : {}) as Record<string, unknown>;
  if (r.phase === "listing" && typeof r.detectedAt === "number") return { phase: "listing", detectedAt: r.detectedAt };
  if (r.phase === "recovering" && typeof r.detectedAt === "number" && Array.isArray(r.groups) && r.groups.every((g) => typeof g === "string")) {
    const configs = Array.isArray(r.configs) && r.configs.length === r.groups.length ? r.configs.map((c) => readConfiguration(c)) : undefined;
    return { phase: "recovering", detectedAt: r.detectedAt, groups: r.groups as string[], ...(configs === undefined ? {} : { configs }) };
  }
  // Unreadable: the safe reading is the widest one.
  return { phase: "listing", detectedAt: typeof r.detectedAt === "number" ? r.detectedAt : Date.now() };
}

/** A configuration as a peer or the lost-disk record gives it; null when it is not one. */
export function readConfiguration(x: unknown): Configuration | null {
  const c = x as { epoch?: unknown; replicas?: unknown } | null;
  if (typeof c !== "object" || c === null || typeof c.epoch !== "number" || !Number.isSafeInteger(c.epoch) || c.epoch < 0) return null;
  if (!Array.isArray(c.replicas) || c.replicas.length === 0 || !c.replicas.every((n) => typeof n === "string" && n.length > 0)) return null;
  return { epoch: c.epoch, replicas: c.replicas as string[] };
}

export interface LostDiskOptions extends PeerQuestions {
  /**
   * Every node of the cluster this node knows of (default `members`): asked until the peers'
   * answers say which nodes the cluster has now (see `list`).
   */
  peers?(): readonly NodeId[];
  /** A newer membership view than this node's, as a peer holds it. */
  onView?(view: MembersView): void;
  readonly storage: Storage;
  readonly state: LostDiskState;
  /** The loaded core state of a group if its actor is live, else null. */
  replicaOf(group: string): GroupState | null;
  /** Loads the group (a tick), so that it starts recovering. */
  nudge(group: string): void;
  /** How often progress is checked, and logged (ms). */
  readonly checkEveryMs?: number;
  readonly logEveryMs?: number;
  /** Groups nudged per check: loading is spread out, not a flood. */
  readonly nudgesPerCheck?: number;
  /**
   * Pending groups not in memory are nudged again this often: one that finished and was
   * passivated between two checks is then seen finished (ms).
   */
  readonly renudgeEveryMs?: number;
}

export class LostDiskMode {
  private state: LostDiskState | null;
  private pending = new Set<string>();
  /** The configuration each pending group recovers in (absent: the birth rule's). */
  private configs = new Map<string, Configuration>();
  private toNudge: string[] = [];
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private lastLogAt = 0;
  private lastRenudgeAt = Date.now();
  private listed = 0;

  constructor(private readonly o: LostDiskOptions) {
    this.state = o.state;
    if (o.state.phase === "recovering") this.beginRecovering(o.state.groups, o.state.configs);
  }

  /** Must a group with no local record start in recovery? (keyGroup.ts: load) */
  mustRecover(group: string): boolean {
    const s = this.state;
    if (s === null) return false;
    return s.phase === "listing" || this.pending.has(group);
  }

  /**
   * What a group with no record here does when loaded: waits while the peers' list is not
   * complete (its configuration is not known yet), recovers in the configuration the peers
   * gave if it is listed, else nothing special.
   */
  plan(group: string): RecoveryPlan {
    const s = this.state;
    if (s === null) return { kind: "none" };
    if (s.phase === "listing") return { kind: "wait" };
    if (!this.pending.has(group)) return { kind: "none" };
    return { kind: "recover", config: this.configs.get(group) ?? null };
  }

  get active(): boolean {
    return this.state !== null;
  }

  stats(): { phase: string; groupsListed: number; groupsPending: number } {
    return { phase: this.state?.phase ?? "done", groupsListed: this.listed, groupsPending: this.pending.size };
  }

  start(): void {
    if (this.state?.phase === "listing")
      this.list().catch((e: unknown) => {
        // Storage closed under it (the node stops) or failed: the mode stays on disk as it was.
        if (!this.stopped) this.o.log.error({ err: e }, "lost disk: listing the groups failed; every group keeps starting in recovery until the node restarts");
      });
    this.timer = setInterval(() => this.check(), this.o.checkEveryMs ?? 1_000);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Asks every peer for its groups where this node is a replica, until all have answered. */
  private async list(): Promise<void> {
    // Whom to ask: the nodes of the cluster as it is NOW, which the view on the lost disk no
    // longer says. Each answer carries the peer's membership view; the newest one decides who
    // must answer (its members and previous members). Until a view is known, every node this
    // node knows of (the founders) must. A node that left the cluster holds no group any more:
    // it is asked while it answers, but not waited for. (Not read from `__members`: that group
    // may need this very node to be available.)
    const self = this.o.self;
    const known = (this.o.peers?.() ?? this.o.members).filter((m) => m !== self);
    let best: MembersView | null = null;
    const required = (): NodeId[] => (best === null ? known : [...new Set([...best.members, ...best.previous])].filter((m) => m !== self));
    const groups = new Set<string>();
    const configs = new Map<string, Configuration>();
    const cursor = new Map<NodeId, string | null>();
    const done = new Set<NodeId>();
    const unanswered = (): NodeId[] => required().filter((p) => !done.has(p));
    for (let round = 0; unanswered().length > 0; round++) {
      for (const peer of [...new Set([...required(), ...known])]) {
        while (!done.has(peer) && !this.stopped) {
          const r = await ask<GroupsReply>(this.o.nc, this.o.prefix, peer, "groups", { cluster: this.o.cluster, from: self, after: cursor.get(peer) ?? null }, this.o.askTimeoutMs ?? 5_000);
          if (r === null || !r.ok || !Array.isArray(r.groups)) {
            if (r !== null && !r.ok) this.o.log.warn({ peer, error: r.error }, "lost disk: a peer refused to list its groups; asking again");
            // The group the next page starts after was dropped meanwhile (a membership change
            // moved it away): list that peer again from the start (a group twice is harmless).
            if (r !== null && !r.ok && typeof r.error === "string" && r.error.startsWith("cursor group")) cursor.set(peer, null);
            break;
          }
          const v = r.view === undefined ? null : parseView(r.view.view, r.view.version);
          if (v !== null && (best === null || newer(best, v))) {
            best = v;
            this.o.onView?.(v);
          }
          for (let i = 0; i < r.groups.length; i++) {
            const g = r.groups[i];
            if (typeof g !== "string") continue;
            groups.add(g);
            // The highest epoch any peer stores: the group's current configuration, or later.
            const c = readConfiguration(Array.isArray(r.configs) ? r.configs[i] : null);
            const have = configs.get(g);
            if (c !== null && (have === undefined || c.epoch > have.epoch)) configs.set(g, c);
          }
          if (typeof r.next === "string") cursor.set(peer, r.next);
          else done.add(peer);
        }
      }
      if (this.stopped) return;
      if (unanswered().length > 0) {
        if (round % 5 === 0)
          this.o.log.warn({ waitingFor: unanswered() }, "lost disk: waiting for every member to list the groups it holds where this node is a replica; until then no group without a record here is loaded");
        await sleep(this.o.retryMs ?? 1_000);
      }
    }
    const peers = [...done];
    // A group whose current configuration no longer names this node was left by it: it cannot
    // vote there again without joining afresh (membership.ts), so it has nothing to recover.
    const left = [...groups].filter((g) => configs.has(g) && !configs.get(g)!.replicas.includes(this.o.self));
    for (const g of left) groups.delete(g);
    const listed = [...groups];
    const state: LostDiskState = { phase: "recovering", detectedAt: this.state!.detectedAt, groups: listed, configs: listed.map((g) => configs.get(g) ?? null) };
    await this.o.storage.putNodeRecords([[LOST_DISK_RECORD, state]]);
    this.o.log.warn(
      { groups: groups.size, peers, reconfigured: listed.filter((g) => (configs.get(g)?.epoch ?? 0) > 0).length, left: left.length },
      `lost disk: the peers list ${groups.size} groups where this node is a replica; each recovers, in the configuration the peers hold, before this node votes in it (other groups vote at once)`,
    );
    this.state = state;
    this.beginRecovering(state.groups, state.configs);
  }

  private beginRecovering(groups: readonly string[], configs: readonly (Configuration | null)[] | undefined): void {
    this.listed = groups.length;
    this.pending = new Set(groups);
    this.configs = new Map();
    if (configs !== undefined) groups.forEach((g, i) => configs[i] != null && this.configs.set(g, configs[i]!));
    this.toNudge = [...groups];
  }

  private check(): void {
    if (this.state?.phase !== "recovering" || this.stopped) return;
    for (let n = this.o.nudgesPerCheck ?? 500; n > 0 && this.toNudge.length > 0; n--) this.o.nudge(this.toNudge.pop()!);
    for (const group of this.pending) {
      const replica = this.o.replicaOf(group);
      if (replica !== null && replica.recovering === null) this.pending.delete(group);
    }
    if (this.pending.size === 0) {
      this.finish().catch((e: unknown) => this.o.log.error({ err: e }, "lost disk: recording the end of recovery failed; it is checked again at the next start"));
      return;
    }
    const now = Date.now();
    if (this.toNudge.length === 0 && now - this.lastRenudgeAt >= (this.o.renudgeEveryMs ?? 30_000)) {
      this.lastRenudgeAt = now;
      for (const group of this.pending) if (this.o.replicaOf(group) === null) this.toNudge.push(group);
    }
    if (now - this.lastLogAt >= (this.o.logEveryMs ?? 10_000)) {
      this.lastLogAt = now;
      this.o.log.info(
        { groupsPending: this.pending.size, groupsListed: this.listed, some: [...this.pending].slice(0, 5) },
        "lost disk: groups still recovering (each finishes once a write is chosen in it while it is loaded here); this node does not vote in them yet",
      );
    }
  }

  private async finish(): Promise<void> {
    if (this.state === null) return;
    const since = this.state.detectedAt;
    this.state = null;
    this.stop();
    await this.o.storage.putNodeRecords([[LOST_DISK_RECORD, undefined]]);
    this.o.log.warn({ groupsRecovered: this.listed, tookMs: Date.now() - since }, "lost disk: recovery complete; this node votes in every group again");
  }
}
