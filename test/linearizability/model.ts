// The model of ONE key-group for the search: the group's key -> entry map, plus where in the
// group's log the linearization has got to. Semantics as src/protocol/ops.ts and apply.ts
// (written again here, from the docs, so the checker does not trust the code it checks).
//
// Versions and indexes are Paxos indexes the model cannot predict (batching gives several
// writes one index; no-ops take indexes and write nothing), so the model checks that they
// are consistent instead of computing them. A linearization walks the log forward, so every
// op has a log position and positions never decrease along the linearization:
//   a write applied at version v     is at position 2v;
//   a linearizable get at index i    is at position 2i+1 (after every write at <= i, before
//                                    every write at > i: a get at i reflects the writes up to i);
//   a cas answered conflict or a txn is at least at 2c for every current version c it reports
//   (it was applied after the write that made c).
// `floor` is the largest position linearized so far. Writes of the same batch share a
// version, so two writes may sit at one position; a get and a write never do.
//
// A write whose outcome is unknown and whose version nothing revealed (observations.ts) is
// placed with version null: its position is only known to be >= the positions of the writes
// before it (`lo`, from `writeFloor`), and it raises nothing. A later cas/txn that reports the
// key's current version reveals it. `lo` ignores the gets placed before it on purpose: the
// search moves a get earlier past such writes (search.ts), which must not change what they
// may be revealed as. Both lose a little power (sound: never a false violation), only for
// writes that no read ever saw.

import type { Branch } from "./observations.js";
import type { HistoryCompare, HistoryOp, HistoryTxnWrite } from "./history.js";

export interface KeyEntry {
  /** Values are unique per write: the value names the write. */
  readonly value: string;
  /** null: applied at a version nothing revealed (see above). */
  readonly version: number | null;
  /** For a null version: the least position it may have (`writeFloor` when it was placed). */
  readonly lo: number;
  /** Op id of the write, for messages only (not part of the state's identity). */
  readonly writer: number;
}

export interface GroupState {
  /** Present keys only: an absent key has no entry. */
  readonly keys: ReadonlyMap<string, KeyEntry>;
  readonly floor: number;
  /** The largest position of a write (or of a version a cas/txn reported) placed so far. */
  readonly writeFloor: number;
  /** Op id that set the floor, for messages only. */
  readonly floorBy: number | null;
  /** Canonical identity for memoisation: keys, values, versions and floor. */
  readonly id: string;
}

/** An op as the search places it, with what observations.ts revealed about it. */
export interface ModelOp {
  readonly op: HistoryOp;
  /** The version a write was applied at: its own ok answer, else a read of its value. */
  readonly version: number | null;
  /** For a txn: the branch its answer or a read showed it ran. */
  readonly branch: Branch | null;
}

/** Placing an op either gives the possible next states (several only for undecidable compares) or cannot be done. */
export type StepResult = { readonly ok: true; readonly states: readonly GroupState[] } | { readonly ok: false; readonly reason: string };

export const initialState: GroupState = makeState(new Map(), 0, 0, null);

/**
 * Places `m` after the ops that produced `s`. With `explain` false the reason of a refusal is
 * left empty: the search refuses far more often than it reports, and messages cost.
 */
export function step(s: GroupState, m: ModelOp, explain: boolean): StepResult {
  const d = new Draft(s);
  const why = explain ? (make: () => string) => make() : () => "";
  const call = m.op.call;
  switch (call.f) {
    case "get":
      return stepGet(d, m, why);
    case "put":
      return finish(d, applyWrites(d, [{ op: "put", key: call.key, value: call.value }], m, why));
    case "delete": {
      const r = m.op.result;
      if (r?.f === "delete" && d.get(call.key) !== undefined !== r.existed) {
        return refuse(why(() => `it answered existed=${r.existed}, but ${describeEntry(call.key, d.get(call.key))} in this order`));
      }
      return finish(d, applyWrites(d, [{ op: "delete", key: call.key }], m, why));
    }
    case "cas":
      return stepCas(d, m, why);
    case "txn":
      return stepTxn(d, m, why);
  }
}

type Why = (make: () => string) => string;

