// The LevelDB engine (level v10 / classic-level): one directory per node. Key layout is in
// layout.ts, value framing and checksums in record.ts. Every commit is one LevelDB batch
// written with sync: true, so a batch is on disk, whole or not at all, before it resolves.

import { Level } from "level";
import type { DurableGroup, DurableMeta, Persist } from "../protocol/durable.js";
import type { RequestRecord } from "../protocol/messages.js";
import type { Entry } from "../protocol/ops.js";
import {
  StorageClosedError,
  StorageCorruptError,
  StorageError,
  StorageFormatError,
  StorageIOError,
  StorageLockedError,
} from "./errors.js";
import {
  FORMAT_KEY,
  GROUPS_END,
  RecordKind,
  dataKey,
  groupPrefix,
  groupRange,
  metaKey,
  nameAfterKind,
  nodeRecordKey,
  parseKey,
  requestKey,
  writtenMarkKey,
} from "./layout.js";
import { decodeEntry, decodeMeta, decodeRecord, decodeRequest, encodeEntry, encodeRecord } from "./record.js";
import { assertStorableBatch, type Storage } from "./storage.js";

/**
 * Bumped when the key layout or record framing changes. 2 added the written marks
 * (layout.ts); a directory of layout 1 is upgraded in place when opened (upgradeFrom1).
 */
export const LAYOUT_VERSION = 2;

/** Marks written per synced batch while upgrading a layout-1 directory. */
const UPGRADE_CHUNK = 10_000;

/** Records read per iterator call: enough to amortise the native hop, small enough to stream. */
const READ_CHUNK = 1024;

const EMPTY = new Uint8Array(0);

/**
 * Groups whose written mark this process knows is on disk (see `markedGroups`). At this many
 * the set starts over: a group missing from it only has its mark written again.
 */
const MARKED_GROUPS_MAX = 100_000;

type Op = { type: "put"; key: Uint8Array; value: Uint8Array } | { type: "del"; key: Uint8Array };

export class LevelStorage implements Storage {
  readonly location: string;
  private readonly db: Level<Uint8Array, Uint8Array>;
  private isOpen = false;
  private opening: Promise<void> | null = null;
  // Commits run one after another: a reset reads the group's keys and then writes, and a
  // commit interleaved between the two would leave keys the reset should have dropped.
  private commitTail: Promise<void> = Promise.resolve();
  /**
   * Groups whose written mark is known to be on disk: loaded with a meta record (layout 2 keeps
   * the mark with every meta record), or written by a commit of this process that succeeded.
   * A commit skips the mark of these (one put less per group per batch; the mark never changes
   * once written). Dropping a group, or a failed commit, takes it out; a restore clears it.
   */
  private readonly markedGroups = new Set<string>();

  constructor(location: string) {
    this.location = location;
    this.db = new Level<Uint8Array, Uint8Array>(location, { keyEncoding: "view", valueEncoding: "view" });
  }

  open(): Promise<void> {
    if (this.isOpen) return Promise.resolve();
    this.opening ??= this.openOnce().finally(() => {
      this.opening = null;
    });
    return this.opening;
  }

  private async openOnce(): Promise<void> {
    try {
      await this.db.open();
    } catch (err) {
      if (levelCode(err) === "LEVEL_LOCKED" || levelCode((err as { cause?: unknown }).cause) === "LEVEL_LOCKED") {
        throw new StorageLockedError(this.location, { cause: err });
      }
      throw new StorageIOError(`cannot open storage at ${this.location}: ${(err as Error).message}`, { cause: err });
    }
    try {
      await this.checkFormat();
    } catch (err) {
      await this.db.close().catch(() => undefined);
      throw err instanceof StorageError ? err : new StorageIOError("cannot read storage format", { cause: err });
    }
    this.isOpen = true;
  }

  private async checkFormat(): Promise<void> {
    const stored = await this.db.get(FORMAT_KEY);
    if (stored === undefined) {
      await this.db.put(FORMAT_KEY, encodeRecord(FORMAT_KEY, { version: LAYOUT_VERSION }), { sync: true });
      return;
    }
    const format = decodeRecord(null, FORMAT_KEY, stored) as { version?: unknown } | null;
    if (format?.version === 1) {
      await this.upgradeFrom1();
      return;
    }
    if (format?.version !== LAYOUT_VERSION) {
      throw new StorageFormatError(
        `storage at ${this.location} has layout version ${String(format?.version)}, this build reads ${LAYOUT_VERSION}`,
      );
    }
  }

