// Shared pieces of the integration tests (not a test file itself): one request attempt with
// its outcome classified, writers that keep a ledger of what was acknowledged, and checks that
// read a cluster back against that ledger.
//
// The ledger is what "no acknowledged write is lost" is measured against: every write puts a
// key of its own, under a request id of its own, so a write is either acknowledged (with the
// version it was applied at: it must be read back with that exact value and version, which
// also catches a write applied twice), or of unknown outcome (it may be there, once), and a
// key that is in no ledger entry is a phantom.

import { headers as natsHeaders } from "@nats-io/transport-node";
import { expect } from "vitest";
import type { TestCluster } from "../helpers/cluster.js";

export type Body = Record<string, unknown>;

export type Attempt =
  /** `{ ok: true, ... }` */
  | { readonly kind: "ok"; readonly body: Body; readonly ms: number }
  /** `{ ok: false, error }`: the node answered with an error. */
  | { readonly kind: "error"; readonly body: Body; readonly ms: number }
  /** No node listens on the subject: the request was not taken by anyone. */
  | { readonly kind: "noResponders"; readonly ms: number }
  /** No answer in time: the request may or may not have been taken. */
  | { readonly kind: "timeout"; readonly ms: number }
  | { readonly kind: "failed"; readonly message: string; readonly ms: number };

const enc = new TextEncoder();
const dec = new TextDecoder();

export function subjectOf(c: TestCluster, node?: string): string {
  const prefix = `paxosstore.${c.cluster}`;
  return node === undefined ? `${prefix}.api` : `${prefix}.api.${node}`;
}

/**
 * One request, never throwing. The node is told (PaxosStore-Timeout-Ms) to answer a little
 * before the client gives up, so a timeout here means the node did not answer at all.
 */
export async function attempt(c: TestCluster, body: Body, node?: string, timeoutMs = 3_000): Promise<Attempt> {
  const t0 = performance.now();
  const h = natsHeaders();
  h.set("PaxosStore-Timeout-Ms", String(Math.max(50, timeoutMs - 300)));
  try {
    const m = await c.nc.request(subjectOf(c, node), enc.encode(JSON.stringify(body)), { timeout: timeoutMs, headers: h });
    const answer = JSON.parse(dec.decode(m.data)) as Body;
    return { kind: answer.ok === true ? "ok" : "error", body: answer, ms: performance.now() - t0 };
  } catch (e) {
    const ms = performance.now() - t0;
    const err = e as Error & { isNoResponders?: () => boolean; cause?: unknown };
    if (typeof err.isNoResponders === "function" && err.isNoResponders()) return { kind: "noResponders", ms };
    if (err.name === "TimeoutError" || (err.cause instanceof Error && err.cause.name === "TimeoutError")) return { kind: "timeout", ms };
    return { kind: "failed", message: `${err.name}: ${err.message}`, ms };
  }
}

/** A request that must succeed. */
export async function ok(c: TestCluster, body: Body, node?: string, timeoutMs = 10_000): Promise<Body> {
  const a = await attempt(c, body, node, timeoutMs);
  if (a.kind !== "ok") throw new Error(`${JSON.stringify(body)} via ${node ?? "queue"}: ${a.kind} ${"body" in a ? JSON.stringify(a.body) : "message" in a ? a.message : ""}`);
  return a.body;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | null | false>, timeoutMs = 15_000, everyMs = 100): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== null && v !== false) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await sleep(everyMs);
  }
}

// ---- The ledger ------------------------------------------------------------------------------

export interface WriteRecord {
  readonly group: string;
  readonly key: string;
  readonly value: string;
  readonly requestId: string;
  /** acked: answered ok; maybe: outcome unknown (timeouts, or given up on). */
  status: "pending" | "acked" | "maybe";
  version?: number;
  /** performance.now() when the first attempt left and when the ack came back. */
  startedAt: number;
  endedAt?: number;
  attempts: number;
  /** Node of each attempt ("queue" for the queue subject) and how it ended. */
  readonly trail: string[];
}

export class Ledger {
  readonly writes: WriteRecord[] = [];
  private seq = 0;

