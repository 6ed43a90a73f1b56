// A tiny in-order, lossless driver for unit tests of the core: every message is delivered
// at once, every persist is durable at once. The simulation (test/sim) does the hard part.
import { restoreReplica, step } from "../../src/protocol/core.js";
import { DEFAULT_LIMITS, DEFAULT_TIMING, type GroupConfig } from "../../src/protocol/config.js";
import { applyPersist, emptyDurableGroup, type DurableGroup } from "../../src/protocol/durable.js";
import type { Answer, Input } from "../../src/protocol/io.js";
import type { Outbound } from "../../src/protocol/messages.js";
import type { GroupState } from "../../src/protocol/state.js";

export class Harness {
  readonly replicas: string[];
  readonly states = new Map<string, GroupState>();
  readonly disks = new Map<string, DurableGroup>();
  readonly answers = new Map<number, Answer>();
  readonly down = new Set<string>();
  readonly network: { from: string; out: Outbound }[] = [];
  now = 0;
  private call = 0;
  private incarnation = 0;

  constructor(n: number, readonly group = "g") {
    this.replicas = Array.from({ length: n }, (_, i) => `n${i + 1}`);
    for (const r of this.replicas) {
      this.disks.set(r, emptyDurableGroup());
      this.restart(r);
    }
  }

  config(self: string): GroupConfig {
    // Every Accept and ReadProbe to every replica at once (spares 0): the tests on this harness
    // look at which messages leave; the thrifty first sends have their own tests (rules.test.ts).
    const timing = { ...DEFAULT_TIMING, probeSpareMs: 0, acceptSpareMs: 0 };
    return { group: this.group, self, replicas: this.replicas, incarnation: `i${++this.incarnation}`, seed: this.incarnation, timing, limits: DEFAULT_LIMITS };
  }

  restart(node: string): void {
    this.down.delete(node);
    const disk = this.disks.get(node)!;
    const copy: DurableGroup = { meta: disk.meta, keys: new Map(disk.keys), requests: [...disk.requests] };
    this.states.set(node, restoreReplica(this.config(node), copy));
  }

  input(node: string, input: Input): void {
    if (this.down.has(node)) return;
    const ready = step(this.states.get(node)!, this.now, input);
    if (ready.persist) applyPersist(this.disks.get(node)!, ready.persist);
    // Proposals first (they leave before the persist on a real node), then the rest; a vote to
    // self comes back through the network like a peer's (after its persist, applied above).
    for (const out of [...ready.sendNow, ...ready.send]) this.network.push({ from: node, out });
    for (const a of [...ready.answersNow, ...ready.answers]) this.answers.set(a.call, a);
  }

  /** Delivers queued messages until none are left. */
  run(limit = 100_000): void {
    for (let i = 0; this.network.length > 0; i++) {
      if (i > limit) throw new Error("no quiescence");
      const { from, out } = this.network.shift()!;
      this.input(out.to, { type: "message", from, msg: out.msg });
    }
  }

  tick(ms: number): void {
    this.now += ms;
    for (const r of this.replicas) this.input(r, { type: "tick" });
    this.run();
  }

  put(node: string, key: string, value: string, requestId = `r${this.call + 1}`): number {
    const call = ++this.call;
    this.input(node, { type: "propose", call, command: { requestId, op: { op: "put", key, value: new TextEncoder().encode(value) } }, deadline: this.now + 5000 });
    return call;
  }

  get(node: string, key: string, consistency: "linearizable" | "stale" = "linearizable"): number {
    const call = ++this.call;
    this.input(node, { type: "read", call, query: { kind: "get", key }, consistency, deadline: this.now + 5000 });
    return call;
  }

  value(call: number): string | null | undefined {
    const a = this.answers.get(call);
    if (a === undefined) return undefined;
    if (a.outcome.kind !== "read" || a.outcome.result.kind !== "get") throw new Error(JSON.stringify(a.outcome));
    const e = a.outcome.result.entry;
    return e === null ? null : new TextDecoder().decode(e.value);
  }
}