  /**
   * Layout 1 had no written marks: every group listed gets its mark (one seek per group), then
   * the format record says 2. A crash in between only repeats the work: marks are idempotent
   * and the format record is written last.
   */
  private async upgradeFrom1(): Promise<void> {
    const it = this.db.keys({ lt: GROUPS_END });
    try {
      let marks: Uint8Array[] = [];
      const flush = async (): Promise<void> => {
        if (marks.length === 0) return;
        const batch = this.db.batch();
        for (const key of marks) batch.put(key, EMPTY);
        await batch.write({ sync: true });
        marks = [];
      };
      for (;;) {
        const key = await it.next();
        if (key === undefined) break;
        const parsed = parseKey(key);
        if (parsed === null) throw new StorageCorruptError(null, key, "key does not follow the layout");
        const prefix = key.subarray(0, parsed.prefixLength);
        marks.push(writtenMarkKey(prefix));
        if (marks.length >= UPGRADE_CHUNK) await flush();
        it.seek(groupRange(prefix).lt);
      }
      await flush();
    } finally {
      await it.close().catch(() => undefined);
    }
    await this.db.put(FORMAT_KEY, encodeRecord(FORMAT_KEY, { version: LAYOUT_VERSION }), { sync: true });
  }

  async close(): Promise<void> {
    if (this.opening !== null) await this.opening.catch(() => undefined);
    if (!this.isOpen) return;
    this.isOpen = false;
    // Commits already accepted finish first: their callers are waiting for an fsync.
    await this.commitTail;
    await this.db.close();
  }

  async loadGroup(group: string): Promise<DurableGroup | null> {
    this.assertOpen();
    const prefix = groupPrefix(group);
    // Two synchronous point reads decide "never written here", the common case for a group's
    // first use, without an iterator (layout.ts, "The written mark"). The mark is read first:
    // a commit writes both in one atomic batch, so one landing between the two reads shows the
    // meta record and takes the iterator below, which reads its own snapshot. A drop deletes
    // both at once too, and a group's drop and load are serialised by its actor.
    let marked: boolean;
    let metaStored: boolean;
    try {
      marked = this.db.getSync(writtenMarkKey(prefix)) !== undefined;
      metaStored = this.db.getSync(metaKey(prefix)) !== undefined;
    } catch (err) {
      throw this.failure(err, `loading group ${JSON.stringify(group)}`);
    }
    if (!metaStored) {
      if (marked) throw new StorageCorruptError(group, metaKey(prefix), "group was written here (its mark is stored) but has no meta record");
      return null;
    }
    let meta: DurableMeta | null = null;
    let firstKey: Uint8Array | null = null;
    const keys = new Map<string, Entry>();
    const requests: RequestRecord[] = [];
    // One iterator reads the whole group from one implicit snapshot: a concurrent commit is
    // seen entirely or not at all.
    const it = this.db.iterator(groupRange(prefix));
    try {
      for (;;) {
        const chunk = await it.nextv(READ_CHUNK);
        if (chunk.length === 0) break;
        for (const [key, value] of chunk) {
          firstKey ??= key;
          const kind = key[prefix.length];
          if (kind === RecordKind.Meta) {
            if (key.length !== prefix.length + 1) throw new StorageCorruptError(group, key, "meta key has a suffix");
            meta = decodeMeta(group, key, value);
            continue;
          }
          const name = nameAfterKind(key, prefix.length);
          if (name === null) throw new StorageCorruptError(group, key, "key name is not UTF-8");
          if (kind === RecordKind.Data) keys.set(name, decodeEntry(group, key, value));
          else if (kind === RecordKind.Request) requests.push(decodeRequest(group, key, value, name));
          else throw new StorageCorruptError(group, key, `unknown record kind ${kind}`);
        }
      }
    } catch (err) {
      throw this.failure(err, `loading group ${JSON.stringify(group)}`);
    } finally {
      await it.close().catch(() => undefined);
    }
    if (meta === null) {
      // Every commit writes the meta record, so other records without it mean a lost record.
      if (firstKey !== null) throw new StorageCorruptError(group, firstKey, "group has records but no meta record");
      return null;
    }
    requests.sort((a, b) => a.seq - b.seq);
    if (marked) this.noteMarked(group);
    return { meta, keys, requests };
  }

  commit(batch: readonly Persist[]): Promise<void> {
    try {
      this.assertOpen();
      assertStorableBatch(batch);
    } catch (err) {
      return Promise.reject(err);
    }
    if (batch.length === 0) return Promise.resolve();
    const done = this.commitTail.then(() => this.writeBatch(batch));
    this.commitTail = done.catch(() => undefined);
    return done;
  }

