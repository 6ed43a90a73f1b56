// The in-memory engine: the simulation's disk. A simulated crash keeps this object (what was
// synced) and drops the replica's in-memory state, so a replica restarts from exactly what it
// had committed. It is synchronous underneath because the simulation is.
//
// Images hold the Persist records' own meta and Entry objects (they are readonly by contract);
// loads copy the Map and the request array, which are the parts a replica mutates.

import { applyPersist, emptyDurableGroup, type DurableGroup, type DurableMeta, type Persist } from "../protocol/durable.js";
import { StorageClosedError } from "./errors.js";
import { assertStorableBatch, type Storage } from "./storage.js";

export class MemoryStorage implements Storage {
  private readonly groups = new Map<string, DurableGroup>();
  private readonly nodeRecords = new Map<string, unknown>();
  // Starts open so the synchronous simulation can use it without awaiting open().
  private isOpen = true;

  async open(): Promise<void> {
    this.isOpen = true;
  }

  async close(): Promise<void> {
    this.isOpen = false;
  }

  async loadGroup(group: string): Promise<DurableGroup | null> {
    return this.loadGroupSync(group);
  }

  async loadMeta(group: string): Promise<DurableMeta | null> {
    this.assertOpen();
    return this.groups.get(group)?.meta ?? null;
  }

  async commit(batch: readonly Persist[]): Promise<void> {
    this.commitSync(batch);
  }

  async *listGroups(): AsyncIterable<string> {
    this.assertOpen();
    // A snapshot of the names, so a commit during iteration cannot disturb it.
    for (const group of [...this.groups.keys()]) yield group;
  }

  async getNodeRecord(name: string): Promise<unknown> {
    this.assertOpen();
    // A copy, as LevelDB decodes a fresh object: the caller may not change what is stored.
    const stored = this.nodeRecords.get(name);
    return stored === undefined ? undefined : structuredClone(stored);
  }

  async putNodeRecords(records: readonly (readonly [name: string, value: unknown])[]): Promise<void> {
    this.assertOpen();
    for (const [name, value] of records) {
      if (value === undefined) this.nodeRecords.delete(name);
      else this.nodeRecords.set(name, structuredClone(value));
    }
  }

  async dropGroup(group: string): Promise<void> {
    this.assertOpen();
    this.groups.delete(group);
  }

  loadGroupSync(group: string): DurableGroup | null {
    this.assertOpen();
    const image = this.groups.get(group);
    if (image === undefined) return null;
    return {
      meta: image.meta,
      keys: new Map(image.keys),
      // Stable sort: the same order LevelStorage gives, whatever order seqs were added in.
      requests: image.requests.slice().sort((a, b) => a.seq - b.seq),
    };
  }

  /** Applies the batch at once: all of it or (on invalid input) none of it. */
  commitSync(batch: readonly Persist[]): void {
    this.assertOpen();
    assertStorableBatch(batch);
    for (const p of batch) {
      let image = this.groups.get(p.group);
      if (image === undefined) {
        image = emptyDurableGroup();
        this.groups.set(p.group, image);
      }
      applyPersist(image, p);
    }
  }

  /** Names of every group written, for the simulation's checkers. */
  listGroupsSync(): string[] {
    this.assertOpen();
    return [...this.groups.keys()];
  }

  private assertOpen(): void {
    if (!this.isOpen) throw new StorageClosedError();
  }
}
