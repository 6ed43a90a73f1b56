// One small test per protocol rule of docs/DESIGN.md, named by the rule it checks (as
// etcd-raft's raft_paper_test.go names its tests after the Raft paper), stepping the pure core
// directly: a broken rule fails a test with its name, not only a simulation seed.
//
// Each test builds replicas with restoreReplica, hands them messages with step, and looks at
// the Ready and the state. Nothing here is timed: `now` is passed by hand.

import { describe, expect, it } from "vitest";
import type { Ballot, NodeId } from "../../src/protocol/ballot.js";
import { DEFAULT_LIMITS, DEFAULT_TIMING, type GroupConfig } from "../../src/protocol/config.js";
import { restoreReplica, step } from "../../src/protocol/core.js";
import { applyPersist, emptyDurableGroup, type DurableGroup } from "../../src/protocol/durable.js";
import type { Input, Ready } from "../../src/protocol/io.js";
import type { Accept, AcceptedValue, ChosenEntry, PeerMessage, Prepare } from "../../src/protocol/messages.js";
import type { Command, Value } from "../../src/protocol/ops.js";
import { ReleaseQueue } from "../../src/protocol/releaseQueue.js";
import type { GroupState } from "../../src/protocol/state.js";
import { Harness } from "./harness.js";

const GROUP = "g";
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

/**
 * Most rules here are about which messages leave and when, so their replicas send every Accept
 * and ReadProbe to every replica at once (the spare delays 0); the two thrifty tests at the end
 * use the defaults, where only a majority gets them first.
 */
const ALL_AT_ONCE = { ...DEFAULT_TIMING, probeSpareMs: 0, acceptSpareMs: 0 };

let incarnations = 0;
function config(self: NodeId, replicas: readonly NodeId[], restarted = false, timing = ALL_AT_ONCE): GroupConfig {
  const n = ++incarnations;
  const fence = restarted ? { fastRoundFence: `${self}/i${n}/` } : {};
  return { group: GROUP, self, replicas, incarnation: `i${n}`, ...fence, seed: n, timing, limits: DEFAULT_LIMITS };
}

/** One replica with its own durable image, which every step's persist is applied to. */
class Replica {
  state: GroupState;
  readonly disk: DurableGroup;

  constructor(readonly self: NodeId, readonly replicas: readonly NodeId[] = ["n1", "n2", "n3"], disk?: DurableGroup, lost = false, restarted = false, readonly timing = ALL_AT_ONCE) {
    this.disk = disk ?? emptyDurableGroup();
    this.state = restoreReplica(config(self, replicas, restarted, timing), copyDisk(this.disk), { lost });
  }

  /**
   * One step, its persist made durable at once, and the votes our acceptor sent our own
   * proposer (released after that persist) delivered back, as a driver does; returns the
   * steps' Readies merged (the last persist).
   */
  input(input: Input, now = 0): Ready {
    const ready = step(this.state, now, input);
    if (ready.persist !== null) applyPersist(this.disk, ready.persist);
    let merged: Ready = { ...ready, send: ready.send.filter((o) => o.to !== this.self) };
    for (const o of ready.send) {
      if (o.to !== this.self) continue;
      const back = this.input({ type: "message", from: this.self, msg: o.msg }, now);
      merged = {
        persist: back.persist ?? merged.persist,
        send: [...merged.send, ...back.send],
        sendNow: [...merged.sendNow, ...back.sendNow],
        answers: [...merged.answers, ...back.answers],
        answersNow: [...merged.answersNow, ...back.answersNow],
        proposed: back.proposed ?? merged.proposed,
        wakeAt: back.wakeAt,
      };
    }
    return merged;
  }

  /** Steps without the persist ever reaching the disk (a crash follows): only what leaves at once. */
  inputLost(input: Input, now = 0): Ready {
    return step(this.state, now, input);
  }

  receive(from: NodeId, msg: PeerMessage, now = 0): Ready {
    return this.input({ type: "message", from, msg }, now);
  }

  /** A crash and restart: only the durable image survives (a later process: fenced fast round). */
  restart(): Replica {
    return new Replica(this.self, this.replicas, this.disk, false, true, this.timing);
  }
}

