// Quick closed-loop load against a running cluster (e.g. `npm run dev`): puts then
// linearizable gets on single-key groups, sent to each key's preferred replica, msgpack.
//   npx tsx bench/quick.ts [--servers nats://127.0.0.1:4222] [--cluster dev] [--conc 64] [--seconds 10]
// Prints ops/s and latency percentiles. For comparisons with etcd and NATS KV on the same
// machine, use bench/peer-bench (ratios from one run; this machine is shared and noisy).
import { connect, headers } from "@nats-io/transport-node";
import { CONTENT_TYPE_HEADER, CONTENT_TYPE_MSGPACK, encodeRequest, decodeResponse } from "../src/protocol/codec.js";
import { preferredReplica } from "../src/protocol/placement.js";

const arg = (name: string, def: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : def;
};
const servers = arg("servers", "nats://127.0.0.1:4222");
const cluster = arg("cluster", "dev");
const conc = Number(arg("conc", "64"));
const seconds = Number(arg("seconds", "10"));
const keyspace = Number(arg("keys", "10000"));
const members = arg("members", "n1,n2,n3").split(",");

const nc = await connect({ servers, noAsyncTraces: true });
const h = headers();
h.set(CONTENT_TYPE_HEADER, CONTENT_TYPE_MSGPACK);
const value = new Uint8Array(100).fill(7);

async function phase(op: "put" | "get"): Promise<void> {
  const lat: number[] = [];
  let errors = 0;
  const until = performance.now() + seconds * 1000;
  const worker = async (): Promise<void> => {
    while (performance.now() < until) {
      const key = `k${String(Math.floor(Math.random() * keyspace)).padStart(15, "0")}`;
      const node = preferredReplica(key, members)!;
      const body = op === "put" ? encodeRequest({ op, key, value }, "msgpack") : encodeRequest({ op, key }, "msgpack");
      const t0 = performance.now();
      try {
        const m = await nc.request(`paxosstore.${cluster}.api.${node}`, body, { timeout: 5000, headers: h });
        const r = decodeResponse(m.data, "msgpack", op);
        if (!r.ok) errors++;
      } catch {
        errors++;
      }
      lat.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: conc }, worker));
  lat.sort((a, b) => a - b);
  const p = (q: number): string => lat[Math.min(lat.length - 1, Math.floor(q * lat.length))]!.toFixed(2);
  console.log(`${op} c=${conc}: ${(lat.length / seconds).toFixed(0)} ops/s, p50 ${p(0.5)} ms, p99 ${p(0.99)} ms, errors ${errors}`);
}
await phase("put");
await phase("get");
await nc.close();
