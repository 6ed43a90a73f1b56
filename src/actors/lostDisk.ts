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

import { setTimeout as sleep } from "node:timers/promises";
import type { NodeId } from "../protocol/ballot.js";
import type { GroupState } from "../protocol/state.js";
import type { Storage } from "../storage/storage.js";
import { ask, type GroupsReply, type PeerQuestions } from "./peerControl.js";

export const LOST_DISK_RECORD = "lost-disk";

export type LostDiskState =
  | { readonly phase: "listing"; readonly detectedAt: number }
  | { readonly phase: "recovering"; readonly detectedAt: number; readonly groups: readonly string[] };

/** The durable lost-disk record as read at start; an unreadable one is read the widest way. */
export function readLostDiskRecord(x: unknown): LostDiskState | null {
  if (x === undefined) return null;
  const r = (typeof x === "object" && x !== null ? x : {}) as Record<string, unknown>;
  if (r.phase === "listing" && typeof r.detectedAt === "number") return { phase: "listing", detectedAt: r.detectedAt };
  if (r.phase === "recovering" && typeof r.detectedAt === "number" && Array.isArray(r.groups) && r.groups.every((g) => typeof g === "string"))
    return { phase: "recovering", detectedAt: r.detectedAt, groups: r.groups as string[] };
  // Unreadable: the safe reading is the widest one.
  return { phase: "listing", detectedAt: typeof r.detectedAt === "number" ? r.detectedAt : Date.now() };
}

export interface LostDiskOptions extends PeerQuestions {
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
  private toNudge: string[] = [];
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private lastLogAt = 0;
  private lastRenudgeAt = Date.now();
  private listed = 0;

  constructor(private readonly o: LostDiskOptions) {
    this.state = o.state;
    if (o.state.phase === "recovering") this.beginRecovering(o.state.groups);
  }

  /** Must a group with no local record start in recovery? (keyGroup.ts: load) */
  mustRecover(group: string): boolean {
    const s = this.state;
    if (s === null) return false;
    return s.phase === "listing" || this.pending.has(group);
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
    const peers = this.o.members.filter((m) => m !== this.o.self);
    const groups = new Set<string>();
    const cursor = new Map<NodeId, string | null>(peers.map((p) => [p, null]));
    const done = new Set<NodeId>();
    for (let round = 0; done.size < peers.length; round++) {
      for (const peer of peers) {
        while (!done.has(peer) && !this.stopped) {
          const r = await ask<GroupsReply>(this.o.nc, this.o.prefix, peer, "groups", { cluster: this.o.cluster, from: this.o.self, after: cursor.get(peer)! }, this.o.askTimeoutMs ?? 5_000);
          if (r === null || !r.ok || !Array.isArray(r.groups)) break;
          for (const g of r.groups) if (typeof g === "string") groups.add(g);
          if (typeof r.next === "string") cursor.set(peer, r.next);
          else done.add(peer);
        }
      }
      if (this.stopped) return;
      if (done.size < peers.length) {
        if (round % 5 === 0)
          this.o.log.warn({ waitingFor: peers.filter((p) => !done.has(p)) }, "lost disk: waiting for every peer to list the groups it holds where this node is a replica; until then every group this node loads starts in recovery");
        await sleep(this.o.retryMs ?? 1_000);
      }
    }
    const state: LostDiskState = { phase: "recovering", detectedAt: this.state!.detectedAt, groups: [...groups] };
    await this.o.storage.putNodeRecords([[LOST_DISK_RECORD, state]]);
    this.o.log.warn({ groups: groups.size }, `lost disk: the peers list ${groups.size} groups where this node is a replica; each recovers before this node votes in it (other groups vote at once)`);
    this.state = state;
    this.beginRecovering(state.groups);
  }

  private beginRecovering(groups: readonly string[]): void {
    this.listed = groups.length;
    this.pending = new Set(groups);
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
