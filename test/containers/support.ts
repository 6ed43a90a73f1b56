// Shared pieces of the container tests (not a test file): a raw request to one node, a steady
// write load with a ledger of what was acknowledged, and the checks read back against it.
//
// The ledger: each writer owns one key and writes 1, 2, 3, ... to it, one put at a time. A put
// that was acknowledged must be there (or a later one); a put that failed with `timeout` may
// or may not be; one that failed with `unavailable` was not applied. So the key's final value
// v must satisfy acked <= v <= attempted, with v = acked whenever no write after acked had an
// unknown outcome.

import { headers as natsHeaders } from "@nats-io/transport-node";
import { afterEach, expect } from "vitest";
import type { PaxosStoreClient } from "../../src/client/index.js";
import type { StartedPaxosStoreCluster } from "../../src/testcontainers/index.js";

export type Body = Record<string, unknown>;

export type Answer =
  | { readonly kind: "ok"; readonly body: Body; readonly ms: number }
  | { readonly kind: "error"; readonly code: string; readonly body: Body; readonly ms: number }
  | { readonly kind: "noResponders"; readonly ms: number }
  | { readonly kind: "noAnswer"; readonly ms: number; readonly why: string };

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * One request in the wire API's JSON (docs/API.md) to `<prefix>.api.<node>`, never throwing:
 * what the node itself answers, with no client retry or failover in between (and no relay:
 * PaxosStore-Direct). The node is told
 * to answer `nodeDeadlineMs` after it got the request.
 */
export async function ask(client: PaxosStoreClient, node: string, body: Body, nodeDeadlineMs = 1_500): Promise<Answer> {
  const h = natsHeaders();
  h.set("PaxosStore-Timeout-Ms", String(nodeDeadlineMs));
  h.set("PaxosStore-Direct", "1"); // this node proposes a write itself: no relay to a peer (docs/API.md)
  const t0 = performance.now();
  try {
    const m = await client.connection.request(`${client.prefix}.api.${node}`, enc.encode(JSON.stringify(body)), { timeout: nodeDeadlineMs + 1_500, headers: h });
    const answer = JSON.parse(dec.decode(m.data)) as Body;
    const ms = performance.now() - t0;
    if (answer.ok === true) return { kind: "ok", body: answer, ms };
    return { kind: "error", code: String((answer.error as Body | undefined)?.code), body: answer, ms };
  } catch (e) {
    const ms = performance.now() - t0;
    const err = e as Error & { isNoResponders?: () => boolean };
    if (typeof err.isNoResponders === "function" && err.isNoResponders()) return { kind: "noResponders", ms };
    if (err.name === "NoRespondersError") return { kind: "noResponders", ms };
    return { kind: "noAnswer", ms, why: `${err.name}: ${err.message}` };
  }
}

export function describeAnswer(a: Answer): string {
  switch (a.kind) {
    case "ok":
      return `ok ${JSON.stringify(a.body)}`;
    case "error":
      return `${a.code}: ${String((a.body.error as Body).message)}`;
    case "noResponders":
      return "no responders";
    case "noAnswer":
      return `no answer (${a.why})`;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | null | false>, timeoutMs = 20_000, everyMs = 200): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== null && v !== false) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await sleep(everyMs);
  }
}

// ------------------------------------------------------------------------------ write load

export interface WriterLedger {
  readonly key: string;
  /** Highest seq acknowledged. */
  acked: number;
  /** Highest seq sent. */
  attempted: number;
  /** Highest seq whose outcome is unknown (failed with `timeout`), 0 if none. */
  unknown: number;
  /** Acknowledged writes, with when they were answered (Date.now()). */
  readonly ackTimes: number[];
}

export interface Failure {
  readonly key: string;
  readonly seq: number;
  readonly code: string;
  readonly message: string;
  readonly at: number;
}

/**
 * `writers` sequential writers, each on a key of its own, through one client, until stop().
 * Each waits `pauseMs` between writes: a steady load, not a saturating one (the suite shares two
 * cores with the rest of `npm test`).
 */
export class WriteLoad {
  readonly ledgers: WriterLedger[];
  readonly failures: Failure[] = [];
  private running = false;
  private loops: Promise<void>[] = [];
  readonly startedAt = Date.now();

  constructor(
    private readonly client: PaxosStoreClient,
    prefix: string,
    writers: number,
    private readonly pauseMs = 20,
  ) {
    this.ledgers = Array.from({ length: writers }, (_, i) => ({ key: `${prefix}-${i}`, acked: 0, attempted: 0, unknown: 0, ackTimes: [] }));
  }

  start(): this {
    this.running = true;
    this.loops = this.ledgers.map((l) => this.loop(l));
    return this;
  }

