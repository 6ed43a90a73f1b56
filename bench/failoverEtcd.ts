// bench/failover.ts's measurement on etcd 3.4, for the README's comparison: a 3-member etcd
// cluster on loopback (its default durability: WAL fsync per Raft batch), 12 clients each on
// one member (4 per member), 1 s per-operation timeout, 50% linearizable get / 25% put / 25% txn
// with one compare (mod revision = the last one this client saw), hot keys (8) or many (200);
// every 5 s kill -9 of the leader or of a follower (alternately), restarted 1-2 s later. Per
// kill, the longest stretch within 3 s in which no client got a decided answer.
//
//   apt-get install -y etcd-server etcd-client
//   npx tsx bench/failoverEtcd.ts [--keys hot,many] [--faults-per-run 10] [--json out.json]
//
// Clients speak etcd's JSON gateway (HTTP/1.1, `/v3/kv/*`) with Node's fetch: no client
// library to install; a request pinned to a member fails at once when that member is down
// (connection refused), as a NATS request gets "no responders".

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, longestStretch, median, sleep, worstStall } from "./stretch.js";

const arg = (name: string, def: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : def;
};
const keySets = arg("keys", "hot,many").split(",") as ("hot" | "many")[];
const faultsPerRun = Number(arg("faults-per-run", "10"));
const everyMs = Number(arg("every", "5000"));
const clients = Number(arg("clients", "12"));
const jsonOut = arg("json", "");
const OP_TIMEOUT_MS = 1_000;
const NAMES = ["e1", "e2", "e3"];

class EtcdCluster {
  readonly procs = new Map<string, ChildProcess | null>();
  readonly clientUrl = new Map<string, string>();
  private readonly peerUrl = new Map<string, string>();
  private readonly dir = mkdtempSync(join(tmpdir(), "etcd-failover-"));

  async start(): Promise<void> {
    for (const n of NAMES) {
      this.clientUrl.set(n, `http://127.0.0.1:${await freePort()}`);
      this.peerUrl.set(n, `http://127.0.0.1:${await freePort()}`);
    }
    for (const n of NAMES) this.startMember(n);
    for (let i = 0; i < 300; i++) {
      if ((await this.leader()) !== null && (await post(this.clientUrl.get("e1")!, "/v3/kv/put", { key: b64("ready"), value: b64("1") })).ok) return;
      await sleep(200);
    }
    throw new Error("etcd did not become healthy");
  }

  startMember(n: string): void {
    const cluster = NAMES.map((m) => `${m}=${this.peerUrl.get(m)}`).join(",");
    const p = spawn(
      "etcd",
      [
        "--name", n, "--data-dir", join(this.dir, n),
        "--listen-client-urls", this.clientUrl.get(n)!, "--advertise-client-urls", this.clientUrl.get(n)!,
        "--listen-peer-urls", this.peerUrl.get(n)!, "--initial-advertise-peer-urls", this.peerUrl.get(n)!,
        "--initial-cluster", cluster, "--initial-cluster-state", "new", "--initial-cluster-token", "failover",
        "--logger", "zap", "--log-level", "error",
      ],
      { stdio: "ignore" },
    );
    this.procs.set(n, p);
  }

  async kill(n: string): Promise<void> {
    const p = this.procs.get(n);
    if (!p) return;
    this.procs.set(n, null);
    const exited = new Promise((r) => p.once("exit", r));
    p.kill("SIGKILL");
    await exited;
  }

  /** The leader's name, as the live members report it. */
  async leader(): Promise<string | null> {
    for (const n of NAMES) {
      if (!this.procs.get(n)) continue;
      const r = await post(this.clientUrl.get(n)!, "/v3/maintenance/status", {});
      if (!r.ok) continue;
      const body = r.body as { header?: { member_id?: string }; leader?: string };
      if (body.leader === undefined || body.leader === "0") continue;
      if (body.header?.member_id === body.leader) return n;
      for (const m of NAMES) {
        if (m === n || !this.procs.get(m)) continue;
        const s = await post(this.clientUrl.get(m)!, "/v3/maintenance/status", {});
        if (s.ok && (s.body as { header?: { member_id?: string } }).header?.member_id === body.leader) return m;
      }
    }
    return null;
  }

