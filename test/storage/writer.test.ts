import { describe, expect, it } from "vitest";
import type { Persist } from "../../src/protocol/durable.js";
import { StorageClosedError, StorageWriterFailedError } from "../../src/storage/errors.js";
import { MemoryStorage } from "../../src/storage/memory.js";
import type { Storage } from "../../src/storage/storage.js";
import { StorageWriter, type BatchReport } from "../../src/storage/writer.js";
import { entry, meta, persist } from "./records.js";

/** A storage whose commits complete only when the test says so. */
class GatedStorage implements Pick<Storage, "commit"> {
  readonly commits: { batch: readonly Persist[]; resolve(): void; reject(err: unknown): void }[] = [];
  inFlight = 0;
  maxInFlight = 0;

  commit(batch: readonly Persist[]): Promise<void> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    return new Promise<void>((resolve, reject) => {
      this.commits.push({
        batch: batch.slice(),
        resolve: () => {
          this.inFlight--;
          resolve();
        },
        reject: (err) => {
          this.inFlight--;
          reject(err);
        },
      });
    });
  }
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Settles state without resolving: "resolved", "rejected" or "pending". */
async function state(p: Promise<unknown>): Promise<string> {
  const marker = {};
  const result = await Promise.race([p.then(() => "resolved", () => "rejected"), Promise.resolve(marker)]);
  if (result !== marker) return result as string;
  await nextTurn();
  return Promise.race([p.then(() => "resolved", () => "rejected"), Promise.resolve("pending")]);
}

const record = (group: string, index: number): Persist => persist(group, { meta: meta(index), keys: [["k", entry(index)]] });

