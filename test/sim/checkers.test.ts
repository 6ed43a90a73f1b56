// Each checker of the simulation, fed a hand-made broken history or state (it must object) and
// a correct one (it must accept). A checker that never objects would let every seed pass.

import { describe, expect, it } from "vitest";
import type { Ballot } from "../../src/protocol/ballot.js";
import type { DurableGroup } from "../../src/protocol/durable.js";
import { emptyDurableGroup } from "../../src/protocol/durable.js";
import type { ChosenEntry, PeerMessage, RequestRecord } from "../../src/protocol/messages.js";
import type { Command, Entry, PutOp, WriteOp, WriteResult } from "../../src/protocol/ops.js";
import { AgreementChecker, ChosenLog } from "./checkers/agreement.js";
import { ConvergenceChecker } from "./checkers/convergence.js";
import { DurableMirror } from "./checkers/durableMirror.js";
import { restoreReplica } from "../../src/protocol/core.js";
import { DEFAULT_LIMITS, DEFAULT_TIMING } from "../../src/protocol/config.js";
import type { Persist } from "../../src/protocol/durable.js";
import { checkNoAcknowledgedWriteLost } from "./checkers/durability.js";
import { FastRoundChecker } from "./checkers/fastRound.js";
import { CheckFailure, type CheckerName } from "./checkers/failure.js";
import { checkLinearizability } from "./checkers/linearizability.js";
import { applyWrite, replayGroup } from "./checkers/model.js";
import { checkPersistBeforeSend } from "./checkers/persistBeforeSend.js";
import type { AttemptOutcome, History, ReadRecord, WriteRecord } from "./history.js";
import { emptyHistory } from "./history.js";

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const ballot = (round: number, node: string): Ballot => ({ round, node });
const put = (key: string, value: string): PutOp => ({ op: "put", key, value: bytes(value) });

function chosen(index: number, id: string, commands: Command[] = [], b: Ballot = ballot(1, "n1")): ChosenEntry {
  return { index, ballot: b, value: { id, commands } };
}

function expectObjection(checker: CheckerName, run: () => void): CheckFailure {
  try {
    run();
  } catch (e) {
    expect(e).toBeInstanceOf(CheckFailure);
    expect((e as CheckFailure).checker).toBe(checker);
    return e as CheckFailure;
  }
  throw new Error(`${checker} did not object`);
}

describe("agreement", () => {
  it("objects to two values chosen at one index", () => {
    const a = new AgreementChecker();
    a.observe("n1", "g", chosen(1, "v1"), false, "t1");
    const f = expectObjection("agreement", () => a.observe("n2", "g", chosen(1, "v2"), false, "t2"));
    expect(f.message).toContain("index 1");
  });

  it("objects to one value id carrying different commands", () => {
    const a = new AgreementChecker();
    a.observe("n1", "g", chosen(1, "v1", [{ requestId: "r1", op: put("k", "x") }]), false, "t1");
    expectObjection("agreement", () => a.observe("n2", "g", chosen(1, "v1", [{ requestId: "r1", op: put("k", "y") }]), false, "t2"));
  });

  it("objects to a jump onto an index nobody reached step by step", () => {
    const a = new AgreementChecker();
    a.observe("n1", "g", chosen(1, "v1"), false, "t1");
    expectObjection("agreement", () => a.observe("n1", "g", chosen(3, "v3"), false, "t2"));
  });

  it("objects to chosen going back without a restart, and to a restart onto an unseen index", () => {
    const a = new AgreementChecker();
    a.observe("n1", "g", chosen(1, "v1"), false, "t1");
    a.observe("n1", "g", chosen(2, "v2"), false, "t2");
    expectObjection("agreement", () => a.observe("n1", "g", chosen(1, "v1"), false, "t3"));
    const b = new AgreementChecker();
    expectObjection("agreement", () => b.observe("n1", "g", chosen(1, "v1"), true, "restart"));
  });

  it("accepts the same value seen everywhere, catch-up jumps to known indexes, and restarts", () => {
    const a = new AgreementChecker();
    a.observe("n1", "g", chosen(1, "v1"), false, "t1");
    a.observe("n1", "g", chosen(2, "v2"), false, "t2");
    a.observe("n1", "g", chosen(3, "v3"), false, "t3");
    // Another ballot chose the same value: still agreement.
    a.observe("n2", "g", chosen(1, "v1", [], ballot(4, "n2")), false, "t4");
    a.observe("n3", "g", chosen(3, "v3"), false, "t5"); // data catch-up from 0 to 3
    a.observe("n1", "g", chosen(2, "v2"), true, "restart"); // synced only up to 2
    a.observe("n1", "g", null, true, "restart"); // synced nothing
    expect(a.log.lastIndex("g")).toBe(3);
    expect(a.log.entry("g", 2)?.value.id).toBe("v2");
  });
});