  async close(): Promise<void> {
    for (const n of NAMES) await this.kill(n);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function b64(s: string): string {
  return Buffer.from(s).toString("base64");
}

async function post(base: string, path: string, body: unknown): Promise<{ ok: boolean; body?: unknown; what?: string }> {
  try {
    const r = await fetch(base + path, { method: "POST", body: JSON.stringify(body), signal: AbortSignal.timeout(OP_TIMEOUT_MS) });
    const json = (await r.json()) as Record<string, unknown>;
    if (r.status !== 200 || json.error !== undefined) return { ok: false, what: `error:${String(json.code ?? r.status)}` };
    return { ok: true, body: json };
  } catch (e) {
    const err = e as Error & { cause?: { code?: string } };
    return { ok: false, what: err.name === "TimeoutError" ? "timeout" : (err.cause?.code ?? err.name) };
  }
}

async function client(base: () => string, keys: readonly string[], decided: number[], other: Map<string, number>, running: () => boolean): Promise<void> {
  const revisions = new Map<string, string>();
  let n = 0;
  while (running()) {
    const r = Math.random();
    const key = keys[Math.floor(Math.random() * keys.length)]!;
    let res: Awaited<ReturnType<typeof post>>;
    if (r < 0.5) {
      res = await post(base(), "/v3/kv/range", { key: b64(key) });
      const kv = (res.body as { kvs?: { mod_revision?: string }[] } | undefined)?.kvs?.[0];
      if (res.ok) revisions.set(key, kv?.mod_revision ?? "0");
    } else if (r < 0.75) {
      res = await post(base(), "/v3/kv/put", { key: b64(key), value: b64(`v${++n}`) });
      const rev = (res.body as { header?: { revision?: string } } | undefined)?.header?.revision;
      if (res.ok && rev !== undefined) revisions.set(key, rev);
    } else {
      const rev = revisions.get(key) ?? "0";
      res = await post(base(), "/v3/kv/txn", {
        compare: [{ key: b64(key), target: "MOD", result: "EQUAL", mod_revision: rev }],
        success: [{ request_put: { key: b64(key), value: b64(`t${++n}`) } }],
        failure: [{ request_range: { key: b64(key) } }],
      });
      // Decided either way; a failed compare tells the current revision.
      const body = res.body as { succeeded?: boolean; header?: { revision?: string }; responses?: { response_range?: { kvs?: { mod_revision?: string }[] } }[] } | undefined;
      if (res.ok && body?.succeeded === true && body.header?.revision) revisions.set(key, body.header.revision);
      else if (res.ok) revisions.set(key, body?.responses?.[0]?.response_range?.kvs?.[0]?.mod_revision ?? "0");
    }
    if (res.ok) decided.push(performance.now());
    else {
      other.set(res.what!, (other.get(res.what!) ?? 0) + 1);
      if (res.what !== "timeout") await sleep(10);
    }
  }
}

interface KillRecord {
  readonly member: string;
  readonly role: "leader" | "follower";
  readonly stretchMs: number;
  readonly stretchAtMs: number;
  readonly backAfterMs: number;
  readonly benchStallMs: number;
}

async function run(keysName: "hot" | "many"): Promise<{ keys: string; kills: KillRecord[]; decided: number; other: Record<string, number> }> {
  const keys = Array.from({ length: keysName === "hot" ? 8 : 200 }, (_, i) => `${keysName}:${i}`);
  const cluster = new EtcdCluster();
  await cluster.start();
  const decided: number[] = [];
  const other = new Map<string, number>();
  let on = true;
  const loops: Promise<void>[] = [];
  for (let i = 0; i < clients; i++) {
    const member = NAMES[i % NAMES.length]!;
    loops.push(client(() => cluster.clientUrl.get(member)!, keys, decided, other, () => on));
  }
  console.log(`\n== etcd, kill -9 / ${keysName} keys: ${clients} clients (each on one member), ${faultsPerRun} kills, one every ${everyMs} ms, leader and follower alternately`);
  await sleep(2_000);
  const kills: KillRecord[] = [];
  for (let f = 0; f < faultsPerRun; f++) {
    const leader = await cluster.leader();
    const role: "leader" | "follower" = f % 2 === 0 ? "leader" : "follower";
    const followers = NAMES.filter((n) => n !== leader);
    const member = role === "leader" && leader !== null ? leader : followers[Math.floor(Math.random() * followers.length)]!;
    const at = performance.now();
    await cluster.kill(member);
    await sleep(1_000 + Math.random() * 1_000);
    const backAfterMs = Math.round(performance.now() - at);
    cluster.startMember(member);
    await sleep(Math.max(0, at + everyMs - performance.now()));
    const s = longestStretch(decided, at);
    kills.push({ member, role, stretchMs: Math.round(s.ms), stretchAtMs: Math.round(s.atMs), backAfterMs, benchStallMs: worstStall(at) });
    console.log(`  kill ${f + 1}/${faultsPerRun} ${member} (${role}, back at +${backAfterMs} ms): longest stretch without a decided answer ${s.ms.toFixed(0)} ms (from +${s.atMs.toFixed(0)}); bench's own worst stall ${worstStall(at)} ms`);
  }
  on = false;
  await Promise.race([Promise.all(loops), sleep(3_000)]);
  await cluster.close();
  return { keys: keysName, kills, decided: decided.length, other: Object.fromEntries(other) };
}

const results = [];
for (const k of keySets) results.push(await run(k));
console.log("\n| etcd 3.4, kill -9 of | keys | median stretch | longest | kills |");
console.log("|---|---|---|---|---|");
for (const r of results)
  for (const role of ["leader", "follower"] as const) {
    const xs = r.kills.filter((k) => k.role === role).map((k) => k.stretchMs);
    if (xs.length > 0) console.log(`| the ${role} | ${r.keys === "hot" ? "8 hot" : "200"} | ${Math.round(median(xs))} ms | ${Math.max(...xs)} ms | ${xs.length} |`);
  }
const out = { date: new Date().toISOString(), store: "etcd", clients, opTimeoutMs: OP_TIMEOUT_MS, everyMs, results };
if (jsonOut !== "") writeFileSync(jsonOut, JSON.stringify(out, null, 2));
else console.log(`\nJSON: ${JSON.stringify(out)}`);
process.exit(0);
