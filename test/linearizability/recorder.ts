// The clients of `npm run verify` and the history they leave (history.ts is the format).
//
// Many logical client processes run in this one process; each has at most one operation
// outstanding. Client k is connected to the nats-server of node k mod 3 (so a cut-off server
// keeps some clients on the minority side) and sends through one of: a node's own subject
// `<prefix>.api.<node>` (raw NATS, JSON), the queue subject `<prefix>.api` (raw NATS), or the
// TypeScript client (src/client, msgpack, its own failover and retries). With 15 clients every
// (server, route) pair is used.
//
// Outcomes follow history.ts and docs/API.md:
//   - a write that timed out (an answer `timeout`, or no answer) is retried with the SAME
//     request id, up to `attemptsMax` attempts; the logical operation keeps its id, its first
//     invocation and its last completion;
//   - a write is `fail` only when no attempt may have applied it: `unavailable`, `not_replica`,
//     `bad_request`, `too_large`, or no responders, with no uncertain attempt before; else
//     `unknown`. `internal` is unknown (it may follow a proposal);
//   - a cas `conflict` is an ok answer ({ ok: false, current });
//   - a read that is not answered ok is `fail` (it changed nothing).
// After an unknown outcome the client continues as a new process (`c3.1`, `c3.2`, ...), as in
// Jepsen: the unknown operation may still take effect at any later time.