describe("convergence", () => {
  const data = (pairs: [string, string, number][]): Map<string, Entry> =>
    new Map(pairs.map(([k, v, version]) => [k, { value: bytes(v), version }]));
  const requests = (ids: string[]): Map<string, RequestRecord> =>
    new Map(ids.map((id, i) => [id, { requestId: id, seq: i + 1, index: 1, result: { type: "put", version: 1 } }]));

  it("objects to different data at the same chosen index", () => {
    const c = new ConvergenceChecker();
    c.observe("n1", "g", 1, data([["a", "x", 1]]), requests(["r1"]), "t1");
    expectObjection("convergence", () => c.observe("n2", "g", 1, data([["a", "y", 1]]), requests(["r1"]), "t2"));
    expectObjection("convergence", () => c.observe("n3", "g", 1, data([["a", "x", 1]]), requests([]), "t3"));
  });

  it("accepts equal data built in another order", () => {
    const c = new ConvergenceChecker();
    c.observe("n1", "g", 2, data([["a", "x", 1], ["b", "y", 2]]), requests(["r1", "r2"]), "t1");
    c.observe("n2", "g", 2, data([["b", "y", 2], ["a", "x", 1]]), requests(["r1", "r2"]), "t2");
    c.observe("n2", "g", 3, data([]), requests([]), "t3"); // another index: its own digest
  });
});

describe("durable-mirror", () => {
  const config = { group: "g", self: "n1", replicas: ["n1", "n2", "n3"], incarnation: "i1", seed: 1, timing: DEFAULT_TIMING, limits: DEFAULT_LIMITS };
  const record = (requestId: string, seq: number): RequestRecord => ({ requestId, seq, index: 1, result: { type: "put", version: 1 } });
  const persist = (parts: Partial<Persist>): Persist => ({ group: "g", meta: { chosen: null, promised: null, accepted: null }, reset: false, keys: [], requests: [], forgetRequests: [], ...parts });

  it("objects when the persists leave on disk other request ids, data or meta than the replica holds", () => {
    // The replica remembers r1 (applied again after its eviction in the same step) ...
    const state = restoreReplica(config, emptyDurableGroup());
    state.requests.set("r1", record("r1", 2));
    const mirror = new DurableMirror(emptyDurableGroup());
    // ... but the persist both adds and forgets it: storage refuses it (it used to drop it).
    const both = persist({ requests: [record("r1", 2)], forgetRequests: ["r1"] });
    expectObjection("durable-mirror", () => mirror.apply("n1", both, "test"));
    // ... or the persist forgets it alone: gone on disk.
    const forgot = persist({ forgetRequests: ["r1"] });
    mirror.apply("n1", forgot, "test");
    expectObjection("durable-mirror", () => mirror.check("n1", state, forgot, "test"));
    // A promise the replica holds and no persist carries.
    const promised = restoreReplica(config, emptyDurableGroup());
    promised.promised = ballot(2, "n2");
    expectObjection("durable-mirror", () => new DurableMirror(emptyDurableGroup()).check("n1", promised, null, "test"));
  });

  it("accepts persists that say what changed", () => {
    const state = restoreReplica(config, emptyDurableGroup());
    state.requests.set("r1", record("r1", 2));
    state.data.set("k", { value: bytes("v"), version: 1 });
    const mirror = new DurableMirror(emptyDurableGroup());
    const good = persist({ keys: [["k", { value: bytes("v"), version: 1 }]], requests: [record("r1", 2)] });
    mirror.apply("n1", good, "test");
    mirror.check("n1", state, good, "test");
  });
});

