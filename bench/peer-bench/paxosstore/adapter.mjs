// peer-bench adapter: PaxosStore through its TypeScript client (this repository's dist/).
// put = a linearizable write (fsynced on a majority), get = a linearizable read (ReadProbe
// to a majority, no lease), both sent to the key's preferred replica, msgpack encoding.
import { fileURLToPath } from "node:url";

const REPO = fileURLToPath(new URL("../../../", import.meta.url));

export default async function create() {
  const { connect } = await import(`${REPO}dist/client/index.js`);
  const store = await connect({ servers: "nats://127.0.0.1:14260", cluster: "bench", members: ["n1", "n2", "n3"], timeoutMs: 10_000 });
  return {
    info: { note: "3 nodes, LevelDB fsync on, leaseless multi-master Paxos per key, linearizable gets" },
    put: async (k, v) => { await store.put(k, v); },
    get: async (k) => { const r = await store.get(k); return r.found ? r.value : null; },
    close: async () => { await store.close(); },
  };
}
