// This node's view of the membership log (issue 13, docs/DESIGN.md "Membership changes"): the
// system key-group `__members` holds one key, `view`, whose value is
//   {epoch, members, previous, phase}
// written only by the members admin op (membersAdmin.ts), a cas on its version. Every node
// keeps the last view it read in a node record (so a restart does not fall back to the founding
// list) and reads `__members` again every second, through the API like any client.
//
// Phases of a change from epoch E (members `previous`) to E+1 (`members`):
//   stable     every group lives where `members` places it; a group is born in placement(members);
//   migrating  groups move from placement(previous) to placement(members); a group no node holds
//              is still born in placement(previous), at epoch E, like on a node that has not
//              heard of the change yet: both births agree, and the mover then moves the group;
//   sealing    no node begins a birth; it still takes part (as an acceptor) in a birth in the old
//              placement that a node still at `migrating` began (else that birth, refused by a
//              majority, would leave a group held by one node that never moves). The node that
//              began a birth counts the group as left to move (mover.ts) until it moved;
//   sealed     no births at all: entered once every node swept after it saw `sealing` with
//              nothing left (so no birth in the old placement is under way), left once every
//              node saw `sealed`; then `stable`, births go to placement(members). Without these
//              steps a node still at `migrating` (births in the old placement) and one already at
//              `stable` (births in the new) could each create the same group. A node at `sealed`
//              refuses a new-placement birth a `stable` node began only until it reads `stable`
//              too (about a second): the proposer's retry then finds it.
// The founding member list (`--members`, the same on every node, also on nodes added later) is
// the birth configuration of `__members` and of every group born at epoch 0; a group born later
// stores its birth configuration with its first persist (core.ts restoreReplica), so a node
// never needs to know an old epoch's member list to load a group.

import type { Logger } from "pino";
import type { NodeId } from "../protocol/ballot.js";
import type { Configuration } from "../protocol/ops.js";
import { replicasFor } from "../protocol/placement.js";
import type { Storage } from "../storage/storage.js";

export const MEMBERS_GROUP = "__members";
export const MEMBERS_KEY = "view";
/** Writes to `__members` carry this header (set by the admin op); others are refused. */
export const MEMBERS_WRITE_HEADER = "PaxosStore-Members-Write";
const VIEW_RECORD = "membersView";

export type Phase = "stable" | "migrating" | "sealing" | "sealed";

export interface MembersView {
  readonly epoch: number;
  readonly members: readonly NodeId[];
  /** The members of epoch - 1 while a change is under way; empty when stable. */
  readonly previous: readonly NodeId[];
  readonly phase: Phase;
  /** The version of `__members`/`view` this was read at (0: never written: the founding view). */
  readonly version: number;
}

export function foundingView(founders: readonly NodeId[]): MembersView {
  return { epoch: 0, members: [...founders], previous: [], phase: "stable", version: 0 };
}

export function parseView(x: unknown, version: number): MembersView | null {
  const r = x as Record<string, unknown> | null;
  if (typeof r !== "object" || r === null) return null;
  const isIds = (a: unknown): a is string[] => Array.isArray(a) && a.every((m) => typeof m === "string" && m.length > 0);
  if (typeof r.epoch !== "number" || !Number.isSafeInteger(r.epoch) || r.epoch < 0 || !isIds(r.members) || !isIds(r.previous)) return null;
  if (r.phase !== "stable" && r.phase !== "migrating" && r.phase !== "sealing" && r.phase !== "sealed") return null;
  return { epoch: r.epoch, members: r.members, previous: r.previous, phase: r.phase, version };
}

/** Is `b` newer than `a`? Versions of one key only grow, so the version decides. */
export function newer(a: MembersView, b: MembersView): boolean {
  return b.version > a.version;
}

export class MembersViewHolder {
  private current: MembersView;
  private readonly listeners: ((v: MembersView) => void)[] = [];
  private placementCache = new Map<string, readonly NodeId[]>();

  constructor(
    readonly self: NodeId,
    readonly founders: readonly NodeId[],
    readonly replication: number,
    private readonly storage: Storage,
    private readonly log: Logger,
  ) {
    this.current = foundingView(founders);
  }

  get view(): MembersView {
    return this.current;
  }

  async load(): Promise<void> {
    const stored = await this.storage.getNodeRecord(VIEW_RECORD).catch(() => undefined);
    const r = stored as { view?: unknown; version?: unknown } | undefined;
    if (r !== undefined && typeof r.version === "number") {
      const v = parseView(r.view, r.version);
      if (v !== null) this.current = v;
    }
  }

  onChange(listener: (v: MembersView) => void): void {
    this.listeners.push(listener);
  }

  /** Adopts `v` if it is newer; stored before it is used, so a restart never goes back. */
  async adopt(v: MembersView): Promise<boolean> {
    if (!newer(this.current, v)) return false;
    await this.storage.putNodeRecords([[VIEW_RECORD, { version: v.version, view: { epoch: v.epoch, members: v.members, previous: v.previous, phase: v.phase } }]]);
    if (!newer(this.current, v)) return false;
    this.current = v;
    this.placementCache = new Map();
    this.log.info({ event: "members_view", epoch: v.epoch, members: v.members, previous: v.previous, phase: v.phase }, `membership epoch ${v.epoch} (${v.phase}): ${v.members.join(",")}`);
    for (const l of this.listeners) l(v);
    return true;
  }

  /** Where the group should live under the current members, preferred first. */
  target(group: string): readonly NodeId[] {
    let r = this.placementCache.get(group);
    if (r === undefined) {
      if (this.placementCache.size > 100_000) this.placementCache.clear();
      this.placementCache.set(group, (r = replicasFor(group, this.current.members, this.replication)));
    }
    return r;
  }

  /** Where it lived under the previous members (empty when stable). */
  previousPlacement(group: string): readonly NodeId[] {
    return this.current.previous.length === 0 ? [] : replicasFor(group, this.current.previous, this.replication);
  }

  /**
   * The configuration a group no node holds is born in (see the phases above); null while no
   * group may be born here. `initiating`: a client's call would create it here (else a peer's
   * Paxos message: this node would take part in a birth another node began).
   */
  birth(group: string, initiating: boolean): Configuration | null {
    const v = this.current;
    if (group === MEMBERS_GROUP) return { epoch: 0, replicas: replicasFor(group, this.founders, this.replication) };
    if (v.phase === "stable") return { epoch: v.epoch, replicas: [...this.target(group)] };
    if (v.phase === "migrating" || (v.phase === "sealing" && !initiating)) return { epoch: v.epoch - 1, replicas: this.previousPlacement(group) };
    return null;
  }

  /** The configuration of a stored group that carries none: born at epoch 0 in the founders' placement. */
  foundingBirth(group: string): Configuration {
    return { epoch: 0, replicas: replicasFor(group, this.founders, this.replication) };
  }

  /**
   * Nodes to try for a group, preferred first: while a change is under way the old placement
   * first (it holds the groups not moved yet; a replica that moved answers where to), then the
   * new one.
   */
  route(group: string): NodeId[] {
    const out = [...this.previousPlacement(group)];
    for (const n of this.target(group)) if (!out.includes(n)) out.push(n);
    return out;
  }

  /** Every node of the cluster as this node knows it. */
  known(): Set<NodeId> {
    return new Set([...this.founders, ...this.current.members, ...this.current.previous, this.self]);
  }
}
