// A reference model of one key-group's state machine, written from the semantics in
// src/protocol/ops.ts and deliberately NOT from the core's apply code: replaying the global
// chosen log through it gives the data after each index and the result of each command, which
// the linearizability checker compares with what clients were told.
//
// Semantics (ops.ts):
// - a key's version is the index that last wrote it; 0 stands for "absent" in compares;
// - put sets, delete removes (reporting whether the key existed);
// - cas writes only when the key's version equals the expected one (0: must be absent), else
//   it reports the current version and writes nothing;
// - txn evaluates every compare against the data before the txn, then applies the success or
//   the failure branch in order, all at the same index; an absent key "matches no value": a
//   value compare `=` on it fails and `!=` holds (NOTE: etcd instead fails every value compare
//   on a missing key; ops.ts's wording allows both readings, this is the one the core took);
// - a request id is applied once: a later command with an id still remembered is skipped. A
//   group remembers the last `requestMemory` ids it applied (config.ts: "the oldest are
//   forgotten first"); an id forgotten and then seen again is applied again.

import type { ChosenEntry } from "../../../src/protocol/messages.js";
import type { Compare, Entry, TxnWrite, WriteOp, WriteResult } from "../../../src/protocol/ops.js";
import { bytesText } from "./format.js";

export interface ModelApplication {
  readonly index: number;
  readonly result: WriteResult;
}

export interface GroupModel {
  /** Highest index replayed; every index 1..lastIndex had a chosen entry. */
  readonly lastIndex: number;
  /** Data as of index i (0: empty). */
  dataAt(index: number): ReadonlyMap<string, Entry>;
  /** Every application of each request id, oldest first (more than one only once forgotten). */
  readonly applied: ReadonlyMap<string, readonly ModelApplication[]>;
}

/** Replays entries 1..n of one group. `entryAt` returns undefined past the known log. */
export function replayGroup(entryAt: (index: number) => ChosenEntry | undefined, requestMemory = Infinity): GroupModel {
  const snapshots: Map<string, Entry>[] = [new Map()];
  const applied = new Map<string, ModelApplication[]>();
  // The ids a replica still remembers, oldest first.
  const remembered = new Set<string>();
  let data = new Map<string, Entry>();
  for (let index = 1; ; index++) {
    const entry = entryAt(index);
    if (entry === undefined) break;
    data = new Map(data);
    for (const command of entry.value.commands) {
      if (remembered.has(command.requestId)) continue;
      const application = { index, result: applyWrite(data, command.op, index) };
      const earlier = applied.get(command.requestId);
      if (earlier === undefined) applied.set(command.requestId, [application]);
      else earlier.push(application);
      remembered.add(command.requestId);
      while (remembered.size > requestMemory) remembered.delete(remembered.values().next().value as string);
    }
    snapshots.push(data);
  }
  return {
    lastIndex: snapshots.length - 1,
    dataAt: (index) => {
      const snap = snapshots[index];
      if (snap === undefined) throw new Error(`model: no data at index ${index} (last ${snapshots.length - 1})`);
      return snap;
    },
    applied,
  };
}

export function applyWrite(data: Map<string, Entry>, op: WriteOp, index: number): WriteResult {
  switch (op.op) {
    case "put":
      return applyTxnWrite(data, op, index);
    case "delete":
      return applyTxnWrite(data, op, index);
    case "cas": {
      const current = data.get(op.key)?.version ?? 0;
      if (current !== op.version) return { type: "cas", ok: false, current };
      data.set(op.key, { value: op.value, version: index });
      return { type: "cas", ok: true, version: index };
    }
    case "txn": {
      const currentVersions = op.compares.map((c) => data.get(c.key)?.version ?? 0);
      const succeeded = op.compares.every((c) => compareHolds(data.get(c.key), c));
      const branch = succeeded ? op.success : op.failure;
      const results = branch.map((w) => applyTxnWrite(data, w, index));
      return { type: "txn", succeeded, version: index, currentVersions, results };
    }
  }
}

function applyTxnWrite(data: Map<string, Entry>, w: TxnWrite, index: number): WriteResult {
  if (w.op === "put") {
    data.set(w.key, { value: w.value, version: index });
    return { type: "put", version: index };
  }
  const existed = data.delete(w.key);
  return { type: "delete", version: index, existed };
}

function compareHolds(entry: Entry | undefined, c: Compare): boolean {
  switch (c.target) {
    case "version": {
      const v = entry?.version ?? 0;
      switch (c.cmp) {
        case "=":
          return v === c.version;
        case "!=":
          return v !== c.version;
        case "<":
          return v < c.version;
        case ">":
          return v > c.version;
      }
      return false;
    }
    case "value": {
      const equal = entry !== undefined && bytesText(entry.value) === bytesText(c.value);
      return c.cmp === "=" ? equal : !equal;
    }
    case "exists":
      return (entry !== undefined) === c.exists;
  }
}

/** What a scan of the model answers: keys with the prefix, after `after`, sorted, at most `limit`. */
export function scanModel(
  data: ReadonlyMap<string, Entry>,
  prefix: string,
  after: string | undefined,
  limit: number,
): { key: string; value: Uint8Array; version: number }[] {
  const keys = [...data.keys()].filter((k) => k.startsWith(prefix) && (after === undefined || k > after)).sort();
  return keys.slice(0, limit).map((key) => ({ key, value: data.get(key)!.value, version: data.get(key)!.version }));
}