describe("persist-before-send", () => {
  const image = (meta: Partial<DurableGroup["meta"]>): DurableGroup => ({
    ...emptyDurableGroup(),
    meta: { chosen: null, promised: null, accepted: null, ...meta },
  });
  const promise = (index: number, b: Ballot): PeerMessage => ({ type: "promise", group: "g", index, ballot: b, accepted: null });
  const accepted = (index: number, b: Ballot): PeerMessage => ({ type: "accepted", group: "g", index, ballot: b });

  it("objects to a Promise or Accepted the disk does not show yet", () => {
    expectObjection("persist-before-send", () => checkPersistBeforeSend("n1", "n2", promise(1, ballot(2, "n2")), image({}), 0));
    expectObjection("persist-before-send", () =>
      checkPersistBeforeSend("n1", "n2", promise(1, ballot(2, "n2")), image({ promised: ballot(1, "n3") }), 0),
    );
    expectObjection("persist-before-send", () =>
      checkPersistBeforeSend("n1", "n2", accepted(1, ballot(2, "n2")), image({ promised: ballot(2, "n2") }), 0),
    );
    // The durable promise is about instance chosen+1 = 1, not the 2 the message is about.
    expectObjection("persist-before-send", () =>
      checkPersistBeforeSend("n1", "n2", promise(2, ballot(2, "n2")), image({ promised: ballot(3, "n2") }), 0),
    );
    expectObjection("persist-before-send", () => checkPersistBeforeSend("n1", "n2", promise(1, ballot(1, "n2")), undefined, 0));
  });

  it("accepts a vote already on disk, a decided instance, and messages that reveal no vote", () => {
    checkPersistBeforeSend("n1", "n2", promise(1, ballot(2, "n2")), image({ promised: ballot(2, "n2") }), 0);
    checkPersistBeforeSend("n1", "n2", promise(1, ballot(2, "n2")), image({ promised: ballot(3, "n3") }), 0);
    const value = { id: "v", commands: [] };
    checkPersistBeforeSend("n1", "n2", accepted(1, ballot(2, "n2")), image({ accepted: { ballot: ballot(2, "n2"), value } }), 0);
    checkPersistBeforeSend("n1", "n2", accepted(1, ballot(2, "n2")), image({ chosen: chosen(1, "v") }), 0);
    checkPersistBeforeSend("n1", "n2", { type: "readProbe", group: "g", probe: 1 }, image({}), 0);
  });

  const prepare = (index: number, b: Ballot): PeerMessage => ({ type: "prepare", group: "g", index, ballot: b, prev: null });
  const acceptMsg = (index: number, b: Ballot): PeerMessage => ({ type: "accept", group: "g", index, ballot: b, value: { id: "n1/x/1", commands: [] }, prev: null });

  it("objects to a Prepare, or an Accept above round 0, whose ballot the sender's disk has not promised", () => {
    expectObjection("persist-before-send", () => checkPersistBeforeSend("n1", "n2", prepare(1, ballot(2, "n1")), image({}), 0));
    expectObjection("persist-before-send", () =>
      checkPersistBeforeSend("n1", "n2", acceptMsg(1, ballot(2, "n1")), image({ promised: ballot(1, "n3") }), 0),
    );
  });

  it("lets a proposal leave before the proposer's own accept: a promised ballot, or round 0 with nothing on disk", () => {
    checkPersistBeforeSend("n1", "n2", acceptMsg(1, ballot(2, "n1")), image({ promised: ballot(2, "n1") }), 0);
    checkPersistBeforeSend("n1", "n2", prepare(1, ballot(2, "n1")), image({ promised: ballot(3, "n3") }), 0);
    checkPersistBeforeSend("n1", "n2", acceptMsg(1, ballot(0, "n1")), image({}), 0);
  });
});

describe("fast-round", () => {
  const accept = (index: number, b: Ballot, valueId: string): PeerMessage => ({
    type: "accept",
    group: "g",
    index,
    ballot: b,
    value: { id: valueId, commands: [] },
    prev: null,
  });

  it("objects to two nodes, or two values, skipping Prepare at one index", () => {
    const twoNodes = new FastRoundChecker();
    twoNodes.onRelease("n1", accept(4, ballot(0, "n1"), "v1"), 0);
    expectObjection("fast-round", () => twoNodes.onRelease("n2", accept(4, ballot(0, "n2"), "v2"), 1));
    const twoValues = new FastRoundChecker();
    twoValues.onRelease("n1", accept(4, ballot(0, "n1"), "v1"), 0);
    expectObjection("fast-round", () => twoValues.onRelease("n1", accept(4, ballot(0, "n1"), "v9"), 1));
  });

  it("accepts one owner repeating its value, other indexes, and prepared rounds", () => {
    const c = new FastRoundChecker();
    c.onRelease("n1", accept(4, ballot(0, "n1"), "v1"), 0);
    c.onRelease("n1", accept(4, ballot(0, "n1"), "v1"), 1); // to another peer, or resent
    c.onRelease("n2", accept(5, ballot(0, "n2"), "v2"), 2);
    c.onRelease("n3", accept(4, ballot(3, "n3"), "v3"), 3);
  });
});

