// peer-bench adapter: PaxosStore through its TypeScript client (this repository's dist/).
// put = a linearizable write (fsynced on a majority), get = a linearizable read (ReadProbe
// to a majority, no lease), both sent to the key's preferred replica, msgpack encoding.
// Two more phases, the hot-key workload of issue 11 (8 keys, 12 clients, 50% linearizable get /
// 25% put / 25% one-compare txn), raw NATS requests: through the queue subject, and through
// every node's own subject (calls spread round-robin over n1, n2, n3). Compare with the
// etcd-hot store (bench/peer-bench/etcd-hot) in the same run.
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const REPO = fileURLToPath(new URL("../../../", import.meta.url));
const require = createRequire(`${REPO}package.json`);
const HOT_KEYS = Array.from({ length: 8 }, (_, i) => `hot${String(i).padStart(13, "0")}`);
const MEMBERS = ["n1", "n2", "n3"];

export default async function create({ cfg }) {
  const { connect } = await import(`${REPO}dist/client/index.js`);
  const nats = await import(require.resolve("@nats-io/transport-node"));
  const codec = await import(`${REPO}dist/protocol/codec.js`);
  const servers = "nats://127.0.0.1:14260";
  const store = await connect({ servers, cluster: "bench", members: MEMBERS, timeoutMs: 10_000 });
  const nc = await nats.connect({ servers, noAsyncTraces: true });
  const h = nats.headers();
  h.set(codec.CONTENT_TYPE_HEADER, codec.CONTENT_TYPE_MSGPACK);
  const version = new Map();
  let rr = 0;
  const hotVia = (subjectOf) => async (_k, value) => {
    const key = HOT_KEYS[Math.floor(Math.random() * HOT_KEYS.length)];
    const r = Math.random();
    const [req, op] =
      r < 0.5 ? [{ op: "get", key }, "get"]
      : r < 0.75 ? [{ op: "put", key, value }, "put"]
      : [{ op: "txn", group: key, compares: [{ key, version: version.get(key) ?? 0 }], success: [{ op: "put", key, value }] }, "txn"];
    const m = await nc.request(subjectOf(), codec.encodeRequest(req, "msgpack"), { timeout: 10_000, headers: h });
    const res = codec.decodeResponse(m.data, "msgpack", op);
    if (!res.ok) throw new Error(res.error.code);
    if (typeof res.version === "number" && res.version > (version.get(key) ?? 0)) version.set(key, res.version);
  };
  return {
    info: { note: "3 nodes, LevelDB fsync on, leaseless multi-master Paxos per key, linearizable gets; hot phases: raw NATS msgpack" },
    phases: (c) => [
      { id: "put1", label: "put", op: "put", conc: 1 },
      { id: "putN", label: "put", op: "put", conc: c.conc },
      { id: "getN", label: "get", op: "get", conc: c.conc, preload: "put" },
      { id: "hotq", label: "hot keys (8) via queue subject", op: "putHotQueue", conc: 12 },
      { id: "hotn", label: "hot keys (8) via every node", op: "putHotNodes", conc: 12 },
    ],
    put: async (k, v) => { await store.put(k, v); },
    get: async (k) => { const r = await store.get(k); return r.found ? r.value : null; },
    // named put*: peer-bench checks the reply length of every op not named put*
    putHotQueue: hotVia(() => "paxosstore.bench.api"),
    putHotNodes: hotVia(() => `paxosstore.bench.api.${MEMBERS[rr++ % MEMBERS.length]}`),
    close: async () => { await nc.close(); await store.close(); },
  };
}
