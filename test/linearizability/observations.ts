// What the reads of one group reveal before any search. Values are unique per write
// (history.ts), so a read that returns a value names the write it saw, and the version it
// reports is the version that write was applied at. That gives:
//   - the version of writes whose own answer never came (unknown outcome), which the model
//     cannot predict (Paxos indexes: batching, no-ops) but needs to order them;
//   - the branch a txn ran, when a read saw one of its values;
//   - violations that need no search, each with a precise message: a value nobody wrote, the
//     value of a write answered `fail`, of a write invoked after the read completed, of a txn
//     branch or a cas that did not write it, or one write's value seen at two versions
//     (double application), a version above the read's own index.
// Stale gets are checked here and only here: they promise a value some write wrote, at its
// version, no newer than the index they report (docs/API.md: "the answering replica's data
// alone"), nothing about recency.

import { describeOp } from "./describe.js";
import type { HistoryOp } from "./history.js";

export type Branch = "success" | "failure";

/** The write that put `value` on `key`, and for a txn the branch that holds that put. */
export interface Writer {
  readonly op: HistoryOp;
  readonly branch: Branch | null;
}

export interface Observations {
  /** Op id -> the version it was applied at, from its own ok answer or a read of its value. */
  readonly versionOf: ReadonlyMap<number, number>;
  /** Txn op id -> the branch a read showed it ran. */
  readonly branchOf: ReadonlyMap<number, Branch>;
  readonly writerOf: (key: string, value: string) => Writer | undefined;
}

export type ObservationResult =
  | { readonly ok: true; readonly observations: Observations }
  | { readonly ok: false; readonly message: string; readonly window: HistoryOp[] };

/** Two writes of one history wrote the same value to the same key: the input breaks history.ts. */
export class DuplicateValueError extends Error {
  readonly code = "bad_history";
}

/** The ops of one group, in any order. */
export function observe(ops: readonly HistoryOp[]): ObservationResult {
  const writers = indexWriters(ops);
  const writerOf = (key: string, value: string) => writers.get(writerKey(key, value));
  const versionOf = new Map<number, number>();
  /** Who revealed each version, for the double-application message. */
  const versionBy = new Map<number, HistoryOp>();
  const branchOf = new Map<number, Branch>();

  for (const op of ops) {
    const r = op.result;
    if (r === undefined) continue;
    const version = r.f === "put" || r.f === "delete" || r.f === "txn" || (r.f === "cas" && r.ok) ? r.version : null;
    if (version !== null) {
      versionOf.set(op.id, version);
      versionBy.set(op.id, op);
    }
    if (r.f === "txn") branchOf.set(op.id, r.succeeded ? "success" : "failure");
  }

  for (const read of ops) {
    if (read.call.f !== "get" || read.result?.f !== "get" || !read.result.found) continue;
    const { value, version, index } = read.result as { value: string; version: number; index: number };
    const key = read.call.key;
    const seen = `${describeOp(read)} saw ${JSON.stringify(value)} at version ${version}`;
    if (version > index) return violation(`${seen}, above the index ${index} it reports (a read at index i reflects only writes up to i)`, [read]);
    const writer = writerOf(key, value);
    if (writer === undefined) return violation(`read of a never-written value: ${seen}, but no operation of the group wrote that value to ${JSON.stringify(key)}`, [read]);
    const w = writer.op;
    if (w.outcome === "fail") return violation(`a write answered fail was observed: ${seen}, written by ${describeOp(w)}, which never takes effect`, [w, read]);
    if (read.completedAt !== null && w.invokedAt > read.completedAt) {
      return violation(`read from the future: ${seen}, written by ${describeOp(w)}, invoked after the read completed`, [read, w]);
    }
    if (w.result?.f === "cas" && !w.result.ok) return violation(`${seen}, written by ${describeOp(w)}, a cas that answered conflict and wrote nothing`, [w, read]);
    if (writer.branch !== null) {
      const ran = branchOf.get(w.id);
      if (ran !== undefined && ran !== writer.branch) {
        const by = versionBy.get(w.id) ?? read;
        return violation(`${seen}, written by the ${writer.branch} branch of ${describeOp(w)}, but the ${ran} branch ran (${by === w ? "its answer" : describeOp(by)})`, [w, by, read]);
      }
      branchOf.set(w.id, writer.branch);
    }
    const known = versionOf.get(w.id);
    if (known === undefined) {
      versionOf.set(w.id, version);
      versionBy.set(w.id, read);
    } else if (known !== version) {
      const by = versionBy.get(w.id)!;
      const other = by === w ? `answered version ${known}` : `was seen at version ${known} by ${describeOp(by)}`;
      return violation(`double application: ${seen}, written by ${describeOp(w)}, which ${other}`, uniqueById([w, by, read]));
    }
  }
  return { ok: true, observations: { versionOf, branchOf, writerOf } };
}

function indexWriters(ops: readonly HistoryOp[]): Map<string, Writer> {
  const writers = new Map<string, Writer>();
  const add = (key: string, value: string, writer: Writer) => {
    const k = writerKey(key, value);
    const earlier = writers.get(k);
    if (earlier !== undefined && earlier.op !== writer.op) {
      throw new DuplicateValueError(`values must be unique per write: ${describeOp(earlier.op)} and ${describeOp(writer.op)} both write ${JSON.stringify(value)} to ${JSON.stringify(key)}`);
    }
    writers.set(k, writer);
  };
  for (const op of ops) {
    const c = op.call;
    if (c.f === "put" || c.f === "cas") add(c.key, c.value, { op, branch: null });
    if (c.f === "txn") {
      for (const w of c.success) if (w.op === "put") add(w.key, w.value, { op, branch: "success" });
      for (const w of c.failure) if (w.op === "put") add(w.key, w.value, { op, branch: "failure" });
    }
  }
  return writers;
}

function writerKey(key: string, value: string): string {
  return `${key}\u0000${value}`;
}

function violation(message: string, window: HistoryOp[]): ObservationResult {
  return { ok: false, message, window: [...window].sort((a, b) => a.id - b.id) };
}

function uniqueById(ops: HistoryOp[]): HistoryOp[] {
  return [...new Map(ops.map((o) => [o.id, o])).values()];
}
