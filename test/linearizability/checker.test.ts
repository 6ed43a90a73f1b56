// The checker's self-tests: known-good histories it must accept and known-bad ones it must
// reject with a message naming the problem, then a large generated valid history.

import { describe, expect, it } from "vitest";
import { checkHistory, readHistory } from "./checker.js";
import { generateHistory } from "./generate.js";
import type { HistoryCall, HistoryOp, HistoryOutcome, HistoryResult } from "./history.js";

/** A small history builder: times are [invokedAt, completedAt]. */
class Builder {
  readonly ops: HistoryOp[] = [];
  private add(process: string, call: HistoryCall, [from, to]: [number, number | null], outcome: HistoryOutcome, result?: HistoryResult, group = "g"): this {
    const id = this.ops.length;
    this.ops.push({ id, process, via: "n1", group, call, invokedAt: from, completedAt: to, outcome, ...(result === undefined ? {} : { result }) });
    return this;
  }
  put(p: string, key: string, value: string, t: [number, number | null], version: number | "unknown" | "fail", group?: string): this {
    const call: HistoryCall = { f: "put", key, value };
    if (version === "unknown" || version === "fail") return this.add(p, call, t, version, undefined, group);
    return this.add(p, call, t, "ok", { f: "put", version }, group);
  }
  del(p: string, key: string, t: [number, number | null], version: number | "unknown", existed = true): this {
    const call: HistoryCall = { f: "delete", key };
    if (version === "unknown") return this.add(p, call, t, "unknown");
    return this.add(p, call, t, "ok", { f: "delete", version, existed });
  }
  get(p: string, key: string, t: [number, number], seen: [string, number] | null, index: number, consistency: "linearizable" | "stale" = "linearizable", group?: string): this {
    const result: HistoryResult = seen === null ? { f: "get", found: false, index } : { f: "get", found: true, value: seen[0], version: seen[1], index };
    return this.add(p, { f: "get", key, consistency }, t, "ok", result, group);
  }
  cas(p: string, key: string, expected: number, value: string, t: [number, number | null], answer: { version: number } | { current: number } | "unknown"): this {
    const call: HistoryCall = { f: "cas", key, version: expected, value };
    if (answer === "unknown") return this.add(p, call, t, "unknown");
    const result: HistoryResult = "version" in answer ? { f: "cas", ok: true, version: answer.version } : { f: "cas", ok: false, current: answer.current };
    return this.add(p, call, t, "ok", result);
  }
  txn(p: string, call: Omit<Extract<HistoryCall, { f: "txn" }>, "f">, t: [number, number | null], answer: { succeeded: boolean; version: number; currentVersions: number[] } | "unknown"): this {
    if (answer === "unknown") return this.add(p, { f: "txn", ...call }, t, "unknown");
    return this.add(p, { f: "txn", ...call }, t, "ok", { f: "txn", ...answer });
  }
}

const h = () => new Builder();

function expectOk(b: Builder): void {
  const result = checkHistory(b.ops);
  if (result.ok !== true) throw new Error(`expected linearizable, got:\n${"message" in result ? result.message : ""}`);
}

function expectViolation(b: Builder, pattern: RegExp): void {
  const result = checkHistory(b.ops);
  expect(result.ok).toBe(false);
  if (result.ok !== false) return;
  expect(result.message).toMatch(pattern);
  expect(result.window.length).toBeGreaterThan(0);
}