function stepGet(d: Draft, m: ModelOp, why: Why): StepResult {
  const call = m.op.call as { key: string };
  const r = m.op.result;
  if (r?.f !== "get") throw new Error(`model: get #${m.op.id} placed without an ok result`);
  const position = 2 * r.index + 1;
  if (position < d.floor) return refuse(why(() => `its index ${r.index} is behind ${describeFloor(d)}: it misses a write linearized before it`));
  const entry = d.get(call.key);
  if (!r.found) {
    if (entry !== undefined) return refuse(why(() => `it found nothing, but ${describeEntry(call.key, entry)}`));
  } else {
    if (entry === undefined || entry.value !== r.value) return refuse(why(() => `it saw ${JSON.stringify(r.value)}@${r.version}, but ${describeEntry(call.key, entry)}`));
    const refused = matchVersion(d, call.key, entry, r.version!, m.op.id, why);
    if (refused !== null) return refuse(refused);
  }
  d.raise(position, m.op.id);
  return { ok: true, states: [d.finish()] };
}

function stepCas(d: Draft, m: ModelOp, why: Why): StepResult {
  const call = m.op.call as { key: string; version: number; value: string };
  const r = m.op.result;
  const entry = d.get(call.key);
  if (r?.f === "cas" && !r.ok) {
    // Answered conflict: applied, wrote nothing, and told the key's version.
    if (r.current === call.version) return refuse(why(() => `it answered conflict with current ${r.current}, the version it expected`));
    const refused = matchVersion(d, call.key, entry, r.current, m.op.id, why);
    return refused === null ? { ok: true, states: [d.finish()] } : refuse(refused);
  }
  // Answered ok, or unknown and placed as taking effect (an unknown cas that failed its check
  // changed nothing a later op can tell from never having run, so it is simply not placed).
  const refused = matchVersion(d, call.key, entry, call.version, m.op.id, why);
  if (refused !== null) return refuse(why(() => `its version check cannot hold: ${refused}`));
  return finish(d, applyWrites(d, [{ op: "put", key: call.key, value: call.value }], m, why));
}

function stepTxn(d: Draft, m: ModelOp, why: Why): StepResult {
  const call = m.op.call as { compares: readonly HistoryCompare[]; success: readonly HistoryTxnWrite[]; failure: readonly HistoryTxnWrite[] };
  const r = m.op.result;
  if (r?.f === "txn") {
    // The answer tells each compared key's version: check it, and reveal unknown ones.
    for (let i = 0; i < call.compares.length; i++) {
      const key = call.compares[i]!.key;
      const refused = matchVersion(d, key, d.get(key), r.currentVersions[i]!, m.op.id, why);
      if (refused !== null) return refuse(why(() => `compare ${i}: ${refused}`));
    }
  }
  const holds = call.compares.map((c) => compareHolds(d.get(c.key), c));
  const decided = holds.includes(false) ? "failure" : holds.includes(null) ? null : "success";
  const branches: Branch[] = decided !== null ? [decided] : ["success", "failure"];
  const wanted = m.branch;
  const possible = wanted === null ? branches : branches.filter((b) => b === wanted);
  if (possible.length === 0) {
    return refuse(why(() => `it ran its ${wanted} branch, but its compares ${decided === "success" ? "hold" : "fail"} here (${describeCompares(d, call.compares)})`));
  }
  const states: GroupState[] = [];
  let reason = "";
  for (const branch of possible) {
    const draft = possible.length === 1 ? d : d.fork();
    const refused = applyWrites(draft, branch === "success" ? call.success : call.failure, m, why);
    if (refused === null) states.push(draft.finish());
    else reason = refused;
  }
  return states.length > 0 ? { ok: true, states } : refuse(reason);
}

/**
 * A write's effect at its version (or at an unknown one), all at one position. An empty
 * branch of a txn still took an index when its version is known.
 */
function applyWrites(d: Draft, writes: readonly HistoryTxnWrite[], m: ModelOp, why: Why): string | null {
  const v = m.version;
  if (v !== null && 2 * v < d.floor) {
    return why(() => `its version ${v} is behind ${describeFloor(d)}: versions must not decrease along the log`);
  }
  for (const w of writes) {
    d.set(w.key, w.op === "put" ? { value: w.value, version: v, lo: d.writeFloor, writer: m.op.id } : undefined);
  }
  if (v !== null) d.raise(2 * v, m.op.id);
  return null;
}

/**
 * Checks that `key` is at `version` (0: absent) here. An entry whose version is unknown may
 * be at any version from its `lo` on; it becomes that version, and the floor moves up to it
 * (the op telling it was applied after that write).
 */
