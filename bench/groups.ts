// Memory under many key-groups: writes N distinct key-groups (one 100 B put each, to the
// group's preferred replica, `--conc` in flight) into a fresh local 3-node cluster and reports
// each node's RSS over time, then compares the write rate with a run of `--baseline` groups.
//
//   npm run build && npx tsx bench/groups.ts                       # 10,000 then 1,000,000 groups
//   npx tsx bench/groups.ts --groups 200000 --max-active-groups 20000 --max-seconds 300
//
// The cap is the node setting maxActiveGroups (PAXOSSTORE_MAX_ACTIVE_GROUPS); `--max-seconds`
// stops a run early (the report says how many groups it wrote).

import { writeFileSync } from "node:fs";
import { connect, headers } from "@nats-io/transport-node";
import { CONTENT_TYPE_HEADER, CONTENT_TYPE_MSGPACK, decodeResponse, encodeRequest } from "../src/protocol/codec.js";
import { preferredReplica } from "../src/protocol/placement.js";
import { rssBytes, startLocalCluster } from "./localCluster.js";

const argv = process.argv.slice(2);
const arg = (name: string, def: number): number => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : def;
};
const groups = arg("groups", 1_000_000);
const baseline = arg("baseline", 10_000);
const conc = arg("conc", 64);
const maxSeconds = arg("max-seconds", 1_200);
const maxActive = arg("max-active-groups", 50_000);
const sampleS = arg("sample-s", 10);
// Idle passivation also bounds memory, by time; a long one leaves the cap alone to do it.
const passivateAfterMs = arg("passivate-after-ms", 60_000);
const jsonAt = argv.indexOf("--json");
const jsonFile = jsonAt >= 0 ? argv[jsonAt + 1]! : null;
const members = ["n1", "n2", "n3"];

interface Sample { t: number; written: number; ratePerS: number; rssMB: number[]; heapMB: number[]; groupsActive: number[] }
interface RunResult { groups: number; written: number; seconds: number; ratePerS: number; errors: number; maxRssMB: number[]; samples: Sample[] }

async function run(n: number, label: string): Promise<RunResult> {
  console.log(`${label}: ${n} groups, ${conc} in flight, maxActiveGroups ${maxActive}, passivateAfterMs ${passivateAfterMs}`);
  const cluster = await startLocalCluster({
    cluster: "groups", members, natsPort: 14290, metricsPortBase: 19480,
    nodeEnv: { PAXOSSTORE_MAX_ACTIVE_GROUPS: String(maxActive), PAXOSSTORE_PASSIVATE_AFTER_MS: String(passivateAfterMs) },
  });
  const nc = await connect({ servers: cluster.url, noAsyncTraces: true, maxPingOut: 100 });
  const h = headers();
  h.set(CONTENT_TYPE_HEADER, CONTENT_TYPE_MSGPACK);
  const value = new Uint8Array(100).fill(120);
  const samples: Sample[] = [];
  const maxRss = members.map(() => 0);
  let written = 0;
  let errors = 0;
  let next = 0;
  const t0 = performance.now();
  const until = t0 + maxSeconds * 1000;
  let lastT = t0;
  let lastWritten = 0;
  const scrape = async (url: string, name: string): Promise<number> => {
    try {
      const text = await (await fetch(url, { signal: AbortSignal.timeout(3_000) })).text();
      const line = text.split("\n").find((l) => l.startsWith(name + "{") || l.startsWith(name + " "));
      return line === undefined ? NaN : Number(line.slice(line.lastIndexOf(" ") + 1));
    } catch {
      return NaN;
    }
  };
  const sample = async (): Promise<void> => {
    const now = performance.now();
    const rss = cluster.pids.nodes.map((p) => (rssBytes(p) ?? 0) / 2 ** 20);
    const heapMB = await Promise.all(cluster.metricsUrls.map(async (u) => (await scrape(u, "paxosstore_nodejs_heap_size_used_bytes")) / 2 ** 20));
    const groupsActive = await Promise.all(cluster.metricsUrls.map((u) => scrape(u, "paxosstore_groups_active")));
    rss.forEach((r, i) => (maxRss[i] = Math.max(maxRss[i]!, r)));
    const s: Sample = { t: (now - t0) / 1000, written, ratePerS: ((written - lastWritten) * 1000) / Math.max(1, now - lastT), rssMB: rss, heapMB, groupsActive };
    samples.push(s);
    lastT = now;
    lastWritten = written;
    console.log(`  ${s.t.toFixed(0).padStart(5)} s  ${String(written).padStart(8)} groups  ${s.ratePerS.toFixed(0).padStart(6)}/s  RSS MB ${rss.map((r) => r.toFixed(0)).join(" / ")}  heap MB ${heapMB.map((r) => r.toFixed(0)).join(" / ")}  groups in memory ${groupsActive.join(" / ")}  errors ${errors}`);
  };
  const timer = setInterval(() => void sample(), sampleS * 1000);
  const worker = async (): Promise<void> => {
    while (next < n && performance.now() < until) {
      const key = `g${String(next++).padStart(15, "0")}`;
      try {
        const m = await nc.request(`paxosstore.groups.api.${preferredReplica(key, members)}`, encodeRequest({ op: "put", key, value }, "msgpack"), { timeout: 30_000, headers: h });
        if (decodeResponse(m.data, "msgpack", "put").ok) written++;
        else errors++;
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: conc }, worker));
  clearInterval(timer);
  await sample();
  const seconds = (performance.now() - t0) / 1000;
  await nc.close();
  await cluster.stop();
  const r: RunResult = { groups: n, written, seconds, ratePerS: written / seconds, errors, maxRssMB: maxRss, samples };
  console.log(`${label}: wrote ${written} groups in ${seconds.toFixed(0)} s = ${r.ratePerS.toFixed(0)}/s, max RSS MB ${maxRss.map((x) => x.toFixed(0)).join(" / ")}, errors ${errors}\n`);
  return r;
}

const base = baseline > 0 ? await run(baseline, "baseline") : null;
const main = await run(groups, "main");
console.log(`# bench/groups.ts ${argv.join(" ")}  (${new Date().toISOString()})`);
console.log(`maxActiveGroups ${maxActive}; passivateAfterMs ${passivateAfterMs}; ${conc} in flight; 100 B values`);
if (base !== null) console.log(`baseline ${base.written} groups: ${base.ratePerS.toFixed(0)}/s, max RSS MB ${base.maxRssMB.map((x) => x.toFixed(0)).join(" / ")}`);
console.log(`main     ${main.written} groups: ${main.ratePerS.toFixed(0)}/s, max RSS MB ${main.maxRssMB.map((x) => x.toFixed(0)).join(" / ")}${main.written < groups ? ` (stopped at --max-seconds ${maxSeconds})` : ""}`);
if (base !== null) console.log(`rate ratio main/baseline: ${(main.ratePerS / base.ratePerS).toFixed(2)}`);
if (jsonFile !== null) writeFileSync(jsonFile, JSON.stringify({ maxActive, conc, baseline: base, main }, null, 2));
