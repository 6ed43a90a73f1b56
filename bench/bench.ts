// `npm run bench`: closed-loop benchmark of a PaxosStore cluster, phase by phase.
//
//   npm run build && npm run bench                      # starts nats-server + 3 nodes itself
//   npm run bench -- --servers nats://10.0.0.5:4222 --cluster prod   # drives a running cluster
//   npm run bench -- --phases put-1,put-64 --duration 5 --json out.json
//
// Each phase: `--warmup` s unmeasured, then `--duration` s measured; progress every 2 s.
// Latency is issue -> answer as this process sees it, in an HDR histogram (microseconds).
// Requests are msgpack on `<prefix>.api.<preferred replica>` as the TypeScript client routes
// them, except where a phase says otherwise (the hot-key phases). When the bench started the
// nodes itself it reads their CPU time from /proc/<pid>/stat before and after each phase and
// scrapes each node's /metrics; against an external cluster CPU is "n/a" and metrics are
// scraped only from `--metrics-urls`.
// Compare ratios within one run: the machines this runs on are shared and noisy.

import { execSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { fileURLToPath } from "node:url";
import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import * as hdr from "hdr-histogram-js";
import { CONTENT_TYPE_HEADER, CONTENT_TYPE_MSGPACK, decodeResponse, encodeRequest } from "../src/protocol/codec.js";
import type { ApiRequest } from "../src/protocol/api.js";
import { preferredReplica } from "../src/protocol/placement.js";
import { cpuMs, startLocalCluster, type LocalCluster } from "./localCluster.js";
import { interestingMetrics, parseMetrics, type MetricSamples } from "./metricsText.js";

const REPO = fileURLToPath(new URL("../", import.meta.url));

// ---- options --------------------------------------------------------------------------------

const ALL_PHASES = [
  "put-1", "put-64", "get-1", "get-64", "stale-64",
  "hot-queue", "hot-nodes",
  "ycsb-a-uniform", "ycsb-a-zipf", "ycsb-b-uniform", "ycsb-b-zipf",
] as const;
type PhaseId = (typeof ALL_PHASES)[number];

interface Options {
  servers: string | null;
  cluster: string;
  members: string[];
  phases: PhaseId[];
  durationS: number;
  warmupS: number;
  keys: number;
  keyBytes: number;
  valueBytes: number;
  conc: number;
  hotClients: number;
  hotKeys: number;
  json: string | null;
  metricsUrls: string[];
  natsPort: number;
  metricsPortBase: number;
  nodeEnv: Record<string, string>;
  cpuProfDir: string | null;
  nodeFlags: string[];
}

function usage(): never {
  console.log(`usage: npm run bench -- [options]
  --servers URL         drive a running cluster (default: start nats-server + 3 nodes locally)
  --cluster NAME        cluster name (default bench; dev for \`npm run dev\`)
  --members n1,n2,n3    the cluster's members
  --phases LIST         comma-separated, default all: ${ALL_PHASES.join(",")}
  --duration S          measured seconds per phase (default 10)
  --warmup S            unmeasured seconds before each phase (default 2)
  --keys N              keyspace of the uniform/zipfian phases (default 10000)
  --key-bytes N         key size (default 16)    --value-bytes N   value size (default 100)
  --conc N              in flight for the *-64 and ycsb phases (default 64)
  --hot-clients N       clients of the hot-key phases (default 12)   --hot-keys N (default 8)
  --json FILE           also write the results as JSON
  --metrics-urls LIST   /metrics URLs of an external cluster's nodes (scraped before/after each phase)
  --nats-port N         local cluster's nats-server port (default 14280)
  --metrics-port N      local cluster: node i gets N+i (default 19460)
  --node-env K=V,...    extra PAXOSSTORE_* settings for locally started nodes
  --cpu-prof DIR        local nodes run with node --cpu-prof; profiles land in DIR at the end
  --node-flags "F ..."  extra node (V8) flags for locally started nodes, e.g. "--max-semi-space-size=16"`);
  process.exit(0);
}

function parseOptions(argv: string[]): Options {
  const o: Options = {
    servers: null, cluster: "bench", members: ["n1", "n2", "n3"], phases: [...ALL_PHASES],
    durationS: 10, warmupS: 2, keys: 10_000, keyBytes: 16, valueBytes: 100, conc: 64,
    hotClients: 12, hotKeys: 8, json: null, metricsUrls: [], natsPort: 14280, metricsPortBase: 19460, nodeEnv: {}, cpuProfDir: null, nodeFlags: [],
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = (): string => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${a} needs a value`);
      return x;
    };
    const num = (): number => {
      const n = Number(v());
      if (!Number.isFinite(n) || n < 0) throw new Error(`${a} needs a number`);
      return n;
    };
    switch (a) {
      case "--help": case "-h": usage();
      case "--servers": o.servers = v(); break;
      case "--cluster": o.cluster = v(); break;
      case "--members": o.members = v().split(","); break;
      case "--phases": {
        const list = v().split(",").filter((p) => p !== "");
        for (const p of list) if (!(ALL_PHASES as readonly string[]).includes(p)) throw new Error(`unknown phase ${p} (known: ${ALL_PHASES.join(",")})`);
        o.phases = list as PhaseId[];
        break;
      }
      case "--duration": o.durationS = num(); break;
      case "--warmup": o.warmupS = num(); break;
      case "--keys": o.keys = Math.max(1, Math.floor(num())); break;
      case "--key-bytes": o.keyBytes = Math.max(4, Math.floor(num())); break;
      case "--value-bytes": o.valueBytes = Math.floor(num()); break;
      case "--conc": o.conc = Math.max(1, Math.floor(num())); break;
      case "--hot-clients": o.hotClients = Math.max(1, Math.floor(num())); break;
      case "--hot-keys": o.hotKeys = Math.max(1, Math.floor(num())); break;
      case "--json": o.json = v(); break;
      case "--cpu-prof": o.cpuProfDir = v(); break;
      case "--node-flags": o.nodeFlags = v().split(/\s+/).filter((f) => f !== ""); break;
      case "--metrics-urls": o.metricsUrls = v().split(",").filter((u) => u !== ""); break;
      case "--nats-port": o.natsPort = num(); break;
      case "--metrics-port": o.metricsPortBase = num(); break;
      case "--node-env":
        for (const kv of v().split(",")) {
          const eq = kv.indexOf("=");
          if (eq > 0) o.nodeEnv[kv.slice(0, eq)] = kv.slice(eq + 1);
        }
        break;
      default: throw new Error(`unknown option ${a} (--help lists them)`);
    }
  }
  return o;
}

// ---- workload -------------------------------------------------------------------------------

/** YCSB's (scrambled) zipfian over [0, n): theta 0.99, hot items spread by a hash. */
function zipfian(n: number, theta = 0.99): () => number {
  let zetan = 0;
  for (let i = 1; i <= n; i++) zetan += 1 / Math.pow(i, theta);
  const zeta2 = 1 + 1 / Math.pow(2, theta);
  const alpha = 1 / (1 - theta);
  const eta = (1 - Math.pow(2 / n, 1 - theta)) / (1 - zeta2 / zetan);
  return () => {
    const u = Math.random();
    const uz = u * zetan;
    let r: number;
    if (uz < 1) r = 0;
    else if (uz < zeta2) r = 1;
    else r = Math.floor(n * Math.pow(eta * u - eta + 1, alpha));
    // Scramble (FNV-1a of the rank) so the hot keys are not neighbours.
    let h = 0x811c9dc5;
    for (let x = r, k = 0; k < 4; k++, x >>>= 8) h = Math.imul(h ^ (x & 0xff), 0x01000193);
    return (h >>> 0) % n;
  };
}

function keyName(prefix: string, i: number, bytes: number): string {
  return `${prefix}${String(i).padStart(bytes - prefix.length, "0")}`;
}

interface Op {
  readonly kind: "put" | "get" | "stale" | "txn";
  readonly key: string;
}

interface PhaseSpec {
  readonly id: PhaseId;
  readonly label: string;
  /** Concurrent closed-loop workers. */
  readonly workers: number;
  /** Needs the keyspace written first. */
  readonly preload: boolean;
  /** Picks the next op of worker `w`. */
  next(w: number): Op;
  /** Where worker `w` sends `key`: a subject. */
  subject(w: number, key: string): string;
}

interface PhaseResult {
  id: PhaseId;
  label: string;
  workers: number;
  ops: number;
  writes: number;
  errors: number;
  errorCodes: Record<string, number>;
  seconds: number;
  opsPerSec: number;
  latencyMs: { p50: number; p90: number; p99: number; p999: number; max: number; mean: number };
  cpu: { nodesPct: number; natsPct: number; perWriteMs: number | null; perOpMs: number } | null;
  metrics: Record<string, string>;
}

// ---- the bench ------------------------------------------------------------------------------

class Bench {
  private readonly h = headers();
  private readonly value: Uint8Array;
  private readonly prefix: string;
  /** Last version seen per hot key (a txn compares against it). */
  private readonly hotVersion = new Map<string, number>();
  private readonly written = new Set<string>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly o: Options,
  ) {
    this.h.set(CONTENT_TYPE_HEADER, CONTENT_TYPE_MSGPACK);
    this.value = new Uint8Array(o.valueBytes).map((_, i) => 97 + (i % 26));
    this.prefix = `paxosstore.${o.cluster}`;
  }

  spec(id: PhaseId): PhaseSpec {
    const o = this.o;
    const uniform = (): string => keyName("k", Math.floor(Math.random() * o.keys), o.keyBytes);
    const zipf = zipfian(o.keys);
    const zkey = (): string => keyName("k", zipf(), o.keyBytes);
    const preferred = (_w: number, key: string): string => `${this.prefix}.api.${preferredReplica(key, o.members)}`;
    const simple = (label: string, workers: number, kind: Op["kind"], preload: boolean): PhaseSpec => ({
      id, label, workers, preload, next: () => ({ kind, key: uniform() }), subject: preferred,
    });
    const hotKey = (): string => keyName("hot", Math.floor(Math.random() * o.hotKeys), o.keyBytes);
    const hotOp = (): Op => {
      const r = Math.random();
      return { kind: r < 0.5 ? "get" : r < 0.75 ? "put" : "txn", key: hotKey() };
    };
    const ycsb = (label: string, readShare: number, key: () => string): PhaseSpec => ({
      id, label, workers: o.conc, preload: true, subject: preferred,
      next: () => ({ kind: Math.random() < readShare ? "get" : "put", key: key() }),
    });
    switch (id) {
      case "put-1": return simple("put", 1, "put", false);
      case "put-64": return simple("put", o.conc, "put", false);
      case "get-1": return simple("linearizable get", 1, "get", true);
      case "get-64": return simple("linearizable get", o.conc, "get", true);
      case "stale-64": return simple("stale get", o.conc, "stale", true);
      case "hot-queue":
        return { id, label: `hot keys (${o.hotKeys}) via queue subject`, workers: o.hotClients, preload: false, next: hotOp, subject: () => `${this.prefix}.api` };
      case "hot-nodes":
        return { id, label: `hot keys (${o.hotKeys}) via every node`, workers: o.hotClients, preload: false, next: hotOp, subject: (w) => `${this.prefix}.api.${o.members[w % o.members.length]}` };
      case "ycsb-a-uniform": return ycsb("YCSB A 50/50 uniform", 0.5, uniform);
      case "ycsb-a-zipf": return ycsb("YCSB A 50/50 zipfian", 0.5, zkey);
      case "ycsb-b-uniform": return ycsb("YCSB B 95/5 uniform", 0.95, uniform);
      case "ycsb-b-zipf": return ycsb("YCSB B 95/5 zipfian", 0.95, zkey);
    }
  }

  /** One request; returns an error code or null. */
  async call(subject: string, op: Op): Promise<string | null> {
    let req: ApiRequest;
    let wireOp: "put" | "get" | "txn";
    switch (op.kind) {
      case "put": req = { op: "put", key: op.key, value: this.value }; wireOp = "put"; break;
      case "get": req = { op: "get", key: op.key }; wireOp = "get"; break;
      case "stale": req = { op: "get", key: op.key, consistency: "stale" }; wireOp = "get"; break;
      case "txn":
        req = { op: "txn", group: op.key, compares: [{ key: op.key, version: this.hotVersion.get(op.key) ?? 0 }], success: [{ op: "put", key: op.key, value: this.value }] };
        wireOp = "txn";
        break;
    }
    let data: Uint8Array;
    try {
      data = (await this.nc.request(subject, encodeRequest(req, "msgpack"), { timeout: 10_000, headers: this.h })).data;
    } catch (e) {
      return (e as Error).message.includes("no responders") ? "no_responders" : "client_timeout";
    }
    const r = decodeResponse(data, "msgpack", wireOp);
    if (!r.ok) return r.error.code;
    if (op.kind === "put") this.written.add(op.key);
    if ("version" in r && typeof r.version === "number") {
      const prev = this.hotVersion.get(op.key) ?? 0;
      if (op.key.startsWith("hot") && r.version > prev) this.hotVersion.set(op.key, r.version);
    }
    return null;
  }

  /** Writes every key of the keyspace not written yet (for the read phases). */
  async preload(): Promise<void> {
    const todo: string[] = [];
    for (let i = 0; i < this.o.keys; i++) {
      const k = keyName("k", i, this.o.keyBytes);
      if (!this.written.has(k)) todo.push(k);
    }
    if (todo.length === 0) return;
    process.stdout.write(`  preload: writing ${todo.length} keys ...`);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < todo.length) {
        const key = todo[next++]!;
        await this.call(`${this.prefix}.api.${preferredReplica(key, this.o.members)}`, { kind: "put", key });
      }
    };
    await Promise.all(Array.from({ length: this.o.conc }, worker));
    process.stdout.write(" done\n");
  }

  /** Runs `spec` for warmup + duration; measures only the duration. */
  async run(spec: PhaseSpec, probe: Probe): Promise<PhaseResult> {
    const hist = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });
    const start = performance.now();
    const measureFrom = start + this.o.warmupS * 1000;
    const until = measureFrom + this.o.durationS * 1000;
    let ops = 0, writes = 0, errors = 0;
    const errorCodes: Record<string, number> = {};
    let before: ProbeSample | null = null;
    const takeBefore = async (): Promise<void> => {
      before = await probe.sample();
    };
    let beforeTaken: Promise<void> | null = this.o.warmupS === 0 ? takeBefore() : null;
    await beforeTaken;
    const progress = setInterval(() => {
      const now = performance.now();
      if (now < measureFrom) return console.log(`  ${spec.id}: warming up`);
      const s = (now - measureFrom) / 1000;
      console.log(`  ${spec.id}: ${s.toFixed(0)}/${this.o.durationS} s, ${ops} ops, ${(ops / s).toFixed(0)}/s, ${errors} errors`);
    }, 2_000);
    const worker = async (w: number): Promise<void> => {
      for (;;) {
        const t0 = performance.now();
        if (t0 >= until) return;
        if (t0 >= measureFrom && beforeTaken === null) beforeTaken = takeBefore();
        const op = spec.next(w);
        const err = await this.call(spec.subject(w, op.key), op);
        const t1 = performance.now();
        if (t0 < measureFrom || t1 > until) continue;
        ops++;
        if (op.kind === "put" || op.kind === "txn") writes++;
        if (err !== null) {
          errors++;
          errorCodes[err] = (errorCodes[err] ?? 0) + 1;
        }
        hist.recordValue(Math.max(1, Math.round((t1 - t0) * 1000)));
      }
    };
    await Promise.all(Array.from({ length: spec.workers }, (_, w) => worker(w)));
    clearInterval(progress);
    await beforeTaken;
    const after = await probe.sample();
    const seconds = this.o.durationS;
    const q = (p: number): number => hist.getValueAtPercentile(p) / 1000;
    const b = before as ProbeSample | null;
    let cpu: PhaseResult["cpu"] = null;
    if (b !== null && b.nodesCpuMs !== null && after.nodesCpuMs !== null) {
      const nodesMs = after.nodesCpuMs - b.nodesCpuMs;
      const natsMs = (after.natsCpuMs ?? 0) - (b.natsCpuMs ?? 0);
      // Measured from the first op past warmup to the end of the last call.
      const wallMs = after.at - b.at;
      cpu = {
        nodesPct: (100 * nodesMs) / wallMs,
        natsPct: (100 * natsMs) / wallMs,
        perWriteMs: writes > 0 ? (nodesMs + natsMs) / (writes * (wallMs / (seconds * 1000))) : null,
        perOpMs: ops > 0 ? (nodesMs + natsMs) / (ops * (wallMs / (seconds * 1000))) : 0,
      };
    }
    const metrics = b !== null && b.metrics !== null && after.metrics !== null ? interestingMetrics(b.metrics, after.metrics) : {};
    const result: PhaseResult = {
      id: spec.id, label: spec.label, workers: spec.workers, ops, writes, errors, errorCodes, seconds,
      opsPerSec: ops / seconds,
      latencyMs: { p50: q(50), p90: q(90), p99: q(99), p999: q(99.9), max: hist.maxValue / 1000, mean: hist.mean / 1000 },
      cpu, metrics,
    };
    hist.destroy();
    return result;
  }
}

interface ProbeSample {
  at: number;
  nodesCpuMs: number | null;
  natsCpuMs: number | null;
  metrics: MetricSamples | null;
}

class Probe {
  constructor(
    private readonly pids: { nodes: number[]; nats: number } | null,
    private readonly metricsUrls: string[],
  ) {}

  async sample(): Promise<ProbeSample> {
    const at = performance.now();
    let nodesCpuMs: number | null = null;
    let natsCpuMs: number | null = null;
    if (this.pids !== null) {
      const n = this.pids.nodes.map(cpuMs);
      nodesCpuMs = n.some((x) => x === null) ? null : n.reduce((a, b) => a! + b!, 0)!;
      natsCpuMs = cpuMs(this.pids.nats);
    }
    return { at, nodesCpuMs, natsCpuMs, metrics: await this.scrape() };
  }

  private async scrape(): Promise<MetricSamples | null> {
    if (this.metricsUrls.length === 0) return null;
    try {
      const texts = await Promise.all(this.metricsUrls.map(async (u) => (await fetch(u, { signal: AbortSignal.timeout(3_000) })).text()));
      return parseMetrics(texts);
    } catch {
      return null;
    }
  }
}

// ---- output ---------------------------------------------------------------------------------

function table(results: PhaseResult[]): string {
  const rows = [["phase", "label", "conc", "ops/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "errors", "nodes cpu", "nats cpu", "cpu/op ms", "cpu/write ms"]];
  for (const r of results) {
    rows.push([
      r.id, r.label, String(r.workers), r.opsPerSec.toFixed(0),
      r.latencyMs.p50.toFixed(2), r.latencyMs.p90.toFixed(2), r.latencyMs.p99.toFixed(2), r.latencyMs.p999.toFixed(2),
      String(r.errors),
      r.cpu === null ? "n/a" : `${r.cpu.nodesPct.toFixed(0)}%`,
      r.cpu === null ? "n/a" : `${r.cpu.natsPct.toFixed(0)}%`,
      r.cpu === null ? "n/a" : r.cpu.perOpMs.toFixed(3),
      r.cpu === null ? "n/a" : r.cpu.perWriteMs === null ? "-" : r.cpu.perWriteMs.toFixed(3),
    ]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const line = (r: string[]): string => r.map((x, c) => (c < 2 ? x.padEnd(widths[c]!) : x.padStart(widths[c]!))).join("  ");
  return [line(rows[0]!), widths.map((w) => "-".repeat(w)).join("  "), ...rows.slice(1).map(line)].join("\n");
}

function metricsTable(results: PhaseResult[]): string {
  const withMetrics = results.filter((r) => Object.keys(r.metrics).length > 0);
  if (withMetrics.length === 0) return "(no metrics scraped)";
  const names = [...new Set(withMetrics.flatMap((r) => Object.keys(r.metrics)))];
  const rows = [["phase", ...names]];
  for (const r of withMetrics) rows.push([r.id, ...names.map((n) => r.metrics[n] ?? "")]);
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((x, c) => (c === 0 ? x.padEnd(widths[c]!) : x.padStart(widths[c]!))).join("  ")).join("\n");
}

// ---- main -----------------------------------------------------------------------------------

async function main(): Promise<void> {
  let o: Options;
  try {
    o = parseOptions(process.argv.slice(2));
  } catch (e) {
    console.error(`bench: ${(e as Error).message}`);
    process.exit(2);
  }
  let local: LocalCluster | null = null;
  if (o.servers === null) {
    console.log(`bench: starting nats-server on port ${o.natsPort} and nodes ${o.members.join(",")} (built dist/; run npm run build first)`);
    local = await startLocalCluster({ ...o, nodeFlags: [...o.nodeFlags, ...(o.cpuProfDir === null ? [] : ["--cpu-prof", "--cpu-prof-dir", o.cpuProfDir])] });
  }
  const stopLocal = async (): Promise<void> => {
    const l = local;
    local = null;
    if (l !== null) await l.stop();
  };
  process.once("SIGINT", () => void stopLocal().then(() => process.exit(130)));
  const servers = o.servers ?? local!.url;
  const nc = await connect({ servers, noAsyncTraces: true, maxPingOut: 100 });
  const bench = new Bench(nc, o);
  const probe = new Probe(local?.pids ?? null, local?.metricsUrls ?? o.metricsUrls);
  const results: PhaseResult[] = [];
  const startedAt = new Date();
  try {
    for (const id of o.phases) {
      const spec = bench.spec(id);
      console.log(`phase ${id}: ${spec.label}, ${spec.workers} in flight, ${o.warmupS} s warm-up + ${o.durationS} s`);
      if (spec.preload) await bench.preload();
      const r = await bench.run(spec, probe);
      results.push(r);
      console.log(`  ${id}: ${r.opsPerSec.toFixed(0)} ops/s, p50 ${r.latencyMs.p50.toFixed(2)} ms, p99 ${r.latencyMs.p99.toFixed(2)} ms, errors ${r.errors}${r.errors > 0 ? ` ${JSON.stringify(r.errorCodes)}` : ""}`);
    }
  } finally {
    await nc.close();
    await stopLocal();
  }
  const commit = (() => {
    try {
      return execSync("git rev-parse --short HEAD", { cwd: REPO }).toString().trim();
    } catch {
      return "unknown";
    }
  })();
  const machine = `${cpus().length} x ${cpus()[0]?.model ?? "cpu"}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, node ${process.version}`;
  console.log(`\n# npm run bench ${process.argv.slice(2).join(" ")}`);
  console.log(`# ${startedAt.toISOString()}, commit ${commit}, ${machine}; cluster: ${local !== null || o.servers === null ? "local 3 nodes + nats-server (started by the bench)" : o.servers}`);
  console.log(`# ${o.keyBytes} B keys, ${o.valueBytes} B values, keyspace ${o.keys}; ${o.warmupS} s warm-up + ${o.durationS} s per phase; cpu = % of one core; cpu/op and cpu/write = (nodes + nats-server) CPU ms per op and per write (all of the phase's CPU, reads included, over its writes)`);
  console.log(table(results));
  console.log(`\nserver metrics per phase (all nodes, measured window):`);
  console.log(metricsTable(results));
  if (o.json !== null) {
    writeFileSync(o.json, JSON.stringify({ startedAt: startedAt.toISOString(), commit, machine, options: o, results }, null, 2));
    console.log(`\nJSON: ${o.json}`);
  }
}

await main();
