// Group commit (DESIGN.md, "Storage group-commits"): every Persist record queued while no
// commit is in flight goes out in one storage.commit, i.e. one synced LevelDB batch, so one
// fsync pays for all the groups that stepped in that tick. Records queued while a commit is in
// flight wait for the next batch: at most one batch is in flight, and batches grow with load
// instead of fsyncs multiplying.

import type { Persist } from "../protocol/durable.js";
import { StorageClosedError, StorageWriterFailedError } from "./errors.js";
import type { Storage } from "./storage.js";

export interface StorageWriterStats {
  /** Commits issued (successful or not). */
  readonly batches: number;
  /** Records in those commits. */
  readonly records: number;
  readonly failedBatches: number;
  /** The most records one commit carried. */
  readonly largestBatch: number;
  /** Records waiting for the next commit. */
  readonly queued: number;
  readonly inFlight: boolean;
}

export interface BatchReport {
  readonly records: number;
  readonly durationMs: number;
  /** Set when the commit failed. */
  readonly error?: unknown;
}

export interface StorageWriterOptions {
  /** Called after each commit settles, for metrics (batch size, fsync latency). */
  readonly onBatch?: (report: BatchReport) => void;
  /**
   * TEST-ONLY (a slow disk for `npm run verify`, see src/actors/testHooks.ts): milliseconds to
   * wait before each commit, and so before its fsync. Unset in production.
   */
  readonly faultDelayMs?: () => number;
}

interface Batch {
  readonly records: Persist[];
  readonly settled: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
}

export class StorageWriter {
  private readonly storage: Pick<Storage, "commit">;
  private readonly onBatch: ((report: BatchReport) => void) | undefined;
  private readonly faultDelayMs: (() => number) | undefined;
  private collecting: Batch | null = null;
  private inFlight: Batch | null = null;
  private scheduled = false;
  private closed = false;
  private failedWith: { cause: unknown } | null = null;
  private counters = { batches: 0, records: 0, failedBatches: 0, largestBatch: 0 };

  /** The writer does not own the storage: close the storage yourself after close(). */
  constructor(storage: Pick<Storage, "commit">, options: StorageWriterOptions = {}) {
    this.storage = storage;
    this.onBatch = options.onBatch;
    this.faultDelayMs = options.faultDelayMs;
  }

  /**
   * Queues one record; resolves once it is durable, together with the rest of its batch.
   * Rejects with the commit's error if its batch fails, and with StorageWriterFailedError for
   * every record after a failure.
   */
  persist(record: Persist): Promise<void> {
    if (this.closed) return Promise.reject(new StorageClosedError("storage writer is closed"));
    if (this.failedWith !== null) return Promise.reject(new StorageWriterFailedError(this.failedWith));
    this.collecting ??= newBatch();
    this.collecting.records.push(record);
    this.schedule();
    return this.collecting.settled;
  }

  /** Settles once every record queued so far has settled; rejects if any of them failed. */
  flush(): Promise<void> {
    // Batches commit in order, so the newest one settling means all earlier ones have.
    const newest = this.collecting ?? this.inFlight;
    return newest === null ? Promise.resolve() : newest.settled;
  }

  /** Refuses new records and waits for the queued ones to settle. Never rejects. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush().catch(() => undefined);
  }

  get stats(): StorageWriterStats {
    return {
      ...this.counters,
      queued: this.collecting?.records.length ?? 0,
      inFlight: this.inFlight !== null,
    };
  }

  /** The error that stopped the writer, if one did. */
  get failure(): unknown {
    return this.failedWith?.cause;
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight !== null) return;
    this.scheduled = true;
    // setImmediate, not a microtask: every actor that steps in this turn of the event loop
    // gets its record into the batch before the fsync starts.
    setImmediate(() => {
      this.scheduled = false;
      this.startCommit();
    });
  }

  private startCommit(): void {
    const batch = this.collecting;
    if (batch === null || this.inFlight !== null) return;
    this.collecting = null;
    this.inFlight = batch;
    this.counters.batches++;
    this.counters.records += batch.records.length;
    this.counters.largestBatch = Math.max(this.counters.largestBatch, batch.records.length);
    const started = performance.now();
    // A synchronous throw from commit is a failed batch like any other.
    new Promise<void>((resolve) => resolve(this.faultDelayMs === undefined ? this.storage.commit(batch.records) : this.delayedCommit(batch.records, this.faultDelayMs()))).then(
      () => this.finish(batch, started, undefined),
      (err: unknown) => this.finish(batch, started, err ?? new Error("storage commit failed")),
    );
  }

  /** TEST-ONLY: the slow disk of faultDelayMs; the batch stays in flight while it waits. */
  private async delayedCommit(records: Persist[], delayMs: number): Promise<void> {
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
    return this.storage.commit(records);
  }

  private finish(batch: Batch, started: number, error: unknown): void {
    this.inFlight = null;
    const report: BatchReport = { records: batch.records.length, durationMs: performance.now() - started };
    if (error === undefined) {
      batch.resolve();
    } else {
      this.counters.failedBatches++;
      this.failedWith ??= { cause: error };
      batch.reject(error);
      // Records behind a failed batch must not be written: see StorageWriterFailedError.
      const waiting = this.collecting;
      this.collecting = null;
      waiting?.reject(new StorageWriterFailedError(this.failedWith));
    }
    if (this.collecting !== null) this.schedule();
    this.onBatch?.(error === undefined ? report : { ...report, error });
  }
}

function newBatch(): Batch {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const settled = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // The callers hold `settled`; this keeps a batch nobody awaits from being an unhandled
  // rejection in flush() bookkeeping (each caller's own await still sees the error).
  settled.catch(() => undefined);
  return { records: [], settled, resolve, reject };
}