function matchVersion(d: Draft, key: string, entry: KeyEntry | undefined, version: number, by: number, why: Why): string | null {
  if (entry === undefined) return version === 0 ? null : why(() => `it needs ${JSON.stringify(key)} at version ${version}, but ${describeEntry(key, entry)}`);
  if (entry.version === null) {
    if (version === 0 || 2 * version < entry.lo) {
      return why(() => `it needs ${JSON.stringify(key)} at version ${version}, but ${describeEntry(key, entry)}`);
    }
    d.set(key, { ...entry, version });
    d.raise(2 * version, by);
    return null;
  }
  if (entry.version !== version) return why(() => `it needs ${JSON.stringify(key)} at version ${version}, but ${describeEntry(key, entry)}`);
  d.raise(2 * version, by);
  return null;
}

/** true/false, or null when it compares an unknown version. */
function compareHolds(entry: KeyEntry | undefined, c: HistoryCompare): boolean | null {
  switch (c.target) {
    case "exists":
      return (entry !== undefined) === c.exists;
    case "value": {
      // An absent key equals no value (apply.ts).
      const equal = entry !== undefined && entry.value === c.value;
      return c.cmp === "=" ? equal : !equal;
    }
    case "version": {
      if (entry !== undefined && entry.version === null) return null;
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

function finish(d: Draft, refused: string | null): StepResult {
  return refused === null ? { ok: true, states: [d.finish()] } : refuse(refused);
}

function refuse(reason: string): StepResult {
  return { ok: false, reason };
}

export function describeEntry(key: string, entry: KeyEntry | undefined): string {
  if (entry === undefined) return `${JSON.stringify(key)} is absent`;
  const version = entry.version === null ? `an unknown version >= ${Math.ceil(entry.lo / 2)}` : `version ${entry.version}`;
  return `${JSON.stringify(key)} holds ${JSON.stringify(entry.value)} at ${version} (written by #${entry.writer})`;
}

export function describeFloor(s: { floor: number; floorBy: number | null }): string {
  if (s.floorBy === null) return "the start of the log";
  return s.floor % 2 === 0 ? `version ${s.floor / 2} (#${s.floorBy}, linearized before it)` : `index ${(s.floor - 1) / 2} (a get, #${s.floorBy}, linearized before it)`;
}

function describeCompares(d: Draft, compares: readonly HistoryCompare[]): string {
  return [...new Set(compares.map((c) => c.key))].map((k) => describeEntry(k, d.get(k))).join("; ");
}

/** Copy-on-write successor of a state. */
class Draft {
  private keys: Map<string, KeyEntry> | null = null;
  floor: number;
  writeFloor: number;
  floorBy: number | null;

  constructor(private readonly base: GroupState) {
    this.floor = base.floor;
    this.writeFloor = base.writeFloor;
    this.floorBy = base.floorBy;
  }

  get(key: string): KeyEntry | undefined {
    return (this.keys ?? this.base.keys).get(key);
  }

  set(key: string, entry: KeyEntry | undefined): void {
    this.keys ??= new Map(this.base.keys);
    if (entry === undefined) this.keys.delete(key);
    else this.keys.set(key, entry);
  }

  raise(position: number, by: number): void {
    if (position % 2 === 0) this.writeFloor = Math.max(this.writeFloor, position);
    if (position > this.floor || this.floorBy === null) {
      this.floor = Math.max(this.floor, position);
      this.floorBy = by;
    }
  }

  fork(): Draft {
    const copy = new Draft(this.base);
    copy.keys = this.keys === null ? null : new Map(this.keys);
    copy.floor = this.floor;
    copy.writeFloor = this.writeFloor;
    copy.floorBy = this.floorBy;
    return copy;
  }

  finish(): GroupState {
    const same = this.keys === null && this.floor === this.base.floor && this.writeFloor === this.base.writeFloor;
    return same ? { ...this.base, floorBy: this.floorBy } : makeState(this.keys ?? this.base.keys, this.floor, this.writeFloor, this.floorBy);
  }
}

function makeState(keys: ReadonlyMap<string, KeyEntry>, floor: number, writeFloor: number, floorBy: number | null): GroupState {
  const parts: string[] = [`${floor}/${writeFloor}`];
  const names = [...keys.keys()];
  if (names.length > 1) names.sort();
  for (const k of names) {
    const e = keys.get(k)!;
    parts.push(k, e.value, e.version === null ? `?${e.lo}` : String(e.version));
  }
  return { keys, floor, writeFloor, floorBy, id: parts.join("\u0000") };
}