  private async writeBatch(batch: readonly Persist[]): Promise<void> {
    try {
      const ops = await this.batchOps(batch);
      // A chained batch, not db.batch(array): the same single atomic LevelDB WriteBatch, but
      // abstract-level's array path validates and copies every op on the main thread, which
      // cost 4-7x more event-loop time per batch here (bench/README.md, issue 11).
      const chained = this.db.batch();
      for (const op of ops) {
        if (op.type === "put") chained.put(op.key, op.value);
        else chained.del(op.key);
      }
      await chained.write({ sync: true });
    } catch (err) {
      // What this batch would have marked may not be on disk: mark those groups again next time.
      for (const p of batch) this.markedGroups.delete(p.group);
      throw this.failure(err, "commit");
    }
    for (const p of batch) this.noteMarked(p.group);
  }

  private noteMarked(group: string): void {
    if (this.markedGroups.size >= MARKED_GROUPS_MAX) this.markedGroups.clear();
    this.markedGroups.add(group);
  }

  /** The batch's records as LevelDB ops, in order: a later op on the same key wins. */
  private async batchOps(batch: readonly Persist[]): Promise<Op[]> {
    const ops: Op[] = [];
    // Keys this batch put for each group, so a later reset in the same batch drops them too.
    const putInBatch = new Map<string, Uint8Array[]>();
    const resetGroups = new Set<string>();
    const marked = new Set<string>();
    // A group's meta record is whole in every persist: only its last one in the batch is
    // written (a learn riding with the next accept of its group would otherwise encode twice).
    const lastOfGroup = new Map<string, number>();
    batch.forEach((p, i) => lastOfGroup.set(p.group, i));
    for (let i = 0; i < batch.length; i++) {
      const p = batch[i]!;
      const prefix = groupPrefix(p.group);
      let put = putInBatch.get(p.group);
      if (put === undefined) {
        put = [];
        putInBatch.set(p.group, put);
      }
      if (p.reset) {
        // Disk keys are read once per group: a second reset in the batch has already queued
        // their deletes, and nothing else in the batch can have added disk keys since.
        if (!resetGroups.has(p.group)) {
          resetGroups.add(p.group);
          for (const key of await this.recordKeys(prefix)) ops.push({ type: "del", key });
        }
        for (const key of put) ops.push({ type: "del", key });
        put.length = 0;
      }
      if (lastOfGroup.get(p.group) === i) {
        const meta = metaKey(prefix);
        ops.push({ type: "put", key: meta, value: encodeRecord(meta, p.meta) });
      }
      // With every meta record, in the same batch (layout.ts, "The written mark"), unless this
      // process knows it is on disk already (markedGroups).
      if (!marked.has(p.group) && !this.markedGroups.has(p.group)) {
        marked.add(p.group);
        ops.push({ type: "put", key: writtenMarkKey(prefix), value: EMPTY });
      }
      for (const [name, entry] of p.keys) {
        const key = dataKey(prefix, name);
        if (entry === null) {
          ops.push({ type: "del", key });
        } else {
          ops.push({ type: "put", key, value: encodeEntry(key, entry) });
          put.push(key);
        }
      }
      // Adds and forgets are disjoint (assertStorableBatch), so their order does not matter.
      for (const record of p.requests) {
        const key = requestKey(prefix, record.requestId);
        ops.push({ type: "put", key, value: encodeRecord(key, record) });
        put.push(key);
      }
      for (const requestId of p.forgetRequests) ops.push({ type: "del", key: requestKey(prefix, requestId) });
    }
    return ops;
  }

  async loadMeta(group: string): Promise<DurableMeta | null> {
    this.assertOpen();
    const key = metaKey(groupPrefix(group));
    let stored: Uint8Array | undefined;
    try {
      // Synchronous: a point read costs ~5 us here, the engine's async path ~80 us of CPU.
      stored = this.db.getSync(key);
    } catch (err) {
      throw this.failure(err, `reading the meta record of group ${JSON.stringify(group)}`);
    }
    return stored === undefined ? null : decodeMeta(group, key, stored);
  }

  async getNodeRecord(name: string): Promise<unknown> {
    this.assertOpen();
    const key = nodeRecordKey(name);
    let stored: Uint8Array | undefined;
    try {
      stored = await this.db.get(key);
    } catch (err) {
      throw this.failure(err, `reading node record ${name}`);
    }
    return stored === undefined ? undefined : decodeRecord(null, key, stored);
  }