describe("known-good histories", () => {
  it("sequential puts and reads", () => {
    expectOk(h().put("a", "x", "1", [0, 1], 1).get("a", "x", [2, 3], ["1", 1], 1).put("a", "x", "2", [4, 5], 3).get("b", "x", [6, 7], ["2", 3], 4));
  });
  it("a read concurrent with a write may see either value", () => {
    expectOk(h().put("a", "x", "1", [0, 1], 1).put("a", "x", "2", [2, 10], 2).get("b", "x", [3, 4], ["1", 1], 1).get("c", "x", [5, 6], ["2", 2], 2));
  });
  it("writes batched at one version, and a no-op gap in the indexes", () => {
    expectOk(h().put("a", "x", "1", [0, 5], 4).put("b", "y", "2", [0, 5], 4).get("c", "x", [6, 7], ["1", 4], 9).get("c", "y", [8, 9], ["2", 4], 9));
  });
  it("an unknown write that took effect (seen later)", () => {
    expectOk(h().put("a", "x", "1", [0, 1], 1).put("a", "x", "2", [2, null], "unknown").get("b", "x", [5, 6], ["2", 2], 2).get("b", "x", [7, 8], ["2", 2], 3));
  });
  it("an unknown write that never took effect", () => {
    expectOk(h().put("a", "x", "1", [0, 1], 1).put("a", "x", "2", [2, 3], "unknown").get("b", "x", [5, 6], ["1", 1], 7).put("b", "x", "3", [7, 8], 8).get("b", "x", [9, 10], ["3", 8], 8));
  });
  it("an unknown write that took effect long after it timed out", () => {
    expectOk(h().put("a", "x", "1", [0, 1], 1).put("a", "x", "2", [2, 3], "unknown").get("b", "x", [5, 6], ["1", 1], 1).get("b", "x", [20, 21], ["2", 5], 5));
  });
  it("an unknown write whose version nothing reveals, found through a cas conflict", () => {
    expectOk(h().put("a", "x", "1", [0, 1], 1).put("a", "x", "2", [2, 3], "unknown").cas("b", "x", 1, "3", [5, 6], { current: 4 }));
  });
  it("cas: success, conflict, create-if-absent, and an unknown cas", () => {
    expectOk(
      h()
        .cas("a", "x", 0, "1", [0, 1], { version: 1 })
        .cas("b", "x", 0, "2", [2, 3], { current: 1 })
        .cas("a", "x", 1, "3", [4, 5], { version: 2 })
        .cas("b", "x", 2, "4", [6, 7], "unknown")
        .get("a", "x", [8, 9], ["4", 3], 3),
    );
  });
  it("delete answers existed", () => {
    expectOk(h().put("a", "x", "1", [0, 1], 1).del("a", "x", [2, 3], 2, true).del("a", "x", [4, 5], 3, false).get("b", "x", [6, 7], null, 3));
  });
  it("a failed write that nobody observes", () => {
    expectOk(h().put("a", "x", "1", [0, 1], 1).put("a", "x", "2", [2, 3], "fail").get("b", "x", [4, 5], ["1", 1], 1));
  });
  it("txn: both puts visible at one index, compares against the model", () => {
    expectOk(
      h()
        .put("a", "x", "1", [0, 1], 1)
        .txn("a", { compares: [{ key: "x", target: "version", cmp: "=", version: 1 }, { key: "y", target: "exists", exists: false }], success: [{ op: "put", key: "x", value: "2" }, { op: "put", key: "y", value: "3" }], failure: [] }, [2, 3], { succeeded: true, version: 2, currentVersions: [1, 0] })
        .get("b", "x", [4, 5], ["2", 2], 2)
        .get("b", "y", [4, 5], ["3", 2], 2)
        .txn("b", { compares: [{ key: "x", target: "value", cmp: "=", value: "1" }], success: [], failure: [{ op: "delete", key: "y" }] }, [6, 7], { succeeded: false, version: 3, currentVersions: [2] })
        .get("a", "y", [8, 9], null, 3),
    );
  });
  it("an unknown txn that took effect, seen through one of its puts", () => {
    expectOk(
      h()
        .txn("a", { compares: [], success: [{ op: "put", key: "x", value: "1" }, { op: "put", key: "y", value: "2" }], failure: [] }, [0, 1], "unknown")
        .get("b", "y", [2, 3], ["2", 1], 1)
        .get("b", "x", [4, 5], ["1", 1], 1),
    );
  });
  it("stale reads may be old, never wrong", () => {
    expectOk(h().put("a", "x", "1", [0, 1], 1).put("a", "x", "2", [2, 3], 2).get("b", "x", [4, 5], ["1", 1], 1, "stale").get("b", "x", [6, 7], null, 0, "stale"));
  });
  it("groups are independent", () => {
    expectOk(h().put("a", "x", "1", [0, 1], 5, "g1").put("a", "x", "2", [2, 3], 1, "g2").get("b", "x", [4, 5], ["1", 5], 5, "linearizable", "g1"));
  });
});