  constructor(readonly tag: string) {}

  next(group: string, writer: string): WriteRecord {
    const n = ++this.seq;
    const key = `${writer}-${String(n).padStart(6, "0")}`;
    const w: WriteRecord = { group, key, value: `${this.tag}:${key}:${(n * 2654435761) >>> 0}`, requestId: `${this.tag}-${writer}-${n}`, status: "pending", startedAt: performance.now(), attempts: 0, trail: [] };
    this.writes.push(w);
    return w;
  }

  groups(): string[] {
    return [...new Set(this.writes.map((w) => w.group))].sort();
  }

  acked(): WriteRecord[] {
    return this.writes.filter((w) => w.status === "acked");
  }

  counts(): Record<string, number> {
    const out: Record<string, number> = { pending: 0, acked: 0, maybe: 0 };
    for (const w of this.writes) out[w.status]!++;
    return out;
  }
}

export interface WriteOptions {
  /** Nodes to try, in order (undefined: the queue subject). Rotates on a failed attempt. */
  readonly route: readonly (string | undefined)[];
  readonly timeoutMs?: number;
  /** Give up (outcome unknown) after this long. */
  readonly giveUpMs?: number;
  /** Stop retrying once this says so (the test is over, the cluster is down). */
  readonly stopped?: () => boolean;
}

/**
 * Puts `w` until it is acknowledged, retrying the SAME request id on the next node of the
 * route after a timeout, an error answer or no responders (a retried id is applied at most
 * once, and answered with its first result).
 */
export async function write(c: TestCluster, w: WriteRecord, opts: WriteOptions): Promise<void> {
  const { route, timeoutMs = 2_000, giveUpMs = 15_000 } = opts;
  let i = 0;
  let uncertain = false;
  for (;;) {
    const node = route[i % route.length];
    w.attempts++;
    const a = await attempt(c, { op: "put", group: w.group, key: w.key, value: w.value, requestId: w.requestId }, node, timeoutMs);
    w.trail.push(`${node ?? "queue"}:${a.kind}${a.kind === "error" ? `(${(a.body.error as Body).code as string})` : ""}`);
    if (a.kind === "ok") {
      w.status = "acked";
      w.version = a.body.version as number;
      w.endedAt = performance.now();
      return;
    }
    // Only "no responders" proves nobody took it; an unavailable answer proves it was not
    // applied by that attempt, but an earlier uncertain attempt may still be.
    if (a.kind !== "noResponders" && !(a.kind === "error" && (a.body.error as Body).code === "unavailable")) uncertain = true;
    if (performance.now() - w.startedAt > giveUpMs || opts.stopped?.()) {
      w.status = "maybe";
      w.trail.push(uncertain ? "gave up" : "gave up (never taken)");
      return;
    }
    i++;
    // Do not spin on a dead cluster.
    if (a.kind === "noResponders" || a.kind === "failed") await sleep(i % route.length === 0 ? 50 : 0);
  }
}

export interface Writer {
  readonly name: string;
  /** Resolves once the writer stopped (after stop()). */
  readonly done: Promise<void>;
  stop(): void;
  readonly acks: number;
}

/** A client that writes one key after another (one in flight) into random groups of `groups`. */
export function startWriter(c: TestCluster, ledger: Ledger, name: string, groups: readonly string[], opts: WriteOptions & { pauseMs?: number }): Writer {
  let stopping = false;
  let acks = 0;
  let r = hashSeed(name);
  const done = (async () => {
    while (!stopping) {
      r = (Math.imul(r, 1103515245) + 12345) >>> 0;
      const w = ledger.next(groups[r % groups.length]!, name);
      await write(c, w, opts);
      if (w.status === "acked") acks++;
      if (opts.pauseMs) await sleep(opts.pauseMs);
    }
  })();
  return {
    name,
    done,
    stop: () => {
      stopping = true;
    },
    get acks() {
      return acks;
    },
  };
}