import { connect as natsConnect, headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import { connect as clientConnect, type PaxosStoreClient } from "../../src/client/index.js";
import type { HistoryCall, HistoryOp, HistoryOutcome, HistoryResult } from "./history.js";
import type { Rng } from "./rng.js";
import type { PlannedOp, Workload } from "./workload.js";

export interface RecorderOptions {
  readonly prefix: string;
  readonly cluster: string;
  readonly members: readonly string[];
  readonly serverUrl: (node: string) => string;
  readonly clients: number;
  readonly workload: Workload;
  readonly rng: Rng;
  /** One attempt's NATS request timeout. */
  readonly attemptTimeoutMs: number;
  /** Attempts of one logical write (the first and its retries with the same request id). */
  readonly attemptsMax: number;
  /** A client waits up to this long between its operations (0: back to back). */
  readonly thinkMsMax: number;
}

export interface RecorderCounts {
  invoked: number;
  ok: number;
  fail: number;
  unknown: number;
}

type Attempt =
  | { readonly kind: "ok"; readonly body: Record<string, unknown> }
  | { readonly kind: "error"; readonly code: string; readonly details: Record<string, unknown>; readonly message: string }
  | { readonly kind: "noResponders" }
  | { readonly kind: "noAnswer"; readonly why: string };

const enc = new TextEncoder();
const dec = new TextDecoder();

export class Recorder {
  readonly counts: RecorderCounts = { invoked: 0, ok: 0, fail: 0, unknown: 0 };
  /** Each client's nats-server, for the report. */
  readonly clientServers = new Map<string, string>();
  private readonly ops: HistoryOp[] = [];
  private readonly pending = new Map<number, { op: Omit<HistoryOp, "completedAt" | "outcome">; attempts: number }>();
  private readonly connections = new Map<string, NatsConnection>();
  private readonly tsClients = new Map<string, PaxosStoreClient>();
  private nextId = 0;
  private nextValue = 0;
  private stopAt = Infinity;
  private readonly runId = Date.now().toString(36);

  constructor(private readonly o: RecorderOptions) {}

  async connect(): Promise<void> {
    for (const server of this.o.members) {
      const nc = await natsConnect({
        servers: this.o.serverUrl(server),
        name: `verify-recorder-${server}`,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        noAsyncTraces: true,
      });
      this.connections.set(server, nc);
      this.tsClients.set(
        server,
        await clientConnect({ connection: nc, cluster: this.o.cluster, members: this.o.members, timeoutMs: this.o.attemptTimeoutMs * 2, name: `verify-client-${server}` }),
      );
    }
  }

  /** Runs every client until `deadline` (performance.now()); resolves when all have stopped. */
  async run(deadline: number): Promise<void> {
    this.stopAt = deadline;
    const routes = [...this.o.members, "queue", "client"];
    await Promise.all(
      Array.from({ length: this.o.clients }, (_, k) => {
        const route = routes[k % routes.length]!;
        // Clients k, k+5, k+10 share a route and use the three servers in turn.
        const server = this.o.members[((k % routes.length) + Math.floor(k / routes.length)) % this.o.members.length]!;
        this.clientServers.set(`c${k}`, server);
        return this.client(`c${k}`, route, server, this.o.rng.fork());
      }),
    );
  }

  /** Stops the clients early (each finishes its operation in flight). */
  stop(): void {
    this.stopAt = -Infinity;
  }

  /** The history so far, in invocation order; operations still in flight are unanswered (completedAt null). */
  history(): HistoryOp[] {
    const all = [...this.ops];
    for (const { op } of this.pending.values()) all.push({ ...op, completedAt: null, outcome: "unknown", note: "no answer before the run ended" });
    return all.sort((a, b) => a.id - b.id);
  }

  async close(): Promise<void> {
    for (const c of this.tsClients.values()) await c.close().catch(() => undefined);
    for (const nc of this.connections.values()) await nc.close().catch(() => undefined);
  }

  // ----------------------------------------------------------------------------- internals

  private async client(name: string, route: string, server: string, rng: Rng): Promise<void> {
    let incarnation = 0;
    let process = name;
    while (performance.now() < this.stopAt) {
      const plan = this.o.workload.next(`${name}-${this.runId}-${++this.nextValue}`);
      const outcome = await this.perform(process, route, server, plan);
      if (outcome === "unknown") process = `${name}.${++incarnation}`;
      if (this.o.thinkMsMax > 0) await new Promise((r) => setTimeout(r, rng.int(0, this.o.thinkMsMax)));
    }
  }

  private async perform(process: string, route: string, server: string, plan: PlannedOp): Promise<HistoryOutcome> {
    const id = this.nextId++;
    const isWrite = plan.call.f !== "get";
    const requestId = isWrite ? `${this.runId}-${id}` : undefined;
    const base = { id, process, via: route, group: plan.group, ...(requestId === undefined ? {} : { requestId }), call: plan.call, invokedAt: performance.now() };
    const entry = { op: base, attempts: 0 };
    this.pending.set(id, entry);
    this.counts.invoked++;
    let outcome: HistoryOutcome;
    let result: HistoryResult | undefined;
    let note: string | undefined;
    try {
      ({ outcome, result, note } = route === "client" ? await this.viaClient(server, plan, requestId, entry) : await this.viaNats(server, route, plan, requestId, entry));
    } catch (e) {
      // A bug of the recorder itself: never guess a definite outcome.
      outcome = isWrite ? "unknown" : "fail";
      note = `recorder error: ${(e as Error).message}`;
    }
    this.pending.delete(id);
    const done: HistoryOp = { ...base, completedAt: performance.now(), outcome, ...(result === undefined ? {} : { result }), note: `${note ?? ""}${entry.attempts > 1 ? ` (${entry.attempts} attempts)` : ""}`.trim() || undefined };
    if (done.note === undefined) delete (done as { note?: string }).note;
    this.ops.push(done);
    this.counts[outcome]++;
    if (outcome === "ok" && result !== undefined) this.o.workload.observe(plan, result);
    return outcome;
  }

  /** Raw NATS request/reply to a node's subject or the queue subject, with same-id retries. */
  private async viaNats(server: string, route: string, plan: PlannedOp, requestId: string | undefined, entry: { attempts: number }): Promise<{ outcome: HistoryOutcome; result?: HistoryResult; note?: string }> {
    const nc = this.connections.get(server)!;
    const subject = route === "queue" ? `${this.o.prefix}.api` : `${this.o.prefix}.api.${route}`;
    const body = enc.encode(JSON.stringify(wireRequest(plan, requestId)));
    const isWrite = requestId !== undefined;
    let uncertain = false;
    let last = "";
    for (;;) {
      entry.attempts++;
      const a = await attemptNats(nc, subject, body, this.o.attemptTimeoutMs);
      if (a.kind === "ok") return { outcome: "ok", result: resultOf(plan.call, a.body) };
      if (a.kind === "error" && a.code === "conflict" && plan.call.f === "cas") return { outcome: "ok", result: { f: "cas", ok: false, current: Number(a.details.current) } };
      if (!isWrite) return { outcome: "fail", note: describe(a) };
      last = describe(a);
      const mayHaveApplied = a.kind === "noAnswer" || (a.kind === "error" && (a.code === "timeout" || a.code === "internal" || !KNOWN_CODES.has(a.code)));
      if (mayHaveApplied) uncertain = true;
      const retry = mayHaveApplied || uncertain || a.kind === "noResponders";
      if (!retry || entry.attempts >= this.o.attemptsMax || performance.now() >= this.stopAt + this.o.attemptTimeoutMs * this.o.attemptsMax) break;
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 100));
    }
    return { outcome: uncertain ? "unknown" : "fail", note: last };
  }

  /** The TypeScript client (its own failover and retries), with one more call under the same id after a timeout. */
  private async viaClient(server: string, plan: PlannedOp, requestId: string | undefined, entry: { attempts: number }): Promise<{ outcome: HistoryOutcome; result?: HistoryResult; note?: string }> {
    const client = this.tsClients.get(server)!;
    const call = plan.call;
    const group = plan.sendGroup ? plan.group : undefined;
    const isWrite = requestId !== undefined;
    let uncertain = false;
    let last = "";
    for (;;) {
      entry.attempts++;
      try {
        return { outcome: "ok", result: await clientCall(client, call, group, plan.group, requestId) };
      } catch (e) {
        const err = e as Error & { code?: string; details?: Record<string, unknown> };
        if (err.code === "conflict" && call.f === "cas") return { outcome: "ok", result: { f: "cas", ok: false, current: Number(err.details?.current) } };
        last = `${err.code ?? "error"}: ${err.message}`;
        if (!isWrite) return { outcome: "fail", note: last };
        const mayHaveApplied = err.code === undefined || err.code === "timeout" || err.code === "internal";
        if (mayHaveApplied) uncertain = true;
        if (!mayHaveApplied || entry.attempts >= 2 || performance.now() >= this.stopAt + this.o.attemptTimeoutMs * this.o.attemptsMax) break;
      }
    }
    return { outcome: uncertain ? "unknown" : "fail", note: last };
  }
}

