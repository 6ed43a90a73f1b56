// Valid histories for the checker's tests, from a simulated sequential execution: each
// process issues one op at a time with random durations, each op takes effect at a random
// point inside its span (its linearization point), and the results come from applying the ops
// to a key -> entry map in the order of those points, with Paxos-like indexes (writes batched
// at one index, no-ops skipping indexes). So the history is linearizable by construction,
// with real overlaps. Some writes have unknown outcomes (applied inside their span, later
// than their timeout, or never), a few fail (never applied), some gets are stale.

import { Prng } from "../sim/prng.js";
import type { HistoryCall, HistoryCompare, HistoryOp, HistoryOutcome, HistoryResult, HistoryTxnWrite } from "./history.js";

export interface GenerateOptions {
  readonly seed: number;
  readonly groups: number;
  readonly opsPerGroup: number;
  readonly processesMin: number;
  readonly processesMax: number;
  /** Share of writes whose outcome is unknown. */
  readonly unknownRate: number;
}

interface Planned {
  process: string;
  group: string;
  call: HistoryCall;
  invokedAt: number;
  completedAt: number | null;
  outcome: HistoryOutcome;
  result?: HistoryResult;
  /** When it takes effect; null: never. */
  effectAt: number | null;
}

interface Entry {
  value: string;
  version: number;
}

export function generateHistory(options: GenerateOptions): HistoryOp[] {
  const prng = new Prng(options.seed);
  const planned: Planned[] = [];
  for (let g = 0; g < options.groups; g++) planned.push(...generateGroup(`g${g}`, g % 2 === 0, prng.fork(`group ${g}`), options));
  planned.sort((a, b) => a.invokedAt - b.invokedAt);
  return planned.map((p, id) => ({
    id,
    process: p.process,
    via: "n1",
    group: p.group,
    call: p.call,
    invokedAt: p.invokedAt,
    completedAt: p.completedAt,
    outcome: p.outcome,
    ...(p.result === undefined ? {} : { result: p.result }),
    ...(p.call.f === "get" ? {} : { requestId: `${p.group}-${id}` }),
  }));
}

/** A register group (one key, put/get/cas/delete) or a multi-key group with txns. */
function generateGroup(group: string, register: boolean, prng: Prng, options: GenerateOptions): Planned[] {
  const keys = register ? [group] : ["a", "b", "c", "d"];
  const processes = prng.int(options.processesMin, options.processesMax);
  const ops: Planned[] = [];
  let serial = 0;
  const value = () => `${group}.${serial++}`;
  for (let p = 0; p < processes; p++) {
    let t = prng.float() * 5 + prng.int(0, 1000);
    const count = Math.floor(options.opsPerGroup / processes) + (p < options.opsPerGroup % processes ? 1 : 0);
    for (let i = 0; i < count; i++) {
      const duration = 1 + prng.float() * 20;
      const key = prng.pick(keys);
      const call = planCall(prng, register, key, keys, value);
      const op: Planned = { process: `${group}.p${p}`, group, call, invokedAt: t, completedAt: t + duration, outcome: "ok", effectAt: t + prng.float() * duration };
      if (call.f !== "get" && prng.chance(options.unknownRate)) {
        op.outcome = "unknown";
        // Never, inside its span, or after it timed out (a retry still in flight).
        const roll = prng.float();
        op.effectAt = roll < 0.4 ? null : roll < 0.7 ? op.effectAt : op.completedAt! + prng.float() * 50;
        if (i === count - 1 && prng.chance(0.5)) op.completedAt = null;
      } else if (prng.chance(0.01)) {
        op.outcome = "fail";
        op.effectAt = null;
      }
      ops.push(op);
      t += duration + prng.float() * 3;
    }
  }
  applyInOrder(ops, prng);
  return ops;
}

function planCall(prng: Prng, register: boolean, key: string, keys: readonly string[], value: () => string): HistoryCall {
  const roll = prng.float();
  if (roll < 0.45) return { f: "get", key, consistency: prng.chance(0.1) ? "stale" : "linearizable" };
  if (roll < 0.65) return { f: "put", key, value: value() };
  if (roll < 0.7) return { f: "delete", key };
  if (register || roll < 0.8) return { f: "cas", key, version: -1, value: value() }; // expected filled in when applied
  const written = prng.shuffle(keys).slice(0, prng.int(1, 2));
  const compares: HistoryCompare[] = [{ key: prng.pick(keys), target: "version", cmp: "=", version: -1 }];
  if (prng.chance(0.5)) compares.push({ key: prng.pick(keys), target: "exists", exists: prng.chance(0.5) });
  const success: HistoryTxnWrite[] = written.map((k) => (prng.chance(0.85) ? { op: "put", key: k, value: value() } : { op: "delete", key: k }));
  const failure: HistoryTxnWrite[] = prng.chance(0.5) ? [{ op: "put", key: prng.pick(keys), value: value() }] : [];
  return { f: "txn", compares, success, failure };
}