function hashSeed(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

// ---- Reading back ----------------------------------------------------------------------------

export interface Item {
  readonly key: string;
  readonly value: string;
  readonly version: number;
}

/** Every key of a group, page by page. */
export async function scanAll(c: TestCluster, group: string, node: string, consistency: "linearizable" | "stale" = "linearizable"): Promise<{ items: Map<string, Item>; index: number }> {
  const items = new Map<string, Item>();
  let after: string | undefined;
  let index = 0;
  for (;;) {
    const page = await ok(c, { op: "scan", group, limit: 1000, consistency, ...(after === undefined ? {} : { after }) }, node);
    for (const it of page.items as Item[]) items.set(it.key, { key: it.key, value: it.value, version: it.version });
    index = Math.max(index, page.index as number);
    if (page.next === undefined) return { items, index };
    after = page.next as string;
  }
}

/**
 * Reads every group of the ledger through `node` and lists what is wrong: an acknowledged
 * write missing or with another value or version, an unknown-outcome write with the wrong
 * value, a key nobody wrote. An empty list is a pass.
 */
export async function checkLedger(c: TestCluster, ledgers: readonly Ledger[], node: string, consistency: "linearizable" | "stale" = "linearizable"): Promise<{ problems: string[]; indexes: Map<string, number>; found: number }> {
  const problems: string[] = [];
  const indexes = new Map<string, number>();
  let found = 0;
  const byGroup = new Map<string, WriteRecord[]>();
  for (const l of ledgers) for (const w of l.writes) {
    let ws = byGroup.get(w.group);
    if (ws === undefined) byGroup.set(w.group, (ws = []));
    ws.push(w);
  }
  await Promise.all(
    [...byGroup].map(async ([group, ws]) => {
      const { items, index } = await scanAll(c, group, node, consistency);
      indexes.set(group, index);
      const known = new Set<string>();
      for (const w of ws) {
        known.add(w.key);
        const got = items.get(w.key);
        if (w.status === "acked") {
          if (got === undefined) problems.push(`${node}/${consistency}: LOST acked ${group}/${w.key} v${w.version} (${w.trail.join(" ")})`);
          else if (got.value !== w.value || got.version !== w.version)
            problems.push(`${node}/${consistency}: ${group}/${w.key} acked v${w.version} "${w.value}", read v${got.version} "${got.value}"`);
        } else if (got !== undefined) {
          if (got.value !== w.value) problems.push(`${node}/${consistency}: ${group}/${w.key} holds "${got.value}", written "${w.value}"`);
          if (w.status === "pending") problems.push(`${node}/${consistency}: ${group}/${w.key} is still pending`);
        }
        if (got !== undefined) found++;
      }
      for (const key of items.keys()) if (!known.has(key)) problems.push(`${node}/${consistency}: phantom key ${group}/${key}`);
    }),
  );
  return { problems: problems.sort(), indexes, found };
}

/** Every node, linearizable then stale, agrees with the ledger (and the nodes with each other). */
export async function expectLedgerEverywhere(c: TestCluster, ledgers: readonly Ledger[], nodes: readonly string[] = c.members): Promise<void> {
  const problems: string[] = [];
  const staleIndexes: Map<string, number>[] = [];
  for (const node of nodes) {
    const lin = await checkLedger(c, ledgers, node, "linearizable");
    problems.push(...lin.problems);
  }
  // After a linearizable read through each node, each holds the data locally: stale reads agree.
  for (const node of nodes) {
    const stale = await checkLedger(c, ledgers, node, "stale");
    problems.push(...stale.problems);
    staleIndexes.push(stale.indexes);
  }
  expect(problems.slice(0, 30), `${problems.length} problems`).toEqual([]);
  // And the replicas are at the same index of every group.
  const first = staleIndexes[0]!;
  for (let i = 1; i < staleIndexes.length; i++) expect(Object.fromEntries(staleIndexes[i]!), `stale indexes of ${nodes[i]} vs ${nodes[0]}`).toEqual(Object.fromEntries(first));
}

export function badFrameLines(c: TestCluster, node: string): string[] {
  return c.nodes.get(node)!.lines.filter((l) => l.includes("dropped a bad peer frame"));
}

export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

export const fmt = (ms: number): string => (Number.isFinite(ms) ? `${ms.toFixed(0)} ms` : "n/a");