describe("known-bad histories", () => {
  it("stale read: a linearizable get misses a completed write", () => {
    expectViolation(h().put("a", "x", "1", [0, 1], 1).put("a", "x", "2", [2, 3], 2).get("b", "x", [4, 5], ["1", 1], 1), /leaves behind #2 .*its index 1 is behind version 2/);
  });
  it("lost write: an acknowledged write is never visible", () => {
    expectViolation(h().put("a", "x", "1", [0, 1], 1).put("a", "x", "2", [2, 3], 2).get("b", "x", [4, 5], ["1", 1], 7), /#2 .*cannot be linearized: .*"x" holds "2" at version 2/);
  });
  it("lost write: found nothing after an acknowledged put", () => {
    expectViolation(h().put("a", "x", "1", [0, 1], 1).get("b", "x", [4, 5], null, 3), /it found nothing, but "x" holds "1"/);
  });
  it("double application: the same write's value at two versions", () => {
    expectViolation(h().put("a", "x", "1", [0, 1], 1).get("b", "x", [2, 3], ["1", 1], 1).get("b", "x", [4, 5], ["1", 3], 3), /double application/);
  });
  it("double application: a cas applied twice", () => {
    expectViolation(
      h().cas("a", "x", 0, "1", [0, 1], { version: 1 }).put("b", "x", "2", [2, 3], 2).get("c", "x", [4, 5], ["1", 3], 3),
      /double application/,
    );
  });
  it("read of a never-written value", () => {
    expectViolation(h().put("a", "x", "1", [0, 1], 1).get("b", "x", [2, 3], ["zzz", 1], 1), /never-written value/);
  });
  it("txn seen half-applied: one put visible, the other not, at the same index", () => {
    expectViolation(
      h()
        .put("a", "y", "0", [0, 1], 1)
        .txn("a", { compares: [], success: [{ op: "put", key: "x", value: "1" }, { op: "put", key: "y", value: "2" }], failure: [] }, [2, 3], { succeeded: true, version: 2, currentVersions: [] })
        .get("b", "x", [4, 5], ["1", 2], 2)
        .get("b", "y", [4, 5], ["0", 1], 2),
      /cannot be linearized/,
    );
  });
  it("txn seen half-applied, with an unknown txn", () => {
    expectViolation(
      h()
        .put("a", "y", "0", [0, 1], 1)
        .txn("a", { compares: [], success: [{ op: "put", key: "x", value: "1" }, { op: "put", key: "y", value: "2" }], failure: [] }, [2, 3], "unknown")
        .get("b", "x", [4, 5], ["1", 2], 2)
        .get("b", "y", [6, 7], ["0", 1], 2),
      /cannot be linearized/,
    );
  });
  it("a write answered fail is observed", () => {
    expectViolation(h().put("a", "x", "1", [0, 1], 1).put("a", "x", "2", [2, 3], "fail").get("b", "x", [4, 5], ["2", 2], 2), /write answered fail was observed/);
  });
  it("non-monotonic versions: a later write gets a lower version", () => {
    expectViolation(h().put("a", "x", "1", [0, 1], 5).put("b", "y", "2", [2, 3], 3), /version 3 is behind version 5/);
  });
  it("a txn compare that the model refutes", () => {
    expectViolation(
      h().put("a", "x", "1", [0, 1], 1).txn("a", { compares: [{ key: "x", target: "exists", exists: false }], success: [{ op: "put", key: "y", value: "2" }], failure: [] }, [2, 3], { succeeded: true, version: 2, currentVersions: [1] }),
      /success branch, but its compares fail/,
    );
  });
  it("a cas conflict that reports the wrong current version", () => {
    expectViolation(h().put("a", "x", "1", [0, 1], 1).cas("b", "x", 0, "2", [2, 3], { current: 7 }), /needs "x" at version 7/);
  });
  it("a delete that answers existed for an absent key", () => {
    expectViolation(h().del("a", "x", [0, 1], 1, true), /existed=true/);
  });
  it("a stale read of a version above its index", () => {
    expectViolation(h().put("a", "x", "1", [0, 1], 4).get("b", "x", [2, 3], ["1", 4], 2, "stale"), /above the index/);
  });
  it("a read of a value written only after it completed", () => {
    expectViolation(h().get("b", "x", [0, 1], ["1", 4], 4, "stale").put("a", "x", "1", [2, 3], 4), /read from the future/);
  });
});

describe("search budget", () => {
  it("gives an undecided verdict naming the group rather than searching on", () => {
    // Twenty ok writes need twenty steps at least; ten are allowed.
    const b = h();
    for (let i = 0; i < 20; i++) b.put(`p${i}`, "x", `u${i}`, [0, 1], i + 1);
    const result = checkHistory(b.ops, { searchBudget: 10 });
    expect(result.ok).toBe("unknown");
    if (result.ok === "unknown") expect(result.message).toMatch(/search budget exceeded for group g/);
  });
});

describe("readHistory", () => {
  it("reads valid lines and names the line of an invalid one", () => {
    const good = h().put("a", "x", "1", [0, 1], 1).get("b", "x", [2, 3], ["1", 1], 1).ops;
    const text = good.map((o) => JSON.stringify(o)).join("\n") + "\n";
    expect(readHistory(text)).toEqual(good);
    const bad = text + JSON.stringify({ ...good[0], id: 9, outcome: "ok", result: undefined }) + "\n";
    expect(() => readHistory(bad)).toThrow(/history line 3: an ok operation needs a result/);
    expect(() => readHistory("{nope")).toThrow(/history line 1: not JSON/);
  });
});

describe("a large generated valid history", () => {
  it("200 groups x 500 ops, 5-20 processes per group, ~5% unknown outcomes", () => {
    const ops = generateHistory({ seed: 7, groups: 200, opsPerGroup: 500, processesMin: 5, processesMax: 20, unknownRate: 0.05 });
    const started = performance.now();
    const result = checkHistory(ops);
    const ms = performance.now() - started;
    console.log(`checked ${ops.length} ops in ${ms.toFixed(0)} ms`);
    if (result.ok !== true) throw new Error(`expected linearizable, got ${JSON.stringify(result.ok)}:\n${"message" in result ? result.message : ""}`);
  }, 600_000); // about a minute on two busy cores; measured, not asserted
});
