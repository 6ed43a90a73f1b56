// The testcontainers module (src/testcontainers) as a user meets it: a single node, a 3-node
// cluster serving writes and linearizable reads through the mapped NATS port, connection
// details for the user's own client, and stop() leaving nothing behind.

import { afterAll, beforeAll, expect, it } from "vitest";
import { connect, replicasFor, type PaxosStoreClient } from "../../src/client/index.js";
import { PaxosStoreCluster, type StartedPaxosStoreCluster } from "../../src/testcontainers/index.js";
import { describeWithDocker, docker, ensureImages } from "./docker.js";
import { ask, dumpLogsOnFailure, progress, waitFor } from "./support.js";

const SETUP_MS = 600_000; // may build the images first

describeWithDocker("testcontainers module: a single node", () => {
  let cluster: StartedPaxosStoreCluster | undefined;
  const log = progress("single");
  beforeAll(async () => {
    await ensureImages();
    cluster = await new PaxosStoreCluster().withNodes(1).withClusterName("solo").start();
    log(`started: ${cluster.getNatsUrl()}`);
  }, SETUP_MS);
  afterAll(async () => {
    await cluster?.stop();
  });
  dumpLogsOnFailure(() => cluster);

  it("serves the user's own client through the connection details", async () => {
    const c = cluster!;
    expect(c.nodeIds).toEqual(["n1"]);
    expect(c.getConnectionOptions()).toEqual({ servers: c.getNatsUrl(), cluster: "solo", prefix: "paxosstore.solo", members: ["n1"] });
    expect(c.getNatsUrl()).toMatch(/^nats:\/\/[^:]+:\d+$/);
    const store = await connect(c.getConnectionOptions());
    try {
      expect((await store.put("greeting", "hello")).version).toBe(1);
      expect((await store.get("greeting")).text()).toBe("hello");
      const user = store.group("user:42");
      const t = await user.txn({ success: [{ op: "put", key: "name", value: "Ada" }, { op: "put", key: "lang", value: "en" }] });
      expect(t.succeeded).toBe(true);
      const page = await user.scan();
      expect(page.items.map((e) => [e.key, e.text()])).toEqual([
        ["lang", "en"],
        ["name", "Ada"],
      ]);
      const status = await store.status("n1");
      expect(status).toMatchObject({ node: "n1", cluster: "solo", members: ["n1"] });
    } finally {
      await store.close();
    }
    // The monitoring port is mapped too.
    const varz = (await (await fetch(`${c.getMonitoringUrl()}/varz`)).json()) as { server_name?: string; connections?: number };
    expect(varz.connections).toBeGreaterThanOrEqual(1);
  });

  it("stop() removes the containers, the data volumes and the network", async () => {
    if (!docker.ok) throw new Error("unreachable");
    const c = cluster!;
    const dockerode = docker.client.container.dockerode;
    const containers = [c.nats.getId(), ...c.nodes.map((n) => n.containerId)];
    const volumes = c.nodes.map((n) => n.volume);
    const network = c.network.getId();
    for (const id of containers) expect((await dockerode.getContainer(id).inspect()).State.Running).toBe(true);
    for (const v of volumes) expect((await dockerode.getVolume(v).inspect()).Name).toBe(v);
    await c.stop();
    cluster = undefined;
    const gone = async (p: Promise<unknown>): Promise<number> => p.then(() => 200, (e: { statusCode?: number }) => e.statusCode ?? -1);
    for (const id of containers) expect(await gone(dockerode.getContainer(id).inspect()), `container ${id}`).toBe(404);
    for (const v of volumes) expect(await gone(dockerode.getVolume(v).inspect()), `volume ${v}`).toBe(404);
    expect(await gone(dockerode.getNetwork(network).inspect()), `network ${network}`).toBe(404);
  });
});

describeWithDocker("testcontainers module: a 3-node cluster", () => {
  let cluster: StartedPaxosStoreCluster | undefined;
  let store: PaxosStoreClient;
  const log = progress("3-node");
  beforeAll(async () => {
    await ensureImages();
    const t0 = Date.now();
    cluster = await new PaxosStoreCluster().withClusterName("basic").start();
    log(`3 nodes + nats-server started in ${Date.now() - t0} ms: ${cluster.getNatsUrl()}`);
    store = await cluster.client();
  }, SETUP_MS);
  afterAll(async () => {
    await cluster?.stop();
  });
  dumpLogsOnFailure(() => cluster);

  it("every node sees the others, on one user-defined network", async () => {
    const c = cluster!;
    expect(c.nodeIds).toEqual(["n1", "n2", "n3"]);
    for (const node of c.nodes) {
      expect(node.container.getNetworkNames()).toEqual([c.network.getName()]);
      expect(node.hostname).toBe(node.id);
    }
    // Heartbeats every 2 s: each node soon reports every member as seen.
    await waitFor("every node to see all three members", async () => {
      for (const id of c.nodeIds) {
        const s = await store.status(id);
        if (s.membersSeen.length !== 3) return false;
      }
      return true;
    });
  });

  it("writes and linearizable reads through the mapped NATS port, from every node", async () => {
    const c = cluster!;
    const keys = Array.from({ length: 30 }, (_, i) => `key-${i}`);
    // Writes through the failover client (each to its group's preferred replica).
    for (const [i, key] of keys.entries()) await store.put(key, `v${i}-1`);
    // Overwrite through each node in turn, and read back through every node at once.
    const pinned = await Promise.all(c.nodeIds.map((node) => c.client({ node })));
    for (const [i, key] of keys.entries()) {
      const writer = pinned[i % 3]!;
      const w = await writer.put(key, `v${i}-2`);
      const reads = await Promise.all(pinned.map((p) => p.get(key)));
      for (const [j, r] of reads.entries()) {
        expect(r.text(), `${key} through ${c.nodeIds[j]}`).toBe(`v${i}-2`);
        expect(r.version).toBe(w.version);
      }
    }
    // A group: its keys change together, whichever node takes the txn.
    const g = pinned[1]!.group("cart:7");
    await g.txn({ success: [{ op: "put", key: "a", value: "1" }, { op: "put", key: "b", value: "2" }] });
    const scans = await Promise.all(pinned.map((p) => p.group("cart:7").scan()));
    for (const s of scans) expect(s.items.map((e) => `${e.key}=${e.text()}`)).toEqual(["a=1", "b=2"]);
    // The raw wire API works through the mapped port too (any NATS client can use it).
    const raw = await ask(store, replicasFor("key-0", c.nodeIds)[0]!, { op: "get", key: "key-0" });
    expect(raw).toMatchObject({ kind: "ok", body: { ok: true, found: true, value: "v0-2" } });
  });
});
