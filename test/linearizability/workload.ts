// What the clients of `npm run verify` ask, one operation at a time: a pure generator (seeded,
// no I/O). Two kinds of key-groups:
//   registers  r0, r1, ...: single keys used as their own group (no `group` on the wire):
//              linearizable and stale gets, puts, deletes and cas on a few hot keys;
//   groups     g0, g1, ... with keys a, b, c: txns with version, value and exists compares
//              across keys, plain multi-key txns, single-key puts and gets inside the group.
// Few keys and many clients make contention the normal case. Every written value is unique
// (the caller gives a fresh tag), so a read names the write it saw. Versions for cas and
// compares come from what any client saw last (often current, sometimes stale: both
// branches get exercised).

import type { HistoryCall, HistoryCompare, HistoryResult, HistoryTxnWrite } from "./history.js";
import type { Rng } from "./rng.js";

export interface WorkloadOptions {
  /** Single-key registers. */
  readonly registers: number;
  /** Multi-key groups. */
  readonly groups: number;
}

export interface PlannedOp {
  readonly group: string;
  /** Whether the request names its group (a register is addressed by its key alone). */
  readonly sendGroup: boolean;
  readonly call: HistoryCall;
}

const GROUP_KEYS = ["a", "b", "c"] as const;

interface Seen {
  version: number;
  value: string | null;
}

export class Workload {
  private readonly seen = new Map<string, Seen>();
  private readonly registerNames: string[];
  private readonly groupNames: string[];

  constructor(
    private readonly rng: Rng,
    options: WorkloadOptions,
  ) {
    if (options.registers + options.groups < 1) throw new Error("the workload needs at least one register or group");
    this.registerNames = Array.from({ length: options.registers }, (_, i) => `r${i}`);
    this.groupNames = Array.from({ length: options.groups }, (_, i) => `g${i}`);
  }

  /** The next operation; `value` is a value no other write uses. */
  next(value: string): PlannedOp {
    const total = this.registerNames.length + this.groupNames.length;
    const i = this.rng.int(0, total - 1);
    return i < this.registerNames.length ? this.registerOp(this.registerNames[i]!, value) : this.groupOp(this.groupNames[i - this.registerNames.length]!, value);
  }

  /** Learns versions and values from an ok result, for later cas and compares. */
  observe(op: PlannedOp, result: HistoryResult): void {
    const call = op.call;
    if (call.f === "get" && result.f === "get") this.note(op.group, call.key, result.found ? (result.version ?? 0) : 0, result.found ? (result.value ?? null) : null);
    else if (call.f === "put" && result.f === "put") this.note(op.group, call.key, result.version, call.value);
    else if (call.f === "cas" && result.f === "cas") {
      if (result.ok) this.note(op.group, call.key, result.version, call.value);
      else this.note(op.group, call.key, result.current, null);
    } else if (call.f === "delete" && result.f === "delete") this.note(op.group, call.key, 0, null);
    else if (call.f === "txn" && result.f === "txn") {
      for (const w of result.succeeded ? call.success : call.failure) this.note(op.group, w.key, w.op === "put" ? result.version : 0, w.op === "put" ? w.value : null);
    }
  }

  private note(group: string, key: string, version: number, value: string | null): void {
    const k = `${group}\u0000${key}`;
    const cur = this.seen.get(k);
    if (cur === undefined || version >= cur.version || version === 0) this.seen.set(k, { version, value });
  }

  private seenOf(group: string, key: string): Seen {
    return this.seen.get(`${group}\u0000${key}`) ?? { version: 0, value: null };
  }

  private registerOp(key: string, value: string): PlannedOp {
    const r = this.rng.next();
    const op = (call: HistoryCall): PlannedOp => ({ group: key, sendGroup: false, call });
    if (r < 0.35) return op({ f: "get", key, consistency: "linearizable" });
    if (r < 0.45) return op({ f: "get", key, consistency: "stale" });
    if (r < 0.65) return op({ f: "put", key, value });
    if (r < 0.95) {
      // Mostly the version last seen; now and then 0 (create-if-absent) or one off.
      const seen = this.seenOf(key, key).version;
      const s = this.rng.next();
      const version = s < 0.8 ? seen : s < 0.9 ? 0 : seen + 1;
      return op({ f: "cas", key, version, value });
    }
    return op({ f: "delete", key });
  }

  private groupOp(group: string, value: string): PlannedOp {
    const r = this.rng.next();
    const key = this.rng.pick(GROUP_KEYS);
    const op = (call: HistoryCall): PlannedOp => ({ group, sendGroup: true, call });
    if (r < 0.3) return op({ f: "get", key, consistency: "linearizable" });
    if (r < 0.35) return op({ f: "get", key, consistency: "stale" });
    if (r < 0.45) return op({ f: "put", key, value });
    const [k1, k2, k3] = this.rng.shuffle(GROUP_KEYS) as [string, string, string];
    if (r < 0.6) {
      // An atomic multi-write: a reader must never see one key of it without the other.
      const success: HistoryTxnWrite[] = [
        { op: "put", key: k1, value: `${value}/${k1}` },
        this.rng.next() < 0.8 ? { op: "put", key: k2, value: `${value}/${k2}` } : { op: "delete", key: k2 },
      ];
      return op({ f: "txn", compares: [], success, failure: [] });
    }
    const compares: HistoryCompare[] = [this.compareOn(group, k1)];
    if (this.rng.next() < 0.3) compares.push(this.compareOn(group, k2));
    const success: HistoryTxnWrite[] = [
      { op: "put", key: k2, value: `${value}/${k2}` },
      { op: "put", key: k3, value: `${value}/${k3}` },
    ];
    const failure: HistoryTxnWrite[] = this.rng.next() < 0.5 ? [{ op: "put", key: k1, value: `${value}/${k1}` }] : [];
    return op({ f: "txn", compares, success, failure });
  }

  private compareOn(group: string, key: string): HistoryCompare {
    const seen = this.seenOf(group, key);
    const s = this.rng.next();
    if (s < 0.6) return { key, target: "version", cmp: "=", version: seen.version };
    if (s < 0.75) return { key, target: "version", cmp: this.rng.pick([">", "<", "!="] as const), version: seen.version };
    if (s < 0.9 && seen.value !== null) return { key, target: "value", cmp: this.rng.next() < 0.8 ? "=" : "!=", value: seen.value };
    return { key, target: "exists", exists: this.rng.next() < 0.7 };
  }
}