// ---- histories for durability and linearizability ----------------------------------------------

function logOf(group: string, entries: ChosenEntry[]): ChosenLog {
  const log = new ChosenLog();
  for (const e of entries) log.observe(group, e, "test");
  return log;
}

function write(
  history: History,
  requestId: string,
  op: WriteOp,
  attempts: [invokedAt: number, completedAt: number, outcome: AttemptOutcome<WriteResult>][],
): void {
  const record: WriteRecord = {
    group: "g",
    client: "c",
    requestId,
    fresh: false,
    op,
    attempts: attempts.map(([invokedAt, completedAt, outcome]) => ({ node: "n1", invokedAt, completedAt, outcome })),
  };
  history.writes.set(requestId, record);
}

function get(
  history: History,
  key: string,
  invokedAt: number,
  completedAt: number,
  index: number,
  entry: Entry | null,
  consistency: ReadRecord["consistency"] = "linearizable",
): void {
  history.reads.push({
    group: "g",
    client: "c",
    node: "n1",
    query: { kind: "get", key },
    consistency,
    invokedAt,
    completedAt,
    outcome: { kind: "ok", result: { kind: "get", index, entry } },
  });
}

const ok = (result: WriteResult): AttemptOutcome<WriteResult> => ({ kind: "ok", result });
const cmd = (requestId: string, op: WriteOp): Command => ({ requestId, op });

/** Index 1: put a=x (w1); index 2: cas a@1 -> y (w2); index 3: put b=z (w3). */
function correctRun(): { history: History; log: ChosenLog } {
  const log = logOf("g", [
    chosen(1, "v1", [cmd("w1", put("a", "x"))]),
    chosen(2, "v2", [cmd("w2", { op: "cas", key: "a", version: 1, value: bytes("y") })]),
    chosen(3, "v3", [cmd("w3", put("b", "z")), cmd("w1", put("a", "x"))]), // a duplicate of w1: skipped
  ]);
  const history = emptyHistory();
  write(history, "w1", put("a", "x"), [[0, 10, ok({ type: "put", version: 1 })]]);
  get(history, "a", 11, 15, 1, { value: bytes("x"), version: 1 });
  write(history, "w2", { op: "cas", key: "a", version: 1, value: bytes("y") }, [[16, 25, ok({ type: "cas", ok: true, version: 2 })]]);
  // Concurrent with w2: may see either side of it.
  get(history, "a", 20, 30, 1, { value: bytes("x"), version: 1 });
  // Timed out, retried, and the retry is told the first result.
  write(history, "w3", put("b", "z"), [
    [26, 40, { kind: "error", code: "timeout" }],
    [41, 45, ok({ type: "put", version: 3 })],
  ]);
  // Never applied, and said so.
  write(history, "w4", put("b", "never"), [[46, 50, { kind: "error", code: "unavailable" }]]);
  // A stale read may be old, never wrong.
  get(history, "a", 60, 61, 0, null, "stale");
  get(history, "b", 60, 70, 3, { value: bytes("z"), version: 3 });
  return { history, log };
}

describe("durability", () => {
  const positions = (chosenIndex: number) => [
    { node: "n1", group: "g", chosen: 3 },
    { node: "n2", group: "g", chosen: chosenIndex },
  ];

  it("accepts a history whose acknowledged writes are all chosen and held everywhere", () => {
    const { history, log } = correctRun();
    checkNoAcknowledgedWriteLost(history, log, positions(3));
  });

  it("objects to a replica left behind an acknowledged write", () => {
    const { history, log } = correctRun();
    expectObjection("durability", () => checkNoAcknowledgedWriteLost(history, log, positions(2)));
  });

  it("objects to an acknowledged write missing from the log, or at another index", () => {
    const { history, log } = correctRun();
    write(history, "w9", put("a", "lost"), [[80, 90, ok({ type: "put", version: 4 })]]);
    expectObjection("durability", () => checkNoAcknowledgedWriteLost(history, log, positions(3)));
    const second = correctRun();
    write(second.history, "w9", put("a", "lost"), [[80, 90, ok({ type: "put", version: 2 })]]);
    expectObjection("durability", () => checkNoAcknowledgedWriteLost(second.history, second.log, positions(3)));
  });

  it("objects to a failed cas that was never chosen", () => {
    const { history, log } = correctRun();
    write(history, "w9", { op: "cas", key: "a", version: 7, value: bytes("q") }, [[80, 90, ok({ type: "cas", ok: false, current: 2 })]]);
    expectObjection("durability", () => checkNoAcknowledgedWriteLost(history, log, positions(3)));
  });
});