  private async loop(l: WriterLedger): Promise<void> {
    while (this.running) {
      const seq = l.attempted + 1;
      l.attempted = seq;
      try {
        await this.client.put(l.key, String(seq));
        l.acked = seq;
        l.ackTimes.push(Date.now());
      } catch (e) {
        const err = e as Error & { code?: string };
        const code = err.code ?? err.name;
        if (code === "timeout") l.unknown = seq;
        this.failures.push({ key: l.key, seq, code, message: err.message, at: Date.now() });
      }
      if (this.pauseMs > 0) await sleep(this.pauseMs);
    }
  }

  /** Waits for the writes in flight to end. */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  get acked(): number {
    return this.ledgers.reduce((n, l) => n + l.acked, 0);
  }

  /** Acknowledged writes answered in [from, to). */
  ackedBetween(from: number, to = Infinity): number {
    return this.ledgers.reduce((n, l) => n + l.ackTimes.filter((t) => t >= from && t < to).length, 0);
  }

  /** The writers (keys) with no acknowledged write in [from, to). */
  stalledBetween(from: number, to = Infinity): string[] {
    return this.ledgers.filter((l) => !l.ackTimes.some((t) => t >= from && t < to)).map((l) => l.key);
  }

  summary(): string {
    const codes = new Map<string, number>();
    for (const f of this.failures) codes.set(f.code, (codes.get(f.code) ?? 0) + 1);
    return `${this.acked} acknowledged, ${this.failures.length} failed${codes.size > 0 ? ` (${[...codes].map(([c, n]) => `${c}: ${n}`).join(", ")})` : ""}, ${this.ledgers.length} writers, ${((Date.now() - this.startedAt) / 1000).toFixed(1)} s`;
  }
}

/**
 * Reads every writer's key linearizably and checks it against the ledger: nothing acknowledged
 * lost, nothing that was never sent, and exactly the last acknowledged value when no later
 * write had an unknown outcome.
 */
export async function verifyLedgers(client: PaxosStoreClient, ledgers: readonly WriterLedger[]): Promise<void> {
  for (const l of ledgers) {
    const r = await client.get(l.key, { timeoutMs: 10_000 });
    const v = r.found ? Number(r.text()) : 0;
    expect(v, `${l.key}: read ${v}, acknowledged up to ${l.acked}: an acknowledged write was lost`).toBeGreaterThanOrEqual(l.acked);
    expect(v, `${l.key}: read ${v}, only ${l.attempted} were ever sent`).toBeLessThanOrEqual(l.attempted);
    if (v > l.acked) expect(l.unknown, `${l.key}: read ${v} > acknowledged ${l.acked}, but no later write had an unknown outcome`).toBeGreaterThan(l.acked);
  }
}

/**
 * Every node holds the same value of each key (stale reads, each node's own replica), after a
 * linearizable read through each node (which makes a replica that missed writes catch up: a
 * replica learns what it missed on the group's next message, there is no background sync).
 */
export async function expectConverged(cluster: StartedPaxosStoreCluster, keys: readonly string[]): Promise<void> {
  const pinned = await Promise.all(cluster.nodeIds.map((node) => cluster.client({ node, timeoutMs: 10_000 })));
  try {
    const latest = new Map<string, string>();
    for (const key of keys) {
      const views = await Promise.all(pinned.map((c) => c.get(key)));
      const texts = views.map((r) => (r.found ? `${r.text()}@${r.version}` : "absent"));
      expect(new Set(texts).size, `${key}: linearizable reads through ${cluster.nodeIds.join(", ")} disagree: ${texts.join(" ")}`).toBe(1);
      latest.set(key, texts[0]!);
    }
    await waitFor(
      "stale reads of every key to agree on every node",
      async () => {
        for (const key of keys) {
          const views = await Promise.all(pinned.map((c) => c.get(key, { consistency: "stale" })));
          const texts = views.map((r) => (r.found ? `${r.text()}@${r.version}` : "absent"));
          if (texts.some((t) => t !== latest.get(key))) throw new Error(`${key}: stale reads ${cluster.nodeIds.map((n, i) => `${n}=${texts[i]}`).join(" ")}, latest ${latest.get(key)}`);
        }
        return true;
      },
      10_000,
    );
  } finally {
    await Promise.all(pinned.map((c) => c.close()));
  }
}

/** On a failed test, prints the last log lines of every container of the cluster. */
export function dumpLogsOnFailure(cluster: () => StartedPaxosStoreCluster | undefined): void {
  afterEach((ctx) => {
    if (ctx.task.result?.state !== "fail") return;
    return printLogs(cluster());
  });
}

async function printLogs(cluster: StartedPaxosStoreCluster | undefined): Promise<void> {
  if (cluster === undefined) return;
  for (const node of cluster.nodes) {
    const logs = await node.logs({ tail: 40 }).catch((e: Error) => `(no logs: ${e.message})`);
    console.error(`--- ${node.id} (${node.state}) last log lines ---\n${logs}`);
  }
}

/** Timestamped progress lines, so a slow run shows where its time went. */
export function progress(label: string): (msg: string) => void {
  const t0 = Date.now();
  return (msg) => console.log(`[${label} +${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}`);
}