/** Error codes whose meaning is known (docs/API.md); an unknown one is treated as uncertain. */
const KNOWN_CODES = new Set(["bad_request", "too_large", "conflict", "unavailable", "timeout", "not_replica", "internal"]);

function describe(a: Attempt): string {
  switch (a.kind) {
    case "error":
      return `${a.code}: ${a.message}`;
    case "noResponders":
      return "no responders";
    case "noAnswer":
      return `no answer (${a.why})`;
    default:
      return "ok";
  }
}

async function attemptNats(nc: NatsConnection, subject: string, body: Uint8Array, timeoutMs: number): Promise<Attempt> {
  const h = natsHeaders();
  // The node answers `timeout` a little before we stop waiting, so silence means no node answered.
  h.set("PaxosStore-Timeout-Ms", String(Math.max(50, timeoutMs - 250)));
  try {
    const m = await nc.request(subject, body, { timeout: timeoutMs, headers: h });
    const answer = JSON.parse(dec.decode(m.data)) as Record<string, unknown>;
    if (answer.ok === true) return { kind: "ok", body: answer };
    const error = (answer.error ?? {}) as { code?: string; message?: string; details?: Record<string, unknown> };
    return { kind: "error", code: String(error.code ?? "internal"), details: error.details ?? {}, message: String(error.message ?? "") };
  } catch (e) {
    const err = e as Error & { isNoResponders?: () => boolean };
    if (err.name === "NoRespondersError" || (typeof err.isNoResponders === "function" && err.isNoResponders())) return { kind: "noResponders" };
    return { kind: "noAnswer", why: `${err.name}: ${err.message}` };
  }
}

/** The wire request of a planned operation (history.ts calls mirror docs/API.md). */
function wireRequest(plan: PlannedOp, requestId: string | undefined): Record<string, unknown> {
  const { f, ...fields } = plan.call;
  return { op: f, ...fields, ...(plan.sendGroup ? { group: plan.group } : {}), ...(requestId === undefined ? {} : { requestId }) };
}

function resultOf(call: HistoryCall, body: Record<string, unknown>): HistoryResult {
  const num = (v: unknown): number => {
    if (typeof v !== "number") throw new Error(`answer to ${call.f} lacks a number: ${JSON.stringify(body)}`);
    return v;
  };
  switch (call.f) {
    case "get":
      if (body.found === true) {
        if (typeof body.value !== "string") throw new Error(`get answer without a text value: ${JSON.stringify(body)}`);
        return { f: "get", found: true, value: body.value, version: num(body.version), index: num(body.index) };
      }
      return { f: "get", found: false, index: num(body.index) };
    case "put":
      return { f: "put", version: num(body.version) };
    case "delete":
      return { f: "delete", version: num(body.version), existed: body.existed === true };
    case "cas":
      return { f: "cas", ok: true, version: num(body.version) };
    case "txn":
      return { f: "txn", succeeded: body.succeeded === true, version: num(body.version), currentVersions: (body.currentVersions as unknown[]).map(num) };
  }
}

async function clientCall(client: PaxosStoreClient, call: HistoryCall, group: string | undefined, txnGroup: string, requestId: string | undefined): Promise<HistoryResult> {
  const w = { requestId };
  switch (call.f) {
    case "get": {
      const r = await client.getIn(group, call.key, { consistency: call.consistency });
      return r.found ? { f: "get", found: true, value: dec.decode(r.value), version: r.version, index: r.index } : { f: "get", found: false, index: r.index };
    }
    case "put":
      return { f: "put", version: (await client.putIn(group, call.key, call.value, w)).version };
    case "delete": {
      const r = await client.deleteIn(group, call.key, w);
      return { f: "delete", version: r.version, existed: r.existed };
    }
    case "cas":
      return { f: "cas", ok: true, version: (await client.casIn(group, call.key, call.version, call.value, w)).version };
    case "txn": {
      const r = await client.txnIn(txnGroup, { compares: call.compares, success: call.success, failure: call.failure }, w);
      return { f: "txn", succeeded: r.succeeded, version: r.version, currentVersions: r.currentVersions };
    }
  }
}