describe("linearizability", () => {
  it("accepts a correct history", () => {
    const { history, log } = correctRun();
    checkLinearizability(history, log);
  });

  it("objects to a write answered with a result the log does not give it", () => {
    const { history, log } = correctRun();
    write(history, "w2", { op: "cas", key: "a", version: 1, value: bytes("y") }, [[16, 25, ok({ type: "cas", ok: false, current: 1 })]]);
    expectObjection("linearizability", () => checkLinearizability(history, log));
  });

  it("objects to a retried request id answered with a second application", () => {
    const { history, log } = correctRun();
    write(history, "w3", put("b", "z"), [
      [26, 40, ok({ type: "put", version: 3 })],
      [41, 45, ok({ type: "put", version: 4 })],
    ]);
    expectObjection("linearizability", () => checkLinearizability(history, log));
  });

  it("objects to an 'unavailable' write that was applied after all", () => {
    const { history, log } = correctRun();
    write(history, "w3", put("b", "z"), [[26, 40, { kind: "error", code: "unavailable" }]]);
    expectObjection("linearizability", () => checkLinearizability(history, log));
  });

  it("objects to a write applied by one attempt while another attempt of its request id was answered 'unavailable'", () => {
    // The API promises "never applied" of the request id, whatever other attempts did.
    const { history, log } = correctRun();
    write(history, "w3", put("b", "z"), [
      [26, 30, { kind: "lost" }],
      [31, 40, { kind: "error", code: "unavailable" }],
    ]);
    expectObjection("linearizability", () => checkLinearizability(history, log));
    const late = correctRun();
    write(late.history, "w3", put("b", "z"), [
      [26, 30, { kind: "error", code: "unavailable" }],
      [31, 40, { kind: "error", code: "timeout" }],
    ]);
    expectObjection("linearizability", () => checkLinearizability(late.history, late.log));
  });

  it("objects to a read whose value is not the log's at its index (stale reads too)", () => {
    const { history, log } = correctRun();
    get(history, "a", 100, 110, 2, { value: bytes("x"), version: 1 });
    expectObjection("linearizability", () => checkLinearizability(history, log));
    const second = correctRun();
    get(second.history, "a", 100, 110, 1, null, "stale");
    expectObjection("linearizability", () => checkLinearizability(second.history, second.log));
  });

  it("objects to a scan page that hides a following key, and accepts a correct page", () => {
    const scan = (history: History, limit: number, items: { key: string; value: Uint8Array; version: number }[], next?: string): void => {
      history.reads.push({
        group: "g",
        client: "c",
        node: "n1",
        query: { kind: "scan", prefix: "", limit },
        consistency: "linearizable",
        invokedAt: 100,
        completedAt: 110,
        outcome: { kind: "ok", result: { kind: "scan", index: 3, items, ...(next === undefined ? {} : { next }) } },
      });
    };
    const a = { key: "a", value: bytes("y"), version: 2 };
    const b = { key: "b", value: bytes("z"), version: 3 };
    const good = correctRun();
    scan(good.history, 1, [a], "a");
    scan(good.history, 2, [a, b]);
    checkLinearizability(good.history, good.log);
    const noNext = correctRun();
    scan(noNext.history, 1, [a]);
    expectObjection("linearizability", () => checkLinearizability(noNext.history, noNext.log));
    const missing = correctRun();
    scan(missing.history, 2, [b]);
    expectObjection("linearizability", () => checkLinearizability(missing.history, missing.log));
  });

  it("objects to a read that reports an index past the log", () => {
    const { history, log } = correctRun();
    get(history, "a", 100, 110, 9, null);
    expectObjection("linearizability", () => checkLinearizability(history, log));
  });

  it("objects to a linearizable read that misses a write completed before it began", () => {
    const { history, log } = correctRun();
    // w2 (index 2) completed at 25; this read began at 26 but observed index 1.
    get(history, "a", 26, 35, 1, { value: bytes("x"), version: 1 });
    expectObjection("linearizability", () => checkLinearizability(history, log));
  });

  it("accepts the same old read when it is stale", () => {
    const { history, log } = correctRun();
    get(history, "a", 26, 35, 1, { value: bytes("x"), version: 1 }, "stale");
    checkLinearizability(history, log);
  });

  it("objects to a write ordered before a write that completed before it was invoked", () => {
    const log = logOf("g", [chosen(1, "v1", [cmd("w2", put("a", "2"))]), chosen(2, "v2", [cmd("w1", put("a", "1"))])]);
    const history = emptyHistory();
    write(history, "w1", put("a", "1"), [[0, 10, ok({ type: "put", version: 2 })]]);
    // Invoked after w1 completed, yet applied before it (its client timed out, so only the
    // invocation constrains it).
    write(history, "w2", put("a", "2"), [[11, 20, { kind: "error", code: "timeout" }]]);
    expectObjection("linearizability", () => checkLinearizability(history, log));
  });

  it("objects to a write ordered before a read that completed before the write began", () => {
    const { history, log } = correctRun();
    // The read at index 3 completed at 70; a write invoked at 71 cannot land at index 3.
    write(history, "w5", put("c", "late"), [[71, 80, { kind: "error", code: "timeout" }]]);
    const bad = logOf("g", [
      log.entry("g", 1)!,
      log.entry("g", 2)!,
      chosen(3, "v3", [cmd("w3", put("b", "z")), cmd("w5", put("c", "late"))]),
    ]);
    expectObjection("linearizability", () => checkLinearizability(history, bad));
  });

  it("objects to a gap in the chosen log", () => {
    const log = logOf("g", [chosen(1, "v1"), chosen(3, "v3")]);
    expectObjection("linearizability", () => checkLinearizability(emptyHistory(), log));
  });
});

