// The per-group reconfiguration rules (issue 13, docs/DESIGN.md "Membership changes",
// src/protocol/membership.ts), one test per rule, on the pure core with an in-order, lossless
// network: groups born on n1..n3, spares n4 and n5.

import { describe, expect, it } from "vitest";
import type { NodeId } from "../../src/protocol/ballot.js";
import { DEFAULT_LIMITS, DEFAULT_TIMING, type BreakName, type GroupConfig } from "../../src/protocol/config.js";
import { restoreReplica, step, type RestoreOptions } from "../../src/protocol/core.js";
import { applyPersist, emptyDurableGroup, type DurableGroup } from "../../src/protocol/durable.js";
import type { Answer, Input } from "../../src/protocol/io.js";
import { fastRoundOwnerAt, role } from "../../src/protocol/membership.js";
import type { Outbound } from "../../src/protocol/messages.js";
import type { Configuration } from "../../src/protocol/ops.js";
import type { GroupState } from "../../src/protocol/state.js";

const BIRTH = ["n1", "n2", "n3"];
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

class Cluster {
  readonly states = new Map<NodeId, GroupState>();
  readonly disks = new Map<NodeId, DurableGroup>();
  readonly answers = new Map<number, Answer>();
  readonly down = new Set<NodeId>();
  readonly network: { from: NodeId; out: Outbound }[] = [];
  now = 0;
  private call = 0;
  private incarnation = 0;

  constructor(readonly breaks: ReadonlySet<BreakName> = new Set()) {
    for (const n of BIRTH) this.start(n, emptyDurableGroup());
  }

  private config(self: NodeId): GroupConfig {
    const i = ++this.incarnation;
    return { group: "g", self, replicas: BIRTH, incarnation: `i${i}`, seed: i, timing: { ...DEFAULT_TIMING, probeSpareMs: 0, acceptSpareMs: 0 }, limits: DEFAULT_LIMITS, breaks: this.breaks };
  }

  start(node: NodeId, disk: DurableGroup, options: RestoreOptions = {}): void {
    this.disks.set(node, disk);
    this.states.set(node, restoreReplica(this.config(node), { meta: disk.meta, keys: new Map(disk.keys), requests: [...disk.requests] }, options));
    this.down.delete(node);
  }

  /** A node joining: marked joining, its first step makes the mark durable. */
  join(node: NodeId, config: Configuration, from: readonly NodeId[]): void {
    this.start(node, emptyDurableGroup(), { joining: { config, from } });
    this.input(node, { type: "tick" });
  }

  restart(node: NodeId): void {
    this.start(node, this.disks.get(node)!);
  }

  state(node: NodeId): GroupState {
    return this.states.get(node)!;
  }

  input(node: NodeId, input: Input): void {
    if (this.down.has(node) || !this.states.has(node)) return;
    const ready = step(this.state(node), this.now, input);
    if (ready.persist) applyPersist(this.disks.get(node)!, ready.persist);
    // Sends released at once (the proposer's Accept) and after the persist (votes, self
    // included: they come back through the network like a peer's) alike, in order.
    for (const out of [...ready.sendNow, ...ready.send]) this.network.push({ from: node, out });
    for (const a of [...ready.answersNow, ...ready.answers]) this.answers.set(a.call, a);
  }

  run(limit = 100_000): void {
    for (let i = 0; this.network.length > 0; i++) {
      if (i > limit) throw new Error("no quiescence");
      const { from, out } = this.network.shift()!;
      if (this.down.has(from)) continue;
      this.input(out.to, { type: "message", from, msg: out.msg });
    }
  }

  tick(ms: number): void {
    this.now += ms;
    for (const n of this.states.keys()) this.input(n, { type: "tick" });
    this.run();
  }

  put(node: NodeId, key: string, value: string): number {
    const call = ++this.call;
    this.input(node, { type: "propose", call, command: { requestId: `r${call}`, op: { op: "put", key, value: enc(value) } }, deadline: this.now + 5000 });
    this.run();
    return call;
  }

  get(node: NodeId, key: string, consistency: "linearizable" | "stale" = "linearizable"): number {
    const call = ++this.call;
    this.input(node, { type: "read", call, query: { kind: "get", key }, consistency, deadline: this.now + 5000 });
    this.run();
    return call;
  }

  reconfigure(node: NodeId, config: Configuration): number {
    const call = ++this.call;
    this.input(node, { type: "reconfigure", call, config, deadline: this.now + 5000 });
    this.run();
    return call;
  }

  outcome(call: number): Answer["outcome"] | undefined {
    return this.answers.get(call)?.outcome;
  }

  chosen(node: NodeId): number {
    return this.state(node).chosen?.index ?? 0;
  }
}

function expectOk(c: Cluster, call: number): void {
  const o = c.outcome(call);
  expect(o?.kind, JSON.stringify(o)).toBe("write");
}

