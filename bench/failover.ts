// The failover gap, measured from outside (issue 10): a local 3-node cluster of real processes
// (nats-server + `paxosstore node`, like `paxosstore dev`), clients hammering it, and a node
// killed (kill -9, restarted 1-2 s later) or paused (SIGSTOP for 2 s, then SIGCONT) every 5 s.
// For each fault, per kind of client, the longest stretch within 3 s after it in which no
// client of that kind got a decided answer (ok, or a txn whose compare failed).
//
//   npm run build && npm run bench:failover -- [--faults kill,pause,partition] [--keys hot,many]
//       [--kinds queue,node,ts] [--faults-per-run 10] [--every 5000] [--clients 12]
//       [--separate] [--root other/checkout] [--json bench/results/failover.json] [--hedge-ms N]
// `--faults partition` (root and iptables: bash infra/install-iptables.sh) runs each node with its
// own nats-server in network namespaces and cuts one off from the others (see runPartition).
// `--faults none` measures the same windows with no fault: the noise floor of this machine
// (a busy shared machine has stretches of 100 ms and more with nothing failing).
//
// Kinds of client (12 each; with --separate one kind at a time, else all kinds at once on one
// cluster, so their numbers come from the same faults):
//   queue  raw NATS requests (JSON) on `<prefix>.api`, 1 s per-operation timeout, no retries
//   hedged raw NATS requests on `<prefix>.api` as docs/API.md advises any-language clients: a
//          write carries a request id, and an attempt unanswered after 4x the client's usual
//          latency (75-250 ms, the TypeScript client's rule; --hedge-ms N for a fixed delay) gets a copy
//          (same id) on the queue subject, and so on every hedge delay until an answer, up to
//          MAX_COPIES (each copy lands on a node NATS picks at random, so while a node is cut off
//          or paused a copy is lost one time in three); the first decided answer wins
//   node   raw NATS requests on one node's own subject `<prefix>.api.<node>` (clients spread
//          evenly over the nodes), 1 s timeout, no retries
//   ts     the TypeScript client (one shared client, timeoutMs 1000, its own retries)
// Keys: `hot` = 8 single-key groups, `many` = 200. Operations: 50% linearizable get, 25% put,
// 25% txn with one compare (version = the last version this client saw of the key).
// The machine is shared and noisy: compare kinds and configurations within one run.

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { connect as natsConnect, headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import type { PaxosStoreClient, connect as StoreConnect } from "../src/client/index.js";
import { hedgeDelayMs } from "../src/client/retry.js";
import { freePort, longestStretch, median, sleep, WINDOW_MS, worstStall } from "./stretch.js";
import { VerifyCluster } from "../test/linearizability/cluster.js";
import { cut, healAll, layout, networkProblem, setUpNetwork, tearDownNetwork } from "../test/linearizability/netns.js";

const arg = (name: string, def: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : def;
};
// The build to measure (nodes and TypeScript client): this checkout, or another one's folder
// (`--root /path/to/other/checkout`, built), to compare two versions on one machine in one run.
const ROOT = arg("root", join(dirname(fileURLToPath(import.meta.url)), ".."));
const BIN = join(ROOT, "bin/paxosstore.mjs");
const storeConnect = ((await import(join(ROOT, "dist/client/index.js"))) as { connect: typeof StoreConnect }).connect;
const NATS_BIN = process.env.NATS_SERVER_BIN ?? "/usr/sbin/nats-server";
const OP_TIMEOUT_MS = 1_000;

type Kind = "queue" | "hedged" | "node" | "ts";
type Fault = "kill" | "pause" | "partition" | "none";
type Keys = "hot" | "many";

const flag = (name: string): boolean => process.argv.includes(`--${name}`);
const faults = arg("faults", "kill,pause").split(",") as Fault[];
const keySets = arg("keys", "hot,many").split(",") as Keys[];
const kinds = arg("kinds", "queue,node,ts").split(",") as Kind[];
const faultsPerRun = Number(arg("faults-per-run", "10"));
const everyMs = Number(arg("every", "5000"));
const clientsPerKind = Number(arg("clients", "12"));
const separate = flag("separate");
const jsonOut = arg("json", "");
const members = ["n1", "n2", "n3"];
const CLUSTER = "fo";
const PREFIX = `paxosstore.${CLUSTER}`;

// ---- The cluster -------------------------------------------------------------------------

class Cluster {
  nats: ChildProcess | null = null;
  readonly nodes = new Map<string, ChildProcess | null>();
  url = "";
  private readonly dir = mkdtempSync(join(tmpdir(), "paxosstore-failover-"));

  async start(): Promise<void> {
    const port = await freePort();
    this.url = `nats://127.0.0.1:${port}`;
    mkdirSync(join(this.dir, "nats"), { recursive: true });
    this.nats = spawn(NATS_BIN, ["-a", "127.0.0.1", "-p", String(port), "-sd", join(this.dir, "nats")], { stdio: "ignore" });
    for (let i = 0; i < 100; i++) {
      try {
        const nc = await natsConnect({ servers: this.url, reconnect: false });
        await nc.close();
        break;
      } catch {
        await sleep(50);
      }
    }
    await Promise.all(members.map((id) => this.startNode(id)));
  }

  startNode(id: string): Promise<void> {
    const child = spawn(
      process.execPath,
      [BIN, "node", "--node-id", id, "--cluster", CLUSTER, "--members", members.join(","), "--nats", this.url, "--data-dir", join(this.dir, id), "--log-level", "info"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    this.nodes.set(id, child);
    child.stderr!.resume();
    return new Promise((res, rej) => {
      let buf = "";
      const onData = (d: Buffer): void => {
        buf += d.toString();
        if (buf.includes(`paxosstore node ${id} ready`)) {
          child.stdout!.off("data", onData);
          child.stdout!.resume();
          res();
        }
        if (buf.length > 100_000) buf = buf.slice(-1000);
      };
      child.stdout!.on("data", onData);
      child.once("exit", (code, signal) => rej(new Error(`${id} exited before ready (${signal ?? code})`)));
    });
  }

  async kill(id: string): Promise<void> {
    const child = this.nodes.get(id);
    if (!child) return;
    this.nodes.set(id, null);
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGKILL");
    await exited;
  }

  signal(id: string, sig: NodeJS.Signals): void {
    this.nodes.get(id)?.kill(sig);
  }

  async close(): Promise<void> {
    for (const id of members) {
      const c = this.nodes.get(id);
      if (c) {
        c.kill("SIGCONT");
        await this.kill(id);
      }
    }
    if (this.nats) {
      const exited = new Promise((r) => this.nats!.once("exit", r));
      this.nats.kill("SIGKILL");
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

// ---- The clients ---------------------------------------------------------------------------

const enc = new TextEncoder();
const dec = new TextDecoder();

interface Op {
  readonly kind: "get" | "put" | "txn";
  readonly key: string;
}

function nextOp(keys: readonly string[]): Op {
  const r = Math.random();
  const key = keys[Math.floor(Math.random() * keys.length)]!;
  return { kind: r < 0.5 ? "get" : r < 0.75 ? "put" : "txn", key };
}

/** One operation, for --trace: what the clients were doing during a stretch. */
interface TracedOp {
  readonly client: number;
  readonly op: string;
  readonly key: string;
  readonly start: number;
  end: number;
  outcome: string;
}

/** Timestamps (performance.now()) of decided answers, and counts of the rest, per kind. */
class Tally {
  readonly decided: number[] = [];
  readonly traced: TracedOp[] = [];
  readonly other = new Map<string, number>();
  count(what: string): void {
    this.other.set(what, (this.other.get(what) ?? 0) + 1);
  }
}

const trace = flag("trace");
let nextClientId = 0;

/** Starts tracing one operation (--trace); the returned function ends it with its outcome. */
function traceOp(tally: Tally, client: number, op: Op): (outcome: string) => void {
  if (!trace) return () => undefined;
  const t: TracedOp = { client, op: op.kind, key: op.key, start: performance.now(), end: NaN, outcome: "" };
  tally.traced.push(t);
  return (outcome) => {
    t.end = performance.now();
    t.outcome = outcome;
  };
}

/** The operations in flight when a stretch began, and where they went (--trace). */
function traceStretch(tally: Tally, at: number, stretch: { ms: number; atMs: number }): string {
  const from = at + stretch.atMs;
  const to = from + stretch.ms;
  const rel = (t: number): string => (Number.isNaN(t) ? "open" : `+${(t - at).toFixed(0)}`);
  return tally.traced
    .filter((t) => t.start <= to && (Number.isNaN(t.end) || t.end >= from))
    .map((t) => `      c${t.client} ${t.op} ${t.key} ${rel(t.start)}..${rel(t.end)} ${t.outcome}`)
    .join("\n");
}

/** A raw request's JSON body; writes carry `requestId` when one is given. */
function requestBody(op: Op, n: number, versions: ReadonlyMap<string, number>, requestId: string | null): Record<string, unknown> {
  const id = requestId === null ? {} : { requestId };
  if (op.kind === "get") return { op: "get", key: op.key };
  if (op.kind === "put") return { op: "put", key: op.key, value: `v${n}`, ...id };
  return { op: "txn", group: op.key, ...id, compares: [{ key: op.key, version: versions.get(op.key) ?? 0 }], success: [{ op: "put", key: op.key, value: `t${n}` }] };
}

/** Counts a node's answer: decided (ok) with the versions it tells, or its error code. */
function countAnswer(a: Record<string, unknown>, op: Op, versions: Map<string, number>, tally: Tally, done: (outcome: string) => void): void {
  const code = `error:${(a.error as { code?: string } | undefined)?.code ?? "?"}`;
  done(a.ok === true ? "ok" : code);
  if (a.ok !== true) return tally.count(code);
  tally.decided.push(performance.now());
  if (typeof a.version === "number") versions.set(op.key, a.version);
  const cv = a.currentVersions as number[] | undefined;
  if (op.kind === "txn" && a.succeeded === false && cv) versions.set(op.key, cv[0]!);
}

async function rawClient(nc: NatsConnection, subject: string, keys: readonly string[], tally: Tally, running: () => boolean): Promise<void> {
  const id = ++nextClientId;
  const versions = new Map<string, number>();
  const h = natsHeaders();
  h.set("PaxosStore-Timeout-Ms", String(OP_TIMEOUT_MS - 100));
  let n = 0;
  while (running()) {
    const op = nextOp(keys);
    const body = requestBody(op, ++n, versions, null);
    const done = traceOp(tally, id, op);
    try {
      const m = await nc.request(subject, enc.encode(JSON.stringify(body)), { timeout: OP_TIMEOUT_MS, headers: h });
      countAnswer(JSON.parse(dec.decode(m.data)) as Record<string, unknown>, op, versions, tally, done);
    } catch (e) {
      const err = e as Error & { isNoResponders?: () => boolean };
      const what = typeof err.isNoResponders === "function" && err.isNoResponders() ? "noResponders" : err.name === "TimeoutError" || /timeout/i.test(err.message) ? "timeout" : "failed";
      done(what);
      tally.count(what);
      if (what !== "timeout") await sleep(10); // no busy loop on a subject nobody serves
    }
  }
}

// How long an unanswered copy waits before the next: `--hedge-ms N` fixed, or by default the
// TypeScript client's rule (4x this client's moving average latency, 75-250 ms: retry.ts), which
// docs/API.md advises any-language clients.
const HEDGE_ARG = arg("hedge-ms", "adaptive");
const HEDGE_FIXED_MS = HEDGE_ARG === "adaptive" ? null : Number(HEDGE_ARG);
if (HEDGE_FIXED_MS !== null && !(HEDGE_FIXED_MS > 0)) throw new Error(`--hedge-ms: a number of ms > 0, or adaptive (got ${HEDGE_ARG})`);
const HEDGE_LABEL = HEDGE_FIXED_MS === null ? "hedged after 4x its latency (75-250 ms)" : `hedged after ${HEDGE_FIXED_MS} ms`;

/** A raw client that hedges (docs/API.md, "When a node dies or hangs"): see the header. */
// A hedged raw client's copies of one operation at most. Three lost all three one operation in
// 27 while a cut-off node drew a third of the queue requests: 230 one-second timeouts in 10 cuts,
// enough to leave every majority-side client waiting at once (2026-12-01 trace). Eight lose all
// one in 6,561; copies go out only while the operation is unanswered, so they cost nothing when
// the cluster answers within the hedge delay.
const MAX_COPIES = 8;

async function hedgedClient(nc: NatsConnection, subject: string, keys: readonly string[], tally: Tally, running: () => boolean): Promise<void> {
  const id = ++nextClientId;
  const versions = new Map<string, number>();
  const h = natsHeaders();
  h.set("PaxosStore-Timeout-Ms", String(OP_TIMEOUT_MS - 100));
  let n = 0;
  let latencyEwmaMs = 20;
  while (running()) {
    const op = nextOp(keys);
    const data = enc.encode(JSON.stringify(requestBody(op, ++n, versions, `hedged-${id}-${n}`)));
    const hedgeMs = HEDGE_FIXED_MS ?? hedgeDelayMs(latencyEwmaMs);
    const done = traceOp(tally, id, op);
    const started = performance.now();
    const answer = await new Promise<Record<string, unknown> | string>((resolve) => {
      let settled = false;
      let outstanding = 0;
      let copies = 0;
      let lastFailure = "timeout";
      let hedge: NodeJS.Timeout | undefined;
      const finish = (x: Record<string, unknown> | string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(hedge);
        resolve(x);
      };
      const send = (): void => {
        copies++;
        outstanding++;
        const budget = Math.max(1, OP_TIMEOUT_MS - (performance.now() - started));
        if (copies < MAX_COPIES && performance.now() + hedgeMs - started < OP_TIMEOUT_MS) hedge = setTimeout(send, hedgeMs);
        const sentAt = performance.now();
        nc.request(subject, data, { timeout: budget, headers: h })
          .then((m) => {
            const a = JSON.parse(dec.decode(m.data)) as Record<string, unknown>;
            const code = (a.error as { code?: string } | undefined)?.code;
            if (a.ok === true || (code !== "timeout" && code !== "unavailable")) {
              if (!settled) latencyEwmaMs += (performance.now() - sentAt - latencyEwmaMs) / 16;
              return finish(a);
            }
            lastFailure = `error:${code}`;
          })
          .catch((e: Error & { isNoResponders?: () => boolean }) => {
            lastFailure = typeof e.isNoResponders === "function" && e.isNoResponders() ? "noResponders" : "timeout";
          })
          .finally(() => {
            outstanding--;
            if (outstanding === 0 && !settled) {
              if (copies < MAX_COPIES && performance.now() - started < OP_TIMEOUT_MS) {
                clearTimeout(hedge);
                send();
              } else finish(lastFailure);
            }
          });
      };
      send();
    });
    if (typeof answer === "string") {
      done(answer);
      tally.count(answer);
      if (answer !== "timeout") await sleep(10);
      continue;
    }
    countAnswer(answer, op, versions, tally, done);
  }
}

async function tsClient(store: PaxosStoreClient, keys: readonly string[], tally: Tally, running: () => boolean): Promise<void> {
  const id = ++nextClientId;
  const versions = new Map<string, number>();
  let n = 0;
  while (running()) {
    const op = nextOp(keys);
    const done = traceOp(tally, id, op);
    try {
      if (op.kind === "get") {
        await store.get(op.key);
      } else if (op.kind === "put") {
        versions.set(op.key, (await store.put(op.key, `v${++n}`)).version);
      } else {
        const r = await store.group(op.key).txn({ compares: [{ key: op.key, version: versions.get(op.key) ?? 0 }], success: [{ op: "put", key: op.key, value: `t${++n}` }] });
        versions.set(op.key, r.succeeded ? r.version : r.currentVersions[0]!);
      }
      tally.decided.push(performance.now());
      done("ok");
    } catch (e) {
      done(`error:${(e as { code?: string }).code ?? (e as Error).name}`);
      tally.count(`error:${(e as { code?: string }).code ?? (e as Error).name}`);
    }
  }
}

// ---- One run: a cluster, some kinds of client, a series of faults ---------------------------

interface FaultRecord {
  readonly node: string;
  readonly at: number;
  /** When the node was restarted or resumed, ms after the fault. */
  readonly backAfterMs: number;
  readonly stretchMs: Partial<Record<Kind, number>>;
  /** Where each kind's longest stretch began, ms after the fault. */
  readonly stretchAtMs: Partial<Record<Kind, number>>;
  /** The bench process's own worst event-loop stall in the window. */
  readonly benchStallMs: number;
}

interface RunResult {
  readonly fault: Fault;
  readonly keys: Keys;
  readonly kinds: Kind[];
  readonly faults: FaultRecord[];
  readonly summary: Partial<Record<Kind, { medianMs: number; longestMs: number; decided: number; other: Record<string, number> }>>;
}

async function run(fault: Fault, keysName: Keys, runKinds: Kind[]): Promise<RunResult> {
  const keys = Array.from({ length: keysName === "hot" ? 8 : 200 }, (_, i) => `${keysName}:${i}`);
  const cluster = new Cluster();
  await cluster.start();
  const nc = await natsConnect({ servers: cluster.url, noAsyncTraces: true, maxReconnectAttempts: -1 });
  let store: PaxosStoreClient | null = null;
  if (runKinds.includes("ts")) store = await storeConnect({ servers: cluster.url, cluster: CLUSTER, timeoutMs: OP_TIMEOUT_MS });
  const tallies = new Map<Kind, Tally>(runKinds.map((k) => [k, new Tally()]));
  let on = true;
  const running = (): boolean => on;
  const loops: Promise<void>[] = [];
  for (const kind of runKinds) {
    const tally = tallies.get(kind)!;
    for (let i = 0; i < clientsPerKind; i++) {
      if (kind === "queue") loops.push(rawClient(nc, `${PREFIX}.api`, keys, tally, running));
      else if (kind === "hedged") loops.push(hedgedClient(nc, `${PREFIX}.api`, keys, tally, running));
      else if (kind === "node") loops.push(rawClient(nc, `${PREFIX}.api.${members[i % members.length]}`, keys, tally, running));
      else loops.push(tsClient(store!, keys, tally, running));
    }
  }
  const label = `${fault} / ${keysName} keys / ${runKinds.join("+")}`;
  console.log(`\n== ${label}: ${clientsPerKind} clients per kind, ${faultsPerRun} faults, one every ${everyMs} ms`);
  await sleep(2_000); // warm up: groups loaded, fast paths hot
  const records: { node: string; at: number; backAfterMs: number }[] = [];
  for (let f = 0; f < faultsPerRun; f++) {
    const node = members[Math.floor(Math.random() * members.length)]!;
    const at = performance.now();
    let backAfterMs: number;
    let readyAfterMs = 0;
    if (fault === "kill") {
      await cluster.kill(node);
      const downMs = 1_000 + Math.random() * 1_000;
      await sleep(downMs - (performance.now() - at));
      backAfterMs = performance.now() - at;
      await cluster.startNode(node);
      readyAfterMs = performance.now() - at;
    } else if (fault === "pause") {
      cluster.signal(node, "SIGSTOP");
      await sleep(2_000);
      backAfterMs = performance.now() - at;
      cluster.signal(node, "SIGCONT");
    } else {
      backAfterMs = 0; // the control: the same windows with no fault, the noise floor
    }
    records.push({ node, at, backAfterMs: Math.round(backAfterMs) });
    await sleep(Math.max(0, at + everyMs - performance.now()));
    const line = runKinds
      .map((k) => {
        const s = longestStretch(tallies.get(k)!.decided, at); // appended in time order
        return `${k} ${s.ms.toFixed(0)} ms (from +${s.atMs.toFixed(0)})`;
      })
      .join(", ");
    const ready = fault === "kill" ? `, ready at +${readyAfterMs.toFixed(0)} ms` : "";
    console.log(`  ${fault} ${f + 1}/${faultsPerRun} ${node} (back at +${backAfterMs.toFixed(0)} ms${ready}): longest stretch without a decided answer: ${line}; bench's own worst stall ${worstStall(at)} ms`);
    if (trace) for (const k of runKinds) console.log(traceStretch(tallies.get(k)!, at, longestStretch(tallies.get(k)!.decided, at)));
  }
  on = false;
  await Promise.race([Promise.all(loops), sleep(3_000)]);
  await store?.close();
  await nc.close();
  await cluster.close();
  const faultsOut: FaultRecord[] = records.map((r) => {
    const s = runKinds.map((k) => [k, longestStretch(tallies.get(k)!.decided, r.at)] as const);
    return {
      ...r,
      at: Math.round(r.at),
      stretchMs: Object.fromEntries(s.map(([k, x]) => [k, Math.round(x.ms)])),
      stretchAtMs: Object.fromEntries(s.map(([k, x]) => [k, Math.round(x.atMs)])),
      benchStallMs: worstStall(r.at),
    };
  });
  const summary: RunResult["summary"] = {};
  for (const k of runKinds) {
    const xs = faultsOut.map((f) => f.stretchMs[k]!);
    const t = tallies.get(k)!;
    summary[k] = { medianMs: Math.round(median(xs)), longestMs: Math.max(...xs), decided: t.decided.length, other: Object.fromEntries(t.other) };
  }
  return { fault, keys: keysName, kinds: runKinds, faults: faultsOut, summary };
}

// ---- A node cut off by a network partition ------------------------------------------------
// Each node with its own nats-server in one NATS cluster, each pair in its own network
// namespace (npm run verify's network, test/linearizability/netns.ts: needs root and
// iptables). Every PARTITION_EVERY_MS one node's namespace is cut off from the other two for
// PARTITION_MS, then healed. Clients are spread evenly over the three servers; for each cut,
// only the clients of the two servers on the majority side count, over the whole cycle (the
// cut, the heal, and the cut-off node's return). Their NATS connections are to their own
// server; a queue-subject request still goes to a queue member on any server at random (a
// NATS cluster prefers a local member only for messages that arrive over a route), so until
// the dead route is noticed about one in three is handed to the cut-off node. The TypeScript
// client (one per server) routes by its own liveness view.

const PARTITION_MS = 3_000;
const PARTITION_EVERY_MS = 6_000;

async function runPartition(keysName: Keys, runKinds: Kind[]): Promise<RunResult | null> {
  const problem = networkProblem();
  if (problem !== null) {
    console.log(`\n== partition / ${keysName} keys: skipped: ${problem}`);
    return null;
  }
  const keys = Array.from({ length: keysName === "hot" ? 8 : 200 }, (_, i) => `${keysName}:${i}`);
  const net = layout(members);
  const dir = mkdtempSync(join(tmpdir(), "paxosstore-failover-partition-"));
  const cluster = new VerifyCluster({ net, dir, cluster: CLUSTER, natsServerBin: NATS_BIN, log: () => undefined });
  // decided answers per kind, per server the client is connected to
  const tallies = new Map<string, Tally>();
  const tallyOf = (kind: Kind, server: string): Tally => {
    const key = `${kind}/${server}`;
    let t = tallies.get(key);
    if (t === undefined) tallies.set(key, (t = new Tally()));
    return t;
  };
  const conns: NatsConnection[] = [];
  const stores: PaxosStoreClient[] = [];
  let on = true;
  const running = (): boolean => on;
  const loops: Promise<void>[] = [];
  const records: { node: string; at: number; backAfterMs: number }[] = [];
  try {
    setUpNetwork(net);
    await cluster.start();
    await cluster.warmUp();
    for (const server of members) {
      const url = cluster.serverUrl(server);
      const nc = await natsConnect({ servers: url, noAsyncTraces: true, maxReconnectAttempts: -1 });
      conns.push(nc);
      let store: PaxosStoreClient | null = null;
      if (runKinds.includes("ts")) {
        store = await storeConnect({ servers: url, cluster: CLUSTER, timeoutMs: OP_TIMEOUT_MS });
        stores.push(store);
      }
      for (const kind of runKinds) {
        const n = Math.ceil(clientsPerKind / members.length);
        for (let i = 0; i < n; i++) {
          const tally = tallyOf(kind, server);
          if (kind === "queue") loops.push(rawClient(nc, `${cluster.prefix}.api`, keys, tally, running));
          else if (kind === "hedged") loops.push(hedgedClient(nc, `${cluster.prefix}.api`, keys, tally, running));
          else if (kind === "node") loops.push(rawClient(nc, `${cluster.prefix}.api.${server}`, keys, tally, running));
          else loops.push(tsClient(store!, keys, tally, running));
        }
      }
    }
    console.log(`\n== partition / ${keysName} keys / ${runKinds.join("+")}: ${clientsPerKind} clients per kind over 3 servers, ${faultsPerRun} cuts of ${PARTITION_MS} ms, one every ${PARTITION_EVERY_MS} ms`);
    await sleep(2_000);
    const majority = (kind: Kind, cutOff: string): number[] =>
      members
        .filter((m) => m !== cutOff)
        .flatMap((m) => tallyOf(kind, m).decided)
        .sort((a, b) => a - b);
    for (let f = 0; f < faultsPerRun; f++) {
      // Every route back up first: after a heal nats-server reconnects its routes with a
      // backoff, and a cut made before the two others are routed again would leave no majority
      // side at all (NATS forwards one hop only), which is not the fault being measured.
      const routed = performance.now();
      await cluster.warmUp(30_000);
      if (performance.now() - routed > 500) console.log(`  (routes back after ${(performance.now() - routed).toFixed(0)} ms)`);
      const node = members[Math.floor(Math.random() * members.length)]!;
      const at = performance.now();
      await cut(net, node, members.filter((m) => m !== node));
      await sleep(Math.max(0, at + PARTITION_MS - performance.now()));
      await healAll(net);
      const backAfterMs = Math.round(performance.now() - at);
      records.push({ node, at, backAfterMs });
      await sleep(Math.max(0, at + PARTITION_EVERY_MS - performance.now()));
      const line = runKinds
        .map((k) => {
          const s = longestStretch(majority(k, node), at, PARTITION_EVERY_MS);
          return `${k} ${s.ms.toFixed(0)} ms (from +${s.atMs.toFixed(0)})`;
        })
        .join(", ");
      console.log(`  partition ${f + 1}/${faultsPerRun} ${node} cut off (healed at +${backAfterMs} ms): majority side's longest stretch without a decided answer: ${line}; bench's own worst stall ${worstStall(at, PARTITION_EVERY_MS)} ms`);
      if (trace)
        for (const k of runKinds) {
          const side = new Tally();
          for (const m of members) if (m !== node) side.traced.push(...tallyOf(k, m).traced.map((t) => ({ ...t, key: `${t.key}@${m}` })));
          console.log(traceStretch(side, at, longestStretch(majority(k, node), at, PARTITION_EVERY_MS)));
        }
    }
    on = false;
    await Promise.race([Promise.all(loops), sleep(3_000)]);
    const faultsOut: FaultRecord[] = records.map((r) => {
      const s = runKinds.map((k) => [k, longestStretch(majority(k, r.node), r.at, PARTITION_EVERY_MS)] as const);
      return {
        ...r,
        at: Math.round(r.at),
        stretchMs: Object.fromEntries(s.map(([k, x]) => [k, Math.round(x.ms)])),
        stretchAtMs: Object.fromEntries(s.map(([k, x]) => [k, Math.round(x.atMs)])),
        benchStallMs: worstStall(r.at, PARTITION_EVERY_MS),
      };
    });
    const summary: RunResult["summary"] = {};
    for (const k of runKinds) {
      const xs = faultsOut.map((f) => f.stretchMs[k]!);
      const other = new Map<string, number>();
      let decided = 0;
      for (const m of members) {
        const t = tallyOf(k, m);
        decided += t.decided.length;
        for (const [w, n] of t.other) other.set(w, (other.get(w) ?? 0) + n);
      }
      summary[k] = { medianMs: Math.round(median(xs)), longestMs: Math.max(...xs), decided, other: Object.fromEntries(other) };
    }
    return { fault: "partition", keys: keysName, kinds: runKinds, faults: faultsOut, summary };
  } finally {
    on = false;
    await healAll(net).catch(() => undefined);
    for (const s of stores) await s.close().catch(() => undefined);
    for (const c of conns) await c.close().catch(() => undefined);
    await cluster.stop().catch(() => undefined);
    tearDownNetwork();
    rmSync(dir, { recursive: true, force: true });
  }
}

const KIND_LABEL: Record<Kind, string> = {
  queue: "raw, queue subject",
  hedged: `raw, queue subject, ${HEDGE_LABEL}`,
  node: "raw, each client on one node's subject",
  ts: "TypeScript client",
};

async function main(): Promise<void> {
  const results: RunResult[] = [];
  for (const fault of faults)
    for (const keysName of keySets) {
      const once = async (ks: Kind[]): Promise<void> => {
        const r = fault === "partition" ? await runPartition(keysName, ks) : await run(fault, keysName, ks);
        if (r !== null) results.push(r);
      };
      if (separate) for (const k of kinds) await once([k]);
      else await once(kinds);
    }
  console.log(`\n| fault | keys | clients (${clientsPerKind} each${separate ? "" : ", all kinds at once"}) | median stretch | longest | decided answers | other outcomes |`);
  console.log("|---|---|---|---|---|---|---|");
  for (const r of results)
    for (const k of r.kinds) {
      const s = r.summary[k]!;
      const other = Object.entries(s.other).map(([w, n]) => `${w} ${n}`).join(", ") || "-";
      const faultLabel =
        r.fault === "kill"
          ? "kill -9, restart 1-2 s later"
          : r.fault === "pause"
            ? "SIGSTOP 2 s"
            : r.fault === "partition"
              ? `cut off ${PARTITION_MS / 1000} s (majority side, ${PARTITION_EVERY_MS / 1000} s window)`
              : "none (control)";
      console.log(`| ${faultLabel} | ${r.keys === "hot" ? "8 hot" : "200"} | ${KIND_LABEL[k]} | ${s.medianMs} ms | ${s.longestMs} ms | ${s.decided} | ${other} |`);
    }
  const out = { date: new Date().toISOString(), windowMs: WINDOW_MS, opTimeoutMs: OP_TIMEOUT_MS, clientsPerKind, everyMs, separate, results };
  if (jsonOut !== "") {
    writeFileSync(jsonOut, JSON.stringify(out, null, 2));
    console.log(`\nJSON: ${jsonOut}`);
  } else {
    console.log(`\nJSON: ${JSON.stringify(out)}`);
  }
}

await main();
process.exit(0);
