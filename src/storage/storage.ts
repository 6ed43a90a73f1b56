// The durable side of a node, as one interface. The key-group actors (through StorageWriter)
// and the simulation see only this; LevelStorage and MemoryStorage fill it in and both run the
// same conformance suite (test/storage/conformance.ts), after abstract-level's split of a
// consumer API from its backends.

import type { DurableGroup, DurableMeta, Persist } from "../protocol/durable.js";
import { StorageInvalidError } from "./errors.js";

export interface Storage {
  /** Opens the engine; an engine may be opened again after close. */
  open(): Promise<void>;
  /** Waits for commits in flight, then closes. Idempotent. */
  close(): Promise<void>;
  /**
   * The group's durable image, or null when the group was never written. The result belongs
   * to the caller: mutating its Map or array never changes what is stored. Requests are sorted
   * by seq. Throws StorageCorruptError rather than serve a record that fails its checksum.
   */
  loadGroup(group: string): Promise<DurableGroup | null>;
  /**
   * The group's meta record alone (its slim log and configuration), or null when the group was
   * never written: one read, for a question about many groups (actors/peerControl.ts).
   */
  loadMeta(group: string): Promise<DurableMeta | null>;
  /**
   * Writes every record of the batch atomically and durably (fsync) before resolving. Records
   * apply in order, each as applyPersist would, so several records for one group may share a
   * batch. Rejects with StorageInvalidError, writing nothing, if any name is ill-formed.
   */
  commit(batch: readonly Persist[]): Promise<void>;
  /** Every group ever written, each once, in an engine-specific order. */
  listGroups(): AsyncIterable<string>;
  /**
   * A node-level record (not of any group: the node's identity, the members it has seen),
   * or undefined when never written. Throws StorageCorruptError if it fails its checksum.
   */
  getNodeRecord(name: string): Promise<unknown>;
  /**
   * Writes node-level records atomically and durably (fsync) before resolving; undefined
   * deletes. Ordered with commit(): a record written after a commit resolved lands after it.
   */
  putNodeRecords(records: readonly (readonly [name: string, value: unknown])[]): Promise<void>;
  /**
   * Deletes every record of a group (meta, keys, request ids), durably, ordered with commit():
   * for a copy this node no longer replicates after a membership change (actors/mover.ts).
   */
  dropGroup(group: string): Promise<void>;
}

// A lone surrogate has no UTF-8 form: encoding would map it to U+FFFD and merge two names.
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Rejects a batch any engine would store unfaithfully. Every engine calls it before writing,
 * so the memory engine in the simulation refuses exactly what LevelDB refuses.
 */
export function assertStorableBatch(batch: readonly Persist[]): void {
  for (const p of batch) {
    assertStorableName("group name", p.group);
    for (const [key] of p.keys) assertStorableName(`key in group ${JSON.stringify(p.group)}`, key);
    const added = new Set<string>();
    for (const r of p.requests) {
      assertStorableName("request id", r.requestId);
      if (added.has(r.requestId)) throw new StorageInvalidError(`request id ${JSON.stringify(r.requestId)} is added twice in one persist of group ${JSON.stringify(p.group)}`);
      added.add(r.requestId);
    }
    for (const id of p.forgetRequests) {
      assertStorableName("request id", id);
      // Both would leave the id's fate to the engine's write order (see durable.ts: Persist).
      if (added.has(id)) throw new StorageInvalidError(`request id ${JSON.stringify(id)} is both added and forgotten in one persist of group ${JSON.stringify(p.group)}`);
    }
  }
}

function assertStorableName(what: string, name: string): void {
  if (typeof name !== "string") throw new StorageInvalidError(`${what} is not a string`);
  if (LONE_SURROGATE.test(name)) {
    throw new StorageInvalidError(`${what} ${JSON.stringify(name)} is not well-formed UTF-16`);
  }
}