describe("StorageWriter: group commit", () => {
  it("commits every record queued in one turn as one batch, in persist order", async () => {
    const storage = new GatedStorage();
    const writer = new StorageWriter(storage);
    const records = [record("a", 1), record("b", 1), record("a", 2)];
    const done = records.map((r) => writer.persist(r));
    expect(storage.commits).toHaveLength(0); // not before the tick ends
    await nextTurn();
    expect(storage.commits).toHaveLength(1);
    expect(storage.commits[0]!.batch).toEqual(records);
    expect(await state(done[0]!)).toBe("pending");
    storage.commits[0]!.resolve();
    await Promise.all(done);
    expect(writer.stats).toMatchObject({ batches: 1, records: 3, largestBatch: 3, queued: 0, inFlight: false });
  });

  it("keeps one batch in flight and gathers everything that arrives meanwhile into the next", async () => {
    const storage = new GatedStorage();
    const writer = new StorageWriter(storage);
    const first = writer.persist(record("a", 1));
    await nextTurn();
    expect(storage.commits).toHaveLength(1);

    const later = [writer.persist(record("b", 1))];
    await nextTurn();
    later.push(writer.persist(record("c", 1)));
    await nextTurn();
    later.push(writer.persist(record("a", 2)));
    await nextTurn();
    // Still only the first commit: the others wait for it.
    expect(storage.commits).toHaveLength(1);
    expect(writer.stats.queued).toBe(3);
    expect(await state(later[0]!)).toBe("pending");

    storage.commits[0]!.resolve();
    await first;
    await nextTurn();
    expect(storage.commits).toHaveLength(2);
    expect(storage.commits[1]!.batch.map((p) => p.group)).toEqual(["b", "c", "a"]);
    storage.commits[1]!.resolve();
    await Promise.all(later);
    expect(storage.maxInFlight).toBe(1);
    expect(writer.stats).toMatchObject({ batches: 2, records: 4, largestBatch: 3 });
  });

  it("a record that may wait rides the next commit another record starts", async () => {
    const storage = new GatedStorage();
    const writer = new StorageWriter(storage, { mayWaitMs: 60_000 });
    const learn = writer.persist(record("a", 1), true);
    await nextTurn();
    expect(storage.commits).toHaveLength(0);
    expect(writer.stats.queued).toBe(1);
    const accept = writer.persist(record("b", 1));
    await nextTurn();
    expect(storage.commits).toHaveLength(1);
    expect(storage.commits[0]!.batch.map((p) => p.group)).toEqual(["a", "b"]);
    storage.commits[0]!.resolve();
    await Promise.all([learn, accept]);
  });

  it("a record that may wait goes after mayWaitMs on its own, or at once on hurry or flush", async () => {
    const storage = new GatedStorage();
    const writer = new StorageWriter(storage, { mayWaitMs: 5 });
    const alone = writer.persist(record("a", 1), true);
    await nextTurn();
    expect(storage.commits).toHaveLength(0);
    const deadline = Date.now() + 10_000;
    while (storage.commits.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    expect(storage.commits).toHaveLength(1);
    storage.commits[0]!.resolve();
    await alone;

    const slow = new StorageWriter(storage, { mayWaitMs: 60_000 });
    const hurried = slow.persist(record("a", 2), true);
    await nextTurn();
    expect(storage.commits).toHaveLength(1);
    slow.hurry();
    await nextTurn();
    expect(storage.commits).toHaveLength(2);
    storage.commits[1]!.resolve();
    await hurried;

    const flushed = slow.persist(record("a", 3), true);
    const flushing = slow.flush();
    await nextTurn();
    expect(storage.commits).toHaveLength(3);
    storage.commits[2]!.resolve();
    await Promise.all([flushed, flushing]);
  });

  it("records that may wait and arrive while a batch is in flight wait for their delay, not for its end", async () => {
    const storage = new GatedStorage();
    const writer = new StorageWriter(storage, { mayWaitMs: 60_000 });
    const first = writer.persist(record("a", 1));
    await nextTurn();
    const learn = writer.persist(record("b", 1), true);
    storage.commits[0]!.resolve();
    await first;
    await nextTurn();
    expect(storage.commits).toHaveLength(1);
    expect(await state(learn)).toBe("pending");
    const closing = writer.close();
    await nextTurn();
    expect(storage.commits).toHaveLength(2);
    storage.commits[1]!.resolve();
    await Promise.all([learn, closing]);
  });

  it("resolves each caller only when its own batch is durable", async () => {
    const storage = new GatedStorage();
    const writer = new StorageWriter(storage);
    const first = writer.persist(record("a", 1));
    await nextTurn();
    const second = writer.persist(record("a", 2));
    storage.commits[0]!.resolve();
    await first;
    expect(await state(second)).toBe("pending");
    await nextTurn();
    storage.commits[1]!.resolve();
    await second;
  });

  it("rejects every caller of a failed batch, then refuses all later records", async () => {
    const storage = new GatedStorage();
    const reports: BatchReport[] = [];
    const writer = new StorageWriter(storage, { onBatch: (r) => reports.push(r) });
    const failing = [writer.persist(record("a", 1)), writer.persist(record("b", 1))];
    await nextTurn();
    // Queued behind the failing batch: must not be written after it fails.
    const behind = writer.persist(record("a", 2));
    const diskFull = new Error("disk full");
    storage.commits[0]!.reject(diskFull);

    for (const p of failing) await expect(p).rejects.toBe(diskFull);
    await expect(behind).rejects.toBeInstanceOf(StorageWriterFailedError);
    await expect(writer.persist(record("c", 1))).rejects.toMatchObject({ code: "STORAGE_WRITER_FAILED", cause: diskFull });
    await nextTurn();
    expect(storage.commits).toHaveLength(1);
    expect(writer.failure).toBe(diskFull);
    expect(writer.stats).toMatchObject({ batches: 1, failedBatches: 1, queued: 0 });
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({ records: 2, error: diskFull });
  });

  it("treats a commit that throws synchronously as a failed batch", async () => {
    const boom = new Error("sync throw");
    const writer = new StorageWriter({
      commit: () => {
        throw boom;
      },
    });
    await expect(writer.persist(record("a", 1))).rejects.toBe(boom);
    await expect(writer.persist(record("a", 2))).rejects.toBeInstanceOf(StorageWriterFailedError);
  });

  it("flush waits for everything queued so far, across batches", async () => {
    const storage = new GatedStorage();
    const writer = new StorageWriter(storage);
    await writer.flush(); // nothing queued: immediate
    void writer.persist(record("a", 1));
    await nextTurn();
    void writer.persist(record("b", 1));
    const flushed = writer.flush();
    storage.commits[0]!.resolve();
    expect(await state(flushed)).toBe("pending");
    await nextTurn();
    storage.commits[1]!.resolve();
    await flushed;
    expect(writer.stats).toMatchObject({ batches: 2, records: 2, queued: 0, inFlight: false });
  });

  it("close writes what was queued, then refuses new records", async () => {
    const storage = new MemoryStorage();
    const writer = new StorageWriter(storage);
    const queued = writer.persist(record("a", 1));
    await writer.close();
    await queued;
    expect(storage.loadGroupSync("a")!.meta).toEqual(meta(1));
    await expect(writer.persist(record("a", 2))).rejects.toBeInstanceOf(StorageClosedError);
  });

  it("reports every batch for metrics", async () => {
    const reports: BatchReport[] = [];
    const writer = new StorageWriter(new MemoryStorage(), { onBatch: (r) => reports.push(r) });
    await Promise.all([writer.persist(record("a", 1)), writer.persist(record("b", 1))]);
    await writer.persist(record("a", 2));
    expect(reports.map((r) => r.records)).toEqual([2, 1]);
    for (const r of reports) {
      expect(r.error).toBeUndefined();
      expect(r.durationMs).toBeGreaterThanOrEqual(0);
    }
  });
});