describe("membership: a group's configuration is part of its log", () => {
  it("a reconfiguration is chosen by the OLD configuration and moves the instances after it to the new one", () => {
    const c = new Cluster();
    expectOk(c, c.put("n1", "k", "v1"));
    const next = { epoch: 1, replicas: ["n1", "n2", "n4"] };
    c.join("n4", next, BIRTH);
    const call = c.reconfigure("n1", next);
    const o = c.outcome(call);
    expect(o).toEqual({ kind: "reconfigured", config: next, index: 2 });
    for (const n of ["n1", "n2", "n3"]) expect(c.state(n).members).toEqual(next);
    expect(role(c.state("n3"))).toBe("removed");
    expect(c.chosen("n3")).toBe(2);
    // The reconfiguration's Chosen reached the joiner, which copied the data; the new
    // configuration confirmed the hand-over with a no-op at 3 (n1, the owner, drove it).
    expect(role(c.state("n4"))).toBe("voter");
    expect(c.chosen("n4")).toBe(3);
    expect(c.state("n4").chosen!.value.commands).toEqual([]);
    expect(new TextDecoder().decode(c.state("n4").data.get("k")!.value)).toBe("v1");
  });

  it("the configuration is durable with the slim log, and absent from the meta while it is the birth one", () => {
    const c = new Cluster();
    c.put("n1", "k", "v1");
    expect(Object.keys(c.disks.get("n1")!.meta).sort()).toEqual(["accepted", "chosen", "promised"]);
    const next = { epoch: 1, replicas: ["n1", "n2", "n4"] };
    c.join("n4", next, BIRTH);
    expect(c.disks.get("n4")!.meta).toMatchObject({ config: next, joining: BIRTH });
    c.reconfigure("n2", next);
    expect(c.disks.get("n1")!.meta.config).toEqual(next);
    expect(c.disks.get("n4")!.meta.joining).toBeUndefined();
    c.restart("n1");
    c.restart("n3");
    expect(c.state("n1").members).toEqual(next);
    expect(role(c.state("n3"))).toBe("removed");
  });

  it("a reconfiguration at an epoch already reached is answered at once with the configuration (retries are harmless)", () => {
    const c = new Cluster();
    const next = { epoch: 1, replicas: ["n1", "n2", "n4"] };
    c.join("n4", next, BIRTH);
    c.reconfigure("n1", next);
    const at = c.chosen("n1"); // the change at 1, its confirmation at 2
    expect(at).toBe(2);
    const again = c.reconfigure("n2", next);
    expect(c.outcome(again)).toEqual({ kind: "reconfigured", config: next, index: at });
    const older = c.reconfigure("n4", { epoch: 1, replicas: ["n1", "n2", "n3"] });
    expect(c.outcome(older)).toEqual({ kind: "reconfigured", config: next, index: at });
    expect(c.chosen("n1")).toBe(at); // nothing more was proposed
  });
});

describe("membership: who votes after a reconfiguration", () => {
  it("instances after it count only the new configuration: a removed replica's votes never do", () => {
    const c = new Cluster();
    const next = { epoch: 1, replicas: ["n1", "n2", "n4"] };
    c.join("n4", next, BIRTH);
    c.reconfigure("n1", next);
    const base = c.chosen("n1");
    // n2 and n4 down: n1 and the removed n3 are a majority of the OLD configuration only.
    c.down.add("n2");
    c.down.add("n4");
    const stuck = c.put("n1", "k", "x");
    c.tick(1000);
    expect(c.outcome(stuck)).not.toMatchObject({ kind: "write" });
    expect(c.chosen("n1")).toBe(base);
    expect(c.chosen("n3")).toBeLessThanOrEqual(base);
    // n4 back: n1 + n4 are a majority of the new one.
    c.down.delete("n4");
    c.tick(1000);
    c.tick(1000);
    expect(c.chosen("n1")).toBe(base + 1);
    expect(c.chosen("n4")).toBe(base + 1);
    expect(c.chosen("n3")).toBeLessThanOrEqual(base);
  });

  it("a joining replica neither votes nor answers read probes until it installed the data", () => {
    const c = new Cluster();
    c.put("n1", "k", "v1");
    c.join("n4", { epoch: 1, replicas: ["n1", "n2", "n4"] }, BIRTH);
    const before = c.network.length;
    c.input("n4", { type: "message", from: "n1", msg: { type: "prepare", group: "g", index: 1, ballot: { round: 5, node: "n1" }, prev: null } });
    c.input("n4", { type: "message", from: "n1", msg: { type: "readProbe", group: "g", probe: 7 } });
    const sent = c.network.slice(before).map((m) => m.out.msg.type);
    expect(sent).not.toContain("promise");
    expect(sent).not.toContain("readProbeReply");
    expect(c.state("n4").promised).toBeNull();
  });

  it("a joining replica installs only a copy whose configuration includes it (one from before the change does not)", () => {
    const c = new Cluster();
    c.put("n1", "k", "v1");
    const next = { epoch: 1, replicas: ["n1", "n2", "n4"] };
    c.join("n4", next, BIRTH);
    c.run(); // its request is answered with a copy at index 1, configuration still the birth one
    expect(role(c.state("n4"))).toBe("joining");
    expect(c.chosen("n4")).toBe(0);
    c.reconfigure("n1", next);
    expect(role(c.state("n4"))).toBe("voter");
  });

  it("a node that joins again takes no copy of an older configuration that included it (its old votes are forgotten)", () => {
    const c = new Cluster();
    const target = { epoch: 3, replicas: ["n1", "n2", "n3"] };
    c.join("n3", target, ["n1", "n2"]);
    const snapshot = (config: Configuration, index: number) => ({
      type: "catchupSnapshot" as const,
      group: "g",
      at: { index, ballot: { round: 1, node: "n1" }, value: { id: `n1/x/${index}`, commands: [] } },
      after: null,
      items: [],
      requests: [],
      next: null,
      config,
    });
    // Epoch 1 held n3 as well (before epoch 2 removed it): a copy from then is refused.
    c.input("n3", { type: "message", from: "n1", msg: snapshot({ epoch: 1, replicas: ["n1", "n2", "n3", "n4"] }, 5) });
    expect(role(c.state("n3"))).toBe("joining");
    c.input("n3", { type: "message", from: "n1", msg: snapshot(target, 9) });
    expect(role(c.state("n3"))).toBe("voter");
    expect(c.chosen("n3")).toBe(9);
  });

  it("--break reconfig-joiner-votes-early: a joiner promises at once, from its empty copy", () => {
    const c = new Cluster(new Set<BreakName>(["reconfig-joiner-votes-early"]));
    c.put("n1", "k", "v1");
    c.join("n4", { epoch: 1, replicas: ["n1", "n2", "n4"] }, BIRTH);
    const before = c.network.length;
    c.input("n4", { type: "message", from: "n5", msg: { type: "prepare", group: "g", index: 1, ballot: { round: 5, node: "n5" }, prev: null } });
    expect(c.network.slice(before).map((m) => m.out.msg.type)).toContain("promise");
  });
});