function copyDisk(d: DurableGroup): DurableGroup {
  return { meta: d.meta, keys: new Map(d.keys), requests: [...d.requests] };
}

const ballot = (round: number, node: NodeId): Ballot => ({ round, node });

function value(id: string, ...commands: Command[]): Value {
  return { id, commands };
}

function put(requestId: string, key: string, v: string): Command {
  return { requestId, op: { op: "put", key, value: enc(v) } };
}

function prepare(index: number, b: Ballot, prev: ChosenEntry | null = null): Prepare {
  return { type: "prepare", group: GROUP, index, ballot: b, prev };
}

function accept(index: number, b: Ballot, v: Value, prev: ChosenEntry | null = null): Accept {
  return { type: "accept", group: GROUP, index, ballot: b, value: v, prev };
}

const sent = (ready: Ready, type: PeerMessage["type"]) => [...ready.sendNow, ...ready.send].filter((o) => o.msg.type === type);

let calls = 0;
function propose(r: Replica, command: Command, now = 0): Ready {
  return r.input({ type: "propose", call: ++calls, command, deadline: now + 10_000 }, now);
}

describe("rules of docs/DESIGN.md, one test each", () => {
  it("an acceptor never accepts below its promise (a promise at ballot b: never accept below b at this instance)", () => {
    const acceptor = new Replica("n2");
    const promised = acceptor.receive("n3", prepare(1, ballot(5, "n3")));
    expect(sent(promised, "promise")).toHaveLength(1);

    const low = acceptor.receive("n1", accept(1, ballot(4, "n1"), value("n1/x/1", put("r1", "k", "low"))));
    expect(sent(low, "accepted")).toHaveLength(0);
    expect(sent(low, "reject")).toHaveLength(1);
    expect(acceptor.state.accepted).toBeNull();
    // A lower Prepare is refused too: it would let its proposer believe it may choose freely.
    expect(sent(acceptor.receive("n1", prepare(1, ballot(3, "n1"))), "promise")).toHaveLength(0);

    const atPromise = acceptor.receive("n3", accept(1, ballot(5, "n3"), value("n3/x/1", put("r2", "k", "ok"))));
    expect(sent(atPromise, "accepted")).toHaveLength(1);
    expect(acceptor.state.accepted?.value.id).toBe("n3/x/1");
  });

  it("an acceptor persists (fsync) a promise or an accept BEFORE the message that reveals it leaves", () => {
    const acceptor = new Replica("n2");
    const queue = new ReleaseQueue();

    const p = acceptor.receive("n3", prepare(1, ballot(2, "n3")));
    expect(p.persist?.meta.promised).toEqual(ballot(2, "n3"));
    expect(sent(p, "promise")).toHaveLength(1);
    const promise = queue.admit(p);
    expect(promise.now.send).toHaveLength(0); // held until the promise is durable

    // A duplicate Prepare persists nothing new, but its Promise reveals the same promise: it
    // waits behind the first persist too.
    const dup = acceptor.receive("n3", prepare(1, ballot(2, "n3")));
    expect(dup.persist).toBeNull();
    expect(sent(dup, "promise")).toHaveLength(1);
    expect(queue.admit(dup).now.send).toHaveLength(0);
    expect(queue.durable(promise.persist!.ticket).send.map((o) => o.msg.type)).toEqual(["promise", "promise"]);

    const a = acceptor.receive("n3", accept(1, ballot(2, "n3"), value("n3/x/1", put("r1", "k", "v"))));
    expect(a.persist?.meta.accepted).toMatchObject({ ballot: ballot(2, "n3"), value: { id: "n3/x/1" } });
    expect(sent(a, "accepted")).toHaveLength(1);
    const accepted = queue.admit(a);
    expect(accepted.now.send).toHaveLength(0);
    expect(queue.durable(accepted.persist!.ticket).send.map((o) => o.msg.type)).toEqual(["accepted"]);
  });

  it("a promise is never forgotten across a restart (restoreReplica from the durable image)", () => {
    const before = new Replica("n2");
    before.receive("n3", prepare(1, ballot(7, "n3")));
    before.receive("n3", accept(1, ballot(7, "n3"), value("n3/x/1", put("r1", "k", "v"))));
    before.receive("n1", prepare(1, ballot(9, "n1")));

    const after = before.restart();
    expect(after.state.promised).toEqual(ballot(9, "n1"));
    expect(sent(after.receive("n3", prepare(1, ballot(8, "n3"))), "promise")).toHaveLength(0);
    expect(sent(after.receive("n3", accept(1, ballot(8, "n3"), value("n3/x/2"))), "accepted")).toHaveLength(0);
    // And what it accepted is still reported to the next proposer, so it can be adopted.
    const promise = sent(after.receive("n1", prepare(1, ballot(10, "n1"))), "promise");
    expect(promise).toHaveLength(1);
    expect((promise[0]!.msg as { accepted: AcceptedValue | null }).accepted?.value.id).toBe("n3/x/1");
  });

  it("the fast round (round 0) is only for the proposer of the previous chosen value (instance 1: the preferred replica), and only with its acceptor untouched", () => {
    // Instance 1: the first configured replica skips Prepare; any other prepares.
    const preferred = new Replica("n1");
    const fast = propose(preferred, put("r1", "k", "v"));
    expect(sent(fast, "prepare")).toHaveLength(0);
    expect(sent(fast, "accept").map((o) => (o.msg as Accept).ballot.round)).toEqual([0, 0]);
    const other = new Replica("n2");
    const slow = propose(other, put("r2", "k", "v"));
    expect(sent(slow, "accept")).toHaveLength(0);
    expect(sent(slow, "prepare").length).toBeGreaterThan(0);
    expect(sent(slow, "prepare").every((o) => (o.msg as Prepare).ballot.round >= 1)).toBe(true);

    // Acceptors refuse a round-0 Accept from anyone but the owner.
    const acceptor = new Replica("n3");
    expect(sent(acceptor.receive("n2", accept(1, ballot(0, "n2"), value("n2/x/1"))), "accepted")).toHaveLength(0);
    expect(sent(acceptor.receive("n1", accept(1, ballot(0, "n1"), value("n1/x/1"))), "accepted")).toHaveLength(1);

    // After instance 1 was chosen with n2's value, n2 owns instance 2's fast round, not n1.
    const h = new Harness(3);
    h.put("n2", "a", "1");
    h.run();
    expect(h.states.get("n2")!.chosen!.value.id.startsWith("n2/")).toBe(true);
    // (Later than any backoff n1 took when it promised n2's Prepare.)
    const later = 5_000;
    const n1 = h.states.get("n1")!;
    const byN1 = step(n1, later, { type: "propose", call: 900, command: put("r3", "a", "2"), deadline: later + 10_000 });
    expect(sent(byN1, "accept")).toHaveLength(0);
    expect(sent(byN1, "prepare").length).toBeGreaterThan(0);
    const n2 = h.states.get("n2")!;
    const byN2 = step(n2, later, { type: "propose", call: 901, command: put("r4", "a", "3"), deadline: later + 10_000 });
    expect(sent(byN2, "accept").map((o) => (o.msg as Accept).ballot.round)).toEqual([0, 0]);

    // The owner whose acceptor already promised someone at the instance must prepare.
    const touched = new Replica("n1");
    touched.receive("n3", prepare(1, ballot(1, "n3")));
    const afterPromise = propose(touched, put("r5", "k", "v"), 1_000);
    expect(sent(afterPromise, "accept").filter((o) => (o.msg as Accept).ballot.round === 0)).toHaveLength(0);
    expect(touched.state.proposer.ballot?.round ?? 0).toBeGreaterThan(0);
  });

  it("a restarted proposer never reuses a ballot or sends a second round-0 value", () => {
    // A fast-round proposer crashes after its own accept is on disk (it went out with the Accept).
    const owner = new Replica("n1");
    const first = propose(owner, put("r1", "k", "first"));
    expect(first.persist?.meta.accepted?.ballot).toEqual(ballot(0, "n1"));
    const restarted = owner.restart();
    const second = propose(restarted, put("r2", "k", "second"));
    expect(sent(second, "accept").filter((o) => (o.msg as Accept).ballot.round === 0)).toHaveLength(0);
    expect(sent(second, "prepare").length).toBeGreaterThan(0);
    expect(sent(second, "prepare").every((o) => (o.msg as Prepare).ballot.round >= 1)).toBe(true);

    // A classic proposer that prepared at round r prepares above r after a restart.
    const classic = new Replica("n2");
    const r = (sent(propose(classic, put("r3", "k", "v")), "prepare")[0]!.msg as Prepare).ballot.round;
    const again = classic.restart();
    const next = sent(propose(again, put("r4", "k", "v")), "prepare");
    expect(next.length).toBeGreaterThan(0);
    expect((next[0]!.msg as Prepare).ballot.round).toBeGreaterThan(r);
  });

  it("a restarted process never reuses round 0 where an earlier process may have sent an unpersisted Accept", () => {
    // The owner's Accept leaves before its own accept is durable (Ready.sendNow) ...
    const owner = new Replica("n1");
    const first = owner.inputLost({ type: "propose", call: ++calls, command: put("r1", "k", "first"), deadline: 10_000 });
    expect(first.sendNow.filter((o) => o.msg.type === "accept" && (o.msg as Accept).ballot.round === 0)).toHaveLength(2);
    expect(first.send.filter((o) => o.to === "n1" && o.msg.type === "accepted")).toHaveLength(1); // its vote waits for the disk
    // ... and it crashes before that persist lands: its disk shows nothing at instance 1.
    expect(owner.disk.meta.accepted).toBeNull();
    const restarted = owner.restart();
    const second = propose(restarted, put("r2", "k", "second"));
    expect(sent(second, "accept").filter((o) => (o.msg as Accept).ballot.round === 0)).toHaveLength(0);
    expect(sent(second, "prepare").length).toBeGreaterThan(0);

    // After a value this process proposed is chosen, the next instance's fast round is its own again.
    const h = new Harness(3);
    const n1 = new Replica("n1", ["n1", "n2", "n3"], undefined, false, true);
    h.states.set("n1", n1.state);
    h.put("n1", "a", "1");
    h.run();
    expect(n1.state.chosen!.value.id.startsWith(n1.state.config.fastRoundFence!)).toBe(true);
    const later = 5_000;
    const again = step(n1.state, later, { type: "propose", call: 902, command: put("r5", "a", "2"), deadline: later + 10_000 });
    expect(sent(again, "accept").map((o) => (o.msg as Accept).ballot.round)).toEqual([0, 0]);
  });

  it("a proposer adopts the highest accepted value of a promise quorum", () => {
    const replicas = ["n1", "n2", "n3", "n4", "n5"];
    const proposer = new Replica("n2", replicas);
    const prep = sent(propose(proposer, put("mine", "k", "mine")), "prepare")[0]!.msg as Prepare;
    const promise = (from: NodeId, accepted: AcceptedValue | null) =>
      proposer.receive(from, { type: "promise", group: GROUP, index: 1, ballot: prep.ballot, accepted });
    // Quorum of 5 is 3: our own promise, and two peers that accepted different values.
    expect(sent(promise("n4", { ballot: ballot(1, "n4"), value: value("n4/x/1", put("low", "k", "low")) }), "accept")).toHaveLength(0);
    const acc = sent(promise("n5", { ballot: ballot(2, "n5"), value: value("n5/x/1", put("high", "k", "high")) }), "accept");
    expect(acc.length).toBeGreaterThan(0);
    for (const o of acc) expect((o.msg as Accept).value.id).toBe("n5/x/1");
  });

  it("only instance chosen+1 is open (a replica opens instance i only once it holds the chosen value of i-1)", () => {
    const acceptor = new Replica("n2");
    const ahead = acceptor.receive("n3", accept(2, ballot(1, "n3"), value("n3/x/2")));
    expect(sent(ahead, "accepted")).toHaveLength(0);
    expect(sent(ahead, "catchupRequest")).toHaveLength(1); // it is behind: it asks, it does not vote
    expect(acceptor.state.accepted).toBeNull();
    expect(sent(acceptor.receive("n3", prepare(2, ballot(1, "n3"))), "promise")).toHaveLength(0);
    expect(acceptor.state.promised).toBeNull();

    // With the chosen entry of 1 carried along (prev), it learns 1 first, then votes at 2.
    const prev: ChosenEntry = { index: 1, ballot: ballot(0, "n1"), value: value("n1/x/1", put("r1", "k", "v1")) };
    const withPrev = acceptor.receive("n3", accept(2, ballot(1, "n3"), value("n3/x/2"), prev));
    expect(acceptor.state.chosen?.index).toBe(1);
    expect(sent(withPrev, "accepted")).toHaveLength(1);
    // A decided instance is closed: an Accept there is refused.
    expect(sent(acceptor.receive("n1", accept(1, ballot(3, "n1"), value("n1/x/9"))), "accepted")).toHaveLength(0);
  });

  it("a request id is applied at most once and answered with the first result", () => {
    const h = new Harness(3);
    const first = h.put("n1", "k", "x", "req-1");
    h.run();
    const retry = h.put("n2", "k", "y", "req-1");
    h.run();
    expect(h.answers.get(retry)!.outcome).toEqual(h.answers.get(first)!.outcome);
    expect(h.states.get("n2")!.chosen!.index).toBe(1); // the retry opened no instance

    // A value that carries an applied id again (another proposer adopted it) does not reapply it.
    const n3 = h.states.get("n3")!;
    const again: ChosenEntry = { index: 2, ballot: ballot(1, "n2"), value: value("n2/x/5", put("req-1", "k", "z"), put("req-2", "j", "w")) };
    step(n3, 0, { type: "message", from: "n2", msg: { type: "chosen", group: "g", index: 2, ballot: again.ballot, valueId: again.value.id, value: again.value } });
    expect(n3.chosen!.index).toBe(2);
    expect(new TextDecoder().decode(n3.data.get("k")!.value)).toBe("x");
    expect(n3.data.get("k")!.version).toBe(1);
    expect(n3.data.get("j")!.version).toBe(2);
  });

  it("a linearizable read probes a majority and writes nothing", () => {
    const reader = new Replica("n1");
    const call = 77;
    const asked = reader.input({ type: "read", call, query: { kind: "get", key: "k" }, consistency: "linearizable", deadline: 5_000 });
    expect(asked.persist).toBeNull();
    expect(asked.answers).toHaveLength(0); // not before a majority answered
    const probes = sent(asked, "readProbe");
    expect(probes.map((o) => o.to).sort()).toEqual(["n2", "n3"]);
    const probe = (probes[0]!.msg as { probe: number }).probe;

    const peer = new Replica("n2");
    const reply = peer.receive("n1", { type: "readProbe", group: GROUP, probe });
    expect(reply.persist).toBeNull();
    const answered = reader.receive("n2", sent(reply, "readProbeReply")[0]!.msg);
    expect(answered.persist).toBeNull();
    expect(answered.answers.map((a) => a.call)).toEqual([call]);
  });

  it("a linearizable read probes only the peers a majority needs, the others after probeSpareMs, and the peer that answered first next time", () => {
    const reader = new Replica("n1", ["n1", "n2", "n3"], undefined, false, false, DEFAULT_TIMING);
    const read = (call: number, now: number): Ready => reader.input({ type: "read", call, query: { kind: "get", key: "k" }, consistency: "linearizable", deadline: now + 5_000 }, now);
    const first = read(1, 0);
    expect(sent(first, "readProbe").map((o) => o.to)).toEqual(["n2"]); // the replica after n1
    expect(first.wakeAt).toBe(DEFAULT_TIMING.probeSpareMs);
    // n2 is silent: at probeSpareMs n3 is probed too, and its reply (with ours) is a majority.
    const spare = reader.input({ type: "tick" }, DEFAULT_TIMING.probeSpareMs);
    const probes = sent(spare, "readProbe");
    expect(probes.map((o) => o.to)).toEqual(["n3"]);
    const probe = (probes[0]!.msg as { probe: number }).probe;
    const answered = reader.receive("n3", { type: "readProbeReply", group: GROUP, probe, chosen: 0, accepted: false }, 25);
    expect(answered.answers.map((a) => a.call)).toEqual([1]);
    // The next read asks n3 first: it answered.
    expect(sent(read(2, 30), "readProbe").map((o) => o.to)).toEqual(["n3"]);
  });

  it("an Accept goes to the peers a majority needs, the others after acceptSpareMs, and the peer that accepted first next time", () => {
    const owner = new Replica("n1", ["n1", "n2", "n3"], undefined, false, false, DEFAULT_TIMING);
    const first = propose(owner, put("r1", "k", "v"));
    const accepts = first.sendNow.filter((o) => o.msg.type === "accept");
    expect(accepts.map((o) => o.to)).toEqual(["n2"]);
    const acc = accepts[0]!.msg as Accept;
    // n2 is silent: at acceptSpareMs the same Accept (ballot and value) goes to n3.
    const spare = owner.input({ type: "tick" }, DEFAULT_TIMING.acceptSpareMs);
    const spares = spare.sendNow.filter((o) => o.msg.type === "accept");
    expect(spares.map((o) => o.to)).toEqual(["n3"]);
    expect(spares[0]!.msg).toEqual(acc);
    // A proposal, then a late copy of it: metrics count the first only (Ready.proposed).
    expect(first.proposed).toEqual(acc);
    expect(spare.proposed).toBeNull();
    // n3 accepts: with our own durable accept, a majority: chosen, and the write answered.
    const chosen = owner.receive("n3", { type: "accepted", group: GROUP, index: acc.index, ballot: acc.ballot }, 25);
    expect(chosen.answersNow).toHaveLength(1);
    // n2, which got the Accept but did not vote, is sent the value with the Chosen.
    const toN2 = chosen.sendNow.find((o) => o.to === "n2" && o.msg.type === "chosen")!;
    expect((toN2.msg as { value: unknown }).value).not.toBeNull();
    // The next Accept goes to n3 first.
    const next = owner.input({ type: "propose", call: 99, command: put("r2", "k", "w"), deadline: 5_000 }, 30);
    expect(next.sendNow.filter((o) => o.msg.type === "accept").map((o) => o.to)).toEqual(["n3"]);
  });

  it("a recovering replica does not vote (a replica that lost a group learns until voting is safe again)", () => {
    const lost = new Replica("n2", ["n1", "n2", "n3"], emptyDurableGroup(), true);
    expect(lost.state.recovering).not.toBeNull();
    const votes = (r: Ready) => r.send.filter((o) => ["promise", "accepted", "readProbeReply"].includes(o.msg.type));
    expect(votes(lost.receive("n3", prepare(1, ballot(1, "n3"))))).toHaveLength(0);
    expect(votes(lost.receive("n3", accept(1, ballot(1, "n3"), value("n3/x/1"))))).toHaveLength(0);
    expect(votes(lost.receive("n3", { type: "readProbe", group: GROUP, probe: 5 }))).toHaveLength(0);
    expect(lost.state.promised).toBeNull();
    expect(lost.state.accepted).toBeNull();
    const write = propose(lost, put("r1", "k", "v"));
    // Refused, not proposed; a client's own request id may have been applied by an earlier
    // attempt elsewhere, so the answer is `timeout`, not `unavailable` (test/core/unavailable.test.ts).
    expect(write.answers[0]?.outcome).toMatchObject({ kind: "error", code: "timeout" });
    expect(sent(write, "prepare").length + sent(write, "accept").length).toBe(0);
  });

  it("catch-up: one behind gets the last entry, further behind gets the group's data", () => {
    const h = new Harness(3);
    for (let i = 1; i <= 3; i++) {
      h.put("n1", `k${i}`, `v${i}`);
      h.run();
    }
    const source = h.states.get("n1")!;
    const ask = (chosen: number) =>
      step(source, 0, { type: "message", from: "n3", msg: { type: "catchupRequest", group: "g", chosen, snapshotAt: null, after: null } });
    const oneBehind = ask(2);
    expect(oneBehind.send.map((o) => o.msg.type)).toEqual(["catchupEntry"]);
    expect((oneBehind.send[0]!.msg as { entry: ChosenEntry }).entry.index).toBe(3);
    const further = ask(0);
    expect(further.send.map((o) => o.msg.type)).toEqual(["catchupSnapshot"]);
    expect((further.send[0]!.msg as { at: ChosenEntry }).at.index).toBe(3);
    expect(ask(3).send).toHaveLength(0); // not behind: nothing to send
  });
});