describe("reference model", () => {
  it("follows ops.ts: versions are indexes, cas compares versions, txn compares before writing", () => {
    const data = new Map<string, Entry>();
    expect(applyWrite(data, put("a", "x"), 1)).toEqual({ type: "put", version: 1 });
    expect(applyWrite(data, { op: "cas", key: "a", version: 0, value: bytes("y") }, 2)).toEqual({ type: "cas", ok: false, current: 1 });
    expect(applyWrite(data, { op: "cas", key: "b", version: 0, value: bytes("y") }, 2)).toEqual({ type: "cas", ok: true, version: 2 });
    expect(applyWrite(data, { op: "delete", key: "c" }, 3)).toEqual({ type: "delete", version: 3, existed: false });
    const txn: WriteOp = {
      op: "txn",
      compares: [
        { key: "a", target: "version", cmp: "=", version: 1 },
        { key: "c", target: "exists", exists: false },
        { key: "c", target: "value", cmp: "!=", value: bytes("q") },
      ],
      success: [put("c", "1"), { op: "delete", key: "c" }],
      failure: [],
    };
    expect(applyWrite(data, txn, 4)).toEqual({
      type: "txn",
      succeeded: true,
      version: 4,
      currentVersions: [1, 0, 0],
      results: [
        { type: "put", version: 4 },
        { type: "delete", version: 4, existed: true },
      ],
    });
    expect(data.has("c")).toBe(false);
  });

  it("applies a request id once", () => {
    const model = replayGroup((i) =>
      i <= 2 ? chosen(i, `v${i}`, [cmd("w1", put("a", `x${i}`)), cmd(`w${i + 1}`, put("b", `y${i}`))]) : undefined,
    );
    expect(model.lastIndex).toBe(2);
    expect(model.applied.get("w1")).toEqual([{ index: 1, result: { type: "put", version: 1 } }]);
    expect(model.dataAt(2).get("a")?.version).toBe(1);
    expect(model.dataAt(2).get("b")?.version).toBe(2);
    expect(model.dataAt(0).size).toBe(0);
  });

  it("applies a request id again once the group has forgotten it", () => {
    // Memory 2: after w1, w2, w3 are applied, w1 is forgotten, so its retry at index 3 applies.
    const log = [
      chosen(1, "v1", [cmd("w1", put("a", "1")), cmd("w2", put("a", "2"))]),
      chosen(2, "v2", [cmd("w3", put("a", "3")), cmd("w2", put("a", "2"))]),
      chosen(3, "v3", [cmd("w1", put("a", "1"))]),
    ];
    const model = replayGroup((i) => log[i - 1], 2);
    expect(model.applied.get("w1")?.map((a) => a.index)).toEqual([1, 3]);
    expect(model.applied.get("w2")?.map((a) => a.index)).toEqual([1]);
    expect(model.dataAt(3).get("a")?.version).toBe(3);
  });
});
