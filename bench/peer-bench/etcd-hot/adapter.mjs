// peer-bench adapter: etcd on the hot-key workload of issue 11: 8 keys, 12 clients,
// 50% linearizable get / 25% put / 25% one-compare txn (compare the key's mod revision as
// last seen, then put). etcd3 spreads calls over the three members, as our hot-nodes phase
// spreads them over our three nodes. A txn whose compare fails is an answer, not an error.
import { createRequire } from "node:module";
import { join } from "node:path";

const require = createRequire(join(process.cwd(), "package.json")); // peer-bench's node_modules
const { Etcd3 } = await import(require.resolve("etcd3"));
const { noop } = await import(require.resolve("cockatiel"));
const HOT_KEYS = Array.from({ length: 8 }, (_, i) => `hot${String(i).padStart(13, "0")}`);

export default async function create({ env }) {
  const client = new Etcd3({ hosts: env.PB_ETCD_ENDPOINTS.split(","), faultHandling: { global: noop, host: () => noop } });
  const modRev = new Map();
  const hot = async (_k, v) => {
    const key = HOT_KEYS[Math.floor(Math.random() * HOT_KEYS.length)];
    const r = Math.random();
    const value = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    if (r < 0.5) {
      const res = await client.get(key).exec();
      if (res.kvs.length > 0) modRev.set(key, res.kvs[0].mod_revision);
    } else if (r < 0.75) {
      const res = await client.put(key).value(value).exec();
      modRev.set(key, res.header.revision);
    } else {
      await client.if(key, "Mod", "==", modRev.get(key) ?? "0").then(client.put(key).value(value)).commit();
    }
  };
  return {
    info: { note: "etcd 3.4 on the hot-key workload (8 keys, 50% linearizable get / 25% put / 25% txn), etcd3 client spreads calls over all members" },
    phases: () => [{ id: "hot", label: "hot keys (8), 50/25/25 get/put/txn", op: "putHot", conc: 12 }],
    put: async (k, v) => { await client.put(k).value(Buffer.from(v.buffer, v.byteOffset, v.byteLength)).exec(); },
    get: (k) => client.get(k).buffer(),
    putHot: hot, // named put*: peer-bench checks the reply length of every other op
    close: async () => client.close(),
  };
}