/** Applies the ops in effect order, filling in results, cas expectations and versions. */
function applyInOrder(ops: Planned[], prng: Prng): void {
  const data = new Map<string, Entry>();
  /** Snapshots for stale reads: the data after each index that wrote, newest last. */
  const history: { index: number; data: Map<string, Entry> }[] = [{ index: 0, data: new Map() }];
  let index = 0;
  let readSinceWrite = true;
  const effective = ops.filter((o) => o.effectAt !== null).sort((a, b) => a.effectAt! - b.effectAt!);
  for (const op of effective) {
    const call = op.call;
    if (call.f === "get") {
      if (call.consistency === "stale") {
        const snap = history[Math.max(0, history.length - 1 - prng.int(0, 3))]!;
        op.result = readResult(snap.data.get(call.key), snap.index);
      } else {
        op.result = readResult(data.get(call.key), index);
        readSinceWrite = true;
      }
      continue;
    }
    // A write takes a new index unless batched with the previous write (never across a read
    // that observed the previous index); a no-op sometimes takes an index first.
    if (readSinceWrite || index === 0 || !prng.chance(0.2)) index += prng.chance(0.05) ? 2 : 1;
    readSinceWrite = false;
    const result = applyWrite(data, call, index, prng);
    if (op.outcome === "ok") op.result = result;
    const last = history[history.length - 1]!;
    if (last.index === index) last.data = new Map(data);
    else history.push({ index, data: new Map(data) });
  }
  // A cas or txn that never took effect still needs a concrete expectation in its call.
  for (const op of ops) {
    if (op.call.f === "cas" && op.call.version < 0) op.call = { ...op.call, version: prng.int(0, 3) };
    if (op.call.f === "txn") op.call = { ...op.call, compares: op.call.compares.map((c) => (c.target === "version" && c.version < 0 ? { ...c, version: prng.int(0, 3) } : c)) };
  }
}

function readResult(entry: Entry | undefined, index: number): HistoryResult {
  return entry === undefined ? { f: "get", found: false, index } : { f: "get", found: true, value: entry.value, version: entry.version, index };
}

function applyWrite(data: Map<string, Entry>, call: HistoryCall, index: number, prng: Prng): HistoryResult {
  switch (call.f) {
    case "put":
      data.set(call.key, { value: call.value, version: index });
      return { f: "put", version: index };
    case "delete": {
      const existed = data.delete(call.key);
      return { f: "delete", version: index, existed };
    }
    case "cas": {
      const current = data.get(call.key)?.version ?? 0;
      // Mostly the current version (a client that just read it), else a stale one.
      const expected = prng.chance(0.6) ? current : Math.max(0, current - prng.int(1, 3));
      (call as { version: number }).version = expected;
      if (current !== expected) return { f: "cas", ok: false, current };
      data.set(call.key, { value: call.value, version: index });
      return { f: "cas", ok: true, version: index };
    }
    case "txn": {
      const compares = call.compares.map((c) => {
        if (c.target !== "version" || c.version >= 0) return c;
        const current = data.get(c.key)?.version ?? 0;
        return { ...c, version: prng.chance(0.6) ? current : Math.max(0, current - 1) };
      });
      (call as { compares: readonly HistoryCompare[] }).compares = compares;
      const currentVersions = compares.map((c) => data.get(c.key)?.version ?? 0);
      const succeeded = compares.every((c) => holds(data.get(c.key), c));
      for (const w of succeeded ? call.success : call.failure) {
        if (w.op === "put") data.set(w.key, { value: w.value, version: index });
        else data.delete(w.key);
      }
      return { f: "txn", succeeded, version: index, currentVersions };
    }
    case "get":
      throw new Error("generate: a get is not a write");
  }
}

function holds(entry: Entry | undefined, c: HistoryCompare): boolean {
  switch (c.target) {
    case "exists":
      return (entry !== undefined) === c.exists;
    case "value":
      return (entry !== undefined && entry.value === c.value) === (c.cmp === "=");
    case "version": {
      const v = entry?.version ?? 0;
      return c.cmp === "=" ? v === c.version : c.cmp === "!=" ? v !== c.version : c.cmp === "<" ? v < c.version : v > c.version;
    }
  }
}