describe("membership: requests at a replica that no longer holds the group", () => {
  it("a removed replica answers writes and linearizable reads `moved` with the new replicas, and still serves stale reads", () => {
    const c = new Cluster();
    c.put("n1", "k", "v1");
    const next = { epoch: 1, replicas: ["n1", "n2", "n4"] };
    c.join("n4", next, BIRTH);
    c.reconfigure("n1", next);
    const w = c.put("n3", "k", "v2");
    expect(c.outcome(w)).toMatchObject({ kind: "error", code: "moved", config: next });
    const r = c.get("n3", "k");
    expect(c.outcome(r)).toMatchObject({ kind: "error", code: "moved", config: next });
    const stale = c.get("n3", "k", "stale");
    expect(c.outcome(stale)).toMatchObject({ kind: "read" });
  });

  it("a write queued at a replica that is then removed is answered `moved` (never silently dropped)", () => {
    const c = new Cluster();
    const next = { epoch: 1, replicas: ["n1", "n2", "n4"] };
    c.join("n4", next, BIRTH);
    // n3 queues a write but cannot propose (n1, n2 unreachable); the reconfiguration then wins.
    c.down.add("n1");
    c.down.add("n2");
    const w = c.put("n3", "k", "v");
    c.down.delete("n1");
    c.down.delete("n2");
    c.reconfigure("n1", next);
    c.tick(1); // n3 learns it
    c.tick(1000);
    const o = c.outcome(w);
    expect(o === undefined ? "none" : o.kind === "error" ? o.code : o.kind).toMatch(/moved|write/);
  });

  it("a linearizable read probes again when the configuration changed under it", () => {
    const c = new Cluster();
    c.put("n1", "k", "v1");
    const next = { epoch: 1, replicas: ["n1", "n2", "n4"] };
    c.join("n4", next, BIRTH);
    c.reconfigure("n1", next);
    c.put("n1", "k", "v2");
    const r = c.get("n2", "k");
    c.tick(100);
    const o = c.outcome(r);
    expect(o?.kind).toBe("read");
    if (o?.kind === "read" && o.result.kind === "get") expect(new TextDecoder().decode(o.result.entry!.value)).toBe("v2");
  });
});

describe("membership: the fast round across a reconfiguration", () => {
  const entry = (proposer: string) => ({ index: 4, ballot: { round: 0, node: proposer }, value: { id: `${proposer}/i/1`, commands: [] } });
  it("is owned by the proposer of the previous value while it stays a member", () => {
    expect(fastRoundOwnerAt({ epoch: 1, replicas: ["n4", "n1", "n2"] }, entry("n1"))).toBe("n1");
  });
  it("is owned by the new configuration's first replica when that proposer left", () => {
    expect(fastRoundOwnerAt({ epoch: 1, replicas: ["n4", "n1", "n2"] }, entry("n3"))).toBe("n4");
  });
  it("is owned by the birth configuration's first replica at instance 1", () => {
    expect(fastRoundOwnerAt({ epoch: 0, replicas: ["n2", "n1", "n3"] }, null)).toBe("n2");
  });
});
