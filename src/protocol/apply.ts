// Applying a chosen command to a group's data. Deterministic: every replica applies the same
// commands in the same order and so computes the same data and the same results.
// A key's version is the index of the instance that last wrote it (0 when absent).

import type { Compare, Entry, TxnWrite, WriteOp, WriteResult } from "./ops.js";

/** Receives every key change, so the caller can persist exactly what changed. */
export type KeyChangeSink = (key: string, entry: Entry | null) => void;

export function applyOp(data: Map<string, Entry>, op: WriteOp, index: number, changed: KeyChangeSink): WriteResult {
  switch (op.op) {
    case "put":
    case "delete":
      return applyWrite(data, op, index, changed);
    case "cas": {
      const current = data.get(op.key)?.version ?? 0;
      if (current !== op.version) return { type: "cas", ok: false, current };
      setKey(data, op.key, { value: op.value, version: index }, changed);
      return { type: "cas", ok: true, version: index };
    }
    case "txn": {
      // Every compare sees the data as it was before this txn: compares first, then writes.
      const currentVersions = op.compares.map((c) => data.get(c.key)?.version ?? 0);
      const succeeded = op.compares.every((c) => compareHolds(data, c));
      const branch = succeeded ? op.success : op.failure;
      const results = branch.map((w) => applyWrite(data, w, index, changed));
      return { type: "txn", succeeded, version: index, currentVersions, results };
    }
  }
}

function applyWrite(data: Map<string, Entry>, w: TxnWrite, index: number, changed: KeyChangeSink): WriteResult {
  if (w.op === "put") {
    setKey(data, w.key, { value: w.value, version: index }, changed);
    return { type: "put", version: index };
  }
  const existed = data.delete(w.key);
  if (existed) changed(w.key, null);
  return { type: "delete", version: index, existed };
}

function setKey(data: Map<string, Entry>, key: string, entry: Entry, changed: KeyChangeSink): void {
  data.set(key, entry);
  changed(key, entry);
}

export function compareHolds(data: Map<string, Entry>, c: Compare): boolean {
  const entry = data.get(c.key);
  switch (c.target) {
    case "exists":
      return (entry !== undefined) === c.exists;
    case "value": {
      // An absent key equals no value.
      const equal = entry !== undefined && bytesEqual(entry.value, c.value);
      return c.cmp === "=" ? equal : !equal;
    }
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
    }
  }
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
