// The durable side of one replica of a key-group: what is fsynced before anyone is told,
// and how one step's changes (a Persist record) apply to it. Storage engines store exactly
// this; the in-memory engine and the simulation apply Persist records with applyPersist.

import type { Ballot } from "./ballot.js";
import type { AcceptedValue, ChosenEntry, RequestRecord } from "./messages.js";
import type { Configuration, Entry } from "./ops.js";

/** The small per-group record: the slim log. */
export interface DurableMeta {
  /** The last chosen-and-applied instance; null before the first. */
  readonly chosen: ChosenEntry | null;
  /** Highest ballot promised at the open instance chosen+1. */
  readonly promised: Ballot | null;
  /** Ballot and value accepted at the open instance chosen+1, if any. */
  readonly accepted: AcceptedValue | null;
  /**
   * Set while this replica recovers a group it lost (a record failed its checksum): it forgot
   * what it promised and accepted, so it must not vote until that cannot matter (recovery.ts).
   * Absent on a healthy replica.
   */
  readonly recovering?: true;
  /**
   * The configuration of the open instance chosen+1 (membership.ts), once it is not the birth
   * configuration (a reconfiguration was chosen, or this replica is joining: then it is the
   * configuration it is to join). Absent while the group runs in its birth configuration.
   */
  readonly config?: Configuration;
  /**
   * Set while this replica joins a group it does not hold yet: the nodes to copy the data from.
   * It votes only once it installed a copy whose configuration includes it (membership.ts).
   */
  readonly joining?: readonly string[];
}

export const EMPTY_META: DurableMeta = { chosen: null, promised: null, accepted: null };

/** One step's durable changes to one group; storage writes it atomically with sync. */
export interface Persist {
  readonly group: string;
  /** The whole meta record after the step (it is small). */
  readonly meta: DurableMeta;
  /** When true, every key and request record of the group is dropped first (data catch-up). */
  readonly reset: boolean;
  /** Changed keys, in order; null deletes. */
  readonly keys: readonly (readonly [key: string, entry: Entry | null])[];
  /** Request-id records added (at most one per id; replaces a stored record of that id). */
  readonly requests: readonly RequestRecord[];
  /**
   * Request ids forgotten (evicted oldest-first). Disjoint from `requests`, so the order an
   * engine writes the two in does not matter (storage asserts it).
   */
  readonly forgetRequests: readonly string[];
}

/** A group as storage holds it: what a replica reloads after a restart. */
export interface DurableGroup {
  meta: DurableMeta;
  keys: Map<string, Entry>;
  /** Sorted by seq. */
  requests: RequestRecord[];
}

export function emptyDurableGroup(): DurableGroup {
  return { meta: EMPTY_META, keys: new Map(), requests: [] };
}

/** Applies one Persist record to a durable image, in place. */
export function applyPersist(image: DurableGroup, p: Persist): void {
  if (p.reset) {
    image.keys.clear();
    image.requests = [];
  }
  image.meta = p.meta;
  for (const [key, entry] of p.keys) {
    if (entry === null) image.keys.delete(key);
    else image.keys.set(key, entry);
  }
  // Records are keyed by request id (as in LevelDB): an add replaces, a forget removes.
  if (p.requests.length > 0 || p.forgetRequests.length > 0) {
    const drop = new Set(p.forgetRequests);
    for (const r of p.requests) drop.add(r.requestId);
    image.requests = image.requests.filter((r) => !drop.has(r.requestId));
    for (const r of p.requests) image.requests.push(r);
  }
}