  putNodeRecords(records: readonly (readonly [name: string, value: unknown])[]): Promise<void> {
    try {
      this.assertOpen();
    } catch (err) {
      return Promise.reject(err);
    }
    const ops: Op[] = records.map(([name, value]) => {
      const key = nodeRecordKey(name);
      return value === undefined ? { type: "del", key } : { type: "put", key, value: encodeRecord(key, value) };
    });
    // Through the commit queue: ordered with group commits, and close() waits for it.
    const done = this.commitTail.then(async () => {
      try {
        await this.db.batch(ops, { sync: true });
      } catch (err) {
        throw this.failure(err, "writing node records");
      }
    });
    this.commitTail = done.catch(() => undefined);
    return done;
  }

  dropGroup(group: string): Promise<void> {
    const done = this.commitTail.then(async () => {
      this.assertOpen();
      // Here, not at the call: a commit queued before the drop runs first and may note the group
      // again; every commit after it writes the mark anew.
      this.markedGroups.delete(group);
      const prefix = groupPrefix(group);
      try {
        const ops: Op[] = (await this.recordKeys(prefix)).map((key) => ({ type: "del", key }));
        ops.push({ type: "del", key: metaKey(prefix) });
        ops.push({ type: "del", key: writtenMarkKey(prefix) });
        await this.db.batch(ops, { sync: true });
      } catch (err) {
        throw this.failure(err, `dropping group ${group}`);
      }
    });
    this.commitTail = done.catch(() => undefined);
    return done;
  }

  /**
   * Every record of the store, raw (key and checksummed value as stored), from one snapshot:
   * a LevelDB iterator reads the state as of its creation, so writes that land meanwhile are
   * not half in it. For backups (actors/backup.ts) while the node serves.
   */
  async *exportRecords(): AsyncGenerator<[key: Uint8Array, value: Uint8Array]> {
    this.assertOpen();
    const it = this.db.iterator();
    try {
      for (;;) {
        const chunk = await it.nextv(READ_CHUNK);
        if (chunk.length === 0) return;
        for (const entry of chunk) yield entry;
      }
    } finally {
      await it.close().catch(() => undefined);
    }
  }

  /** Writes raw records (as exportRecords gave them) in one synced batch. For restores into an empty store. */
  importRecords(records: readonly (readonly [key: Uint8Array, value: Uint8Array])[]): Promise<void> {
    const ops: Op[] = records.map(([key, value]) => ({ type: "put", key, value }));
    const done = this.commitTail.then(async () => {
      this.assertOpen();
      this.markedGroups.clear();
      try {
        await this.db.batch(ops, { sync: true });
      } catch (err) {
        throw this.failure(err, "importing records");
      }
    });
    this.commitTail = done.catch(() => undefined);
    return done;
  }

  /** Every data and request key of a group, without reading values: a reset must work even
   *  when a value is corrupt (it is how a replica recovers a corrupt group). */
  private async recordKeys(prefix: Uint8Array): Promise<Uint8Array[]> {
    const range = groupRange(prefix);
    const it = this.db.keys({ gt: metaKey(prefix), lt: range.lt });
    const keys: Uint8Array[] = [];
    try {
      for (;;) {
        const chunk = await it.nextv(READ_CHUNK);
        if (chunk.length === 0) return keys;
        for (const key of chunk) keys.push(key);
      }
    } finally {
      await it.close().catch(() => undefined);
    }
  }

  async *listGroups(): AsyncIterable<string> {
    this.assertOpen();
    const it = this.db.keys({ lt: GROUPS_END });
    try {
      for (;;) {
        let key: Uint8Array | undefined;
        try {
          key = await it.next();
        } catch (err) {
          throw this.failure(err, "listing groups");
        }
        if (key === undefined) return;
        const parsed = parseKey(key);
        if (parsed === null) throw new StorageCorruptError(null, key, "key does not follow the layout");
        yield parsed.group;
        // Skip the rest of this group's records: listing costs one seek per group.
        it.seek(groupRange(key.subarray(0, parsed.prefixLength)).lt);
      }
    } finally {
      await it.close().catch(() => undefined);
    }
  }

  private assertOpen(): void {
    if (!this.isOpen) throw new StorageClosedError();
  }

  private failure(err: unknown, doing: string): StorageError {
    if (err instanceof StorageError) return err;
    const code = levelCode(err);
    if (!this.isOpen || code === "LEVEL_DATABASE_NOT_OPEN" || code === "LEVEL_ITERATOR_NOT_OPEN") {
      return new StorageClosedError(`storage closed while ${doing}`);
    }
    return new StorageIOError(`${doing} failed: ${(err as Error).message}`, { cause: err });
  }
}

function levelCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === "string" ? code : undefined;
}
