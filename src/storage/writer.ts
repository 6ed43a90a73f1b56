// Group commit (DESIGN.md, "Storage group-commits"): every Persist record queued while no
// commit is in flight goes out in one storage.commit, i.e. one synced LevelDB batch, so one
// fsync pays for all the groups that stepped in that tick. Records queued while a commit is in
// flight wait for the next batch: at most one batch is in flight, and batches grow with load
// instead of fsyncs multiplying.
//
// A record nobody waits on yet (`mayWait`: a learn whose answers already left, DESIGN.md "A
// learn rides the next commit") does not start a commit: it rides the next batch some other
// record starts, or goes after `mayWaitMs` on its own, or at once when `hurry` says someone
// now waits on it. It is never written without sync and never out of order: a batch takes
// every record queued before it.

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
  /** How long a record written with `mayWait` may wait for another to start a commit (default 10 ms). */
  readonly mayWaitMs?: number;
}

/** The default of StorageWriterOptions.mayWaitMs. */
export const DEFAULT_MAY_WAIT_MS = 10;

interface Batch {
  readonly records: Persist[];
  /** Some record in it (or a hurry) wants the commit now, not after mayWaitMs. */
  urgent: boolean;
  readonly settled: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
}

export class StorageWriter {
  private readonly storage: Pick<Storage, "commit">;
  private readonly onBatch: ((report: BatchReport) => void) | undefined;
  private readonly faultDelayMs: (() => number) | undefined;
  private readonly mayWaitMs: number;
  /** Commits a batch of waiting records once mayWaitMs have passed. */
  private waitTimer: NodeJS.Timeout | null = null;
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
    this.mayWaitMs = options.mayWaitMs ?? DEFAULT_MAY_WAIT_MS;
  }

  /**
   * Queues one record; resolves once it is durable, together with the rest of its batch.
   * Rejects with the commit's error if its batch fails, and with StorageWriterFailedError for
   * every record after a failure. `mayWait`: the record does not start a commit by itself
   * (see the top of this file); it is durable a little later, never less safely.
   */
  persist(record: Persist, mayWait = false): Promise<void> {
    if (this.closed) return Promise.reject(new StorageClosedError("storage writer is closed"));
    if (this.failedWith !== null) return Promise.reject(new StorageWriterFailedError(this.failedWith));
    this.collecting ??= newBatch();
    this.collecting.records.push(record);
    if (mayWait && this.mayWaitMs > 0) this.armWait();
    else {
      this.collecting.urgent = true;
      this.schedule();
    }
    return this.collecting.settled;
  }

  /** Someone waits on a record queued with mayWait: commit what is queued without waiting. */
  hurry(): void {
    if (this.collecting === null) return;
    this.collecting.urgent = true;
    this.schedule();
  }

  /** Settles once every record queued so far has settled; rejects if any of them failed. */
  flush(): Promise<void> {
    this.hurry();
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

  private armWait(): void {
    if (this.waitTimer !== null) return;
    this.waitTimer = setTimeout(() => {
      this.waitTimer = null;
      this.hurry();
    }, this.mayWaitMs);
    // Never what keeps a process alive: close() and flush() hurry whatever is queued.
    this.waitTimer.unref();
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
    if (this.waitTimer !== null) {
      clearTimeout(this.waitTimer);
      this.waitTimer = null;
    }
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
    if (this.collecting !== null) {
      if (this.collecting.urgent) this.schedule();
      else this.armWait();
    }
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
  return { records: [], urgent: false, settled, resolve, reject };
}
