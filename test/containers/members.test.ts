// Elastic membership (issue 13) through the testcontainers module: a 3-node cluster in
// containers grown to 5 with addNode() + members("add"), then shrunk back to 3 with
// members("remove"), under a steady write load through the module's client. Afterwards nothing
// acknowledged is lost (read back linearizably against the ledger), every node's `status` says
// the same epoch and `stable`, and the removed nodes say `removed` (so they may be stopped, and
// the cluster serves without them).

import { afterAll, beforeAll, expect, it } from "vitest";
import { replicasFor, type PaxosStoreClient } from "../../src/client/index.js";
import { PaxosStoreCluster, type MembersAdminResult, type StartedPaxosStoreCluster } from "../../src/testcontainers/index.js";
import { describeWithDocker, docker, ensureImages } from "./docker.js";
import { dumpLogsOnFailure, progress, verifyLedgers, waitFor, WriteLoad } from "./support.js";

const WRITERS = 6; // six single-key groups, plus the membership log
const THREE = ["n1", "n2", "n3"];
const FIVE = ["n1", "n2", "n3", "n4", "n5"];

describeWithDocker("a cluster in containers grown 3 -> 5 and shrunk back to 3 (testcontainers module)", () => {
  let cluster: StartedPaxosStoreCluster | undefined;
  let store: PaxosStoreClient;
  const log = progress("members");
  beforeAll(async () => {
    await ensureImages();
    const t0 = Date.now();
    cluster = await new PaxosStoreCluster().withClusterName("members").start();
    store = await cluster.client({ timeoutMs: 10_000 });
    log(`cluster started in ${Date.now() - t0} ms: ${cluster.getNatsUrl()}`);
  }, 600_000);
  afterAll(async () => {
    await cluster?.stop();
  }, 120_000);
  dumpLogsOnFailure(() => cluster);

  it("addNode() and members() refuse bad input, saying why", { timeout: 60_000 }, async () => {
    const c = cluster!;
    await expect(c.addNode("n1")).rejects.toThrow(/node id "n1" is taken/);
    await expect(c.addNode("no spaces")).rejects.toThrow(/not a node id/);
    await expect(c.addNode("nats")).rejects.toThrow(/nats-server's name/);
    await expect(c.members("add", "n9")).rejects.toThrow(/no node "n9": start it first with addNode\("n9"\)/);
    await expect(c.members("replace", "n1")).rejects.toThrow(/needs the replacement/);
    await expect(c.members("remove", "n1", "n2")).rejects.toThrow(/only replace takes a second node/);
    await expect(c.members("add", "n1")).rejects.toThrow(/n1 is a member already/);
    await expect(c.members("remove", "n7")).rejects.toThrow(/n7 is not a member/);
    // Nothing changed.
    const shown = await c.membership();
    expect(shown.view).toMatchObject({ epoch: 0, members: THREE, previous: [], phase: "stable" });
    expect(shown.nodes.map((n) => n.node).sort()).toEqual(THREE);
    expect(c.nodeIds).toEqual(THREE);
  });

  it("grows to 5 and shrinks back to 3 under a steady write load, losing nothing", { timeout: 600_000 }, async () => {
    const c = cluster!;
    const load = new WriteLoad(store, "members", WRITERS, 20).start();
    try {
      await waitFor("the first writes", async () => load.acked >= 30, 30_000);

      // Two more containers, started to join (PAXOSSTORE_JOIN=1, the founding members): not members yet.
      let t0 = Date.now();
      const n4 = await c.addNode();
      const n5 = await c.addNode();
      log(`n4 and n5 started in ${Date.now() - t0} ms`);
      expect([n4.id, n5.id]).toEqual(["n4", "n5"]);
      expect(c.nodeIds).toEqual(FIVE);
      expect(c.memberIds).toEqual(THREE);
      expect(n4.container.getNetworkNames()).toEqual([c.network.getName()]);
      expect((await store.status("n4")).membership).toMatchObject({ epoch: 0, members: THREE, phase: "stable" });

      const changes: [action: "add" | "remove", node: string, epoch: number, members: string[]][] = [
        ["add", "n4", 1, ["n1", "n2", "n3", "n4"]],
        ["add", "n5", 2, FIVE],
        ["remove", "n5", 3, ["n1", "n2", "n3", "n4"]],
        ["remove", "n4", 4, THREE],
      ];
      for (const [action, node, epoch, members] of changes) {
        t0 = Date.now();
        const phases: string[] = [];
        const onProgress = (r: MembersAdminResult): void => {
          const step = `${r.view.phase}${r.waitingFor === null ? "" : ` (${r.waitingFor})`}`;
          if (phases.at(-1) !== step) phases.push(step);
        };
        const r = await c.members(action, node, undefined, { timeoutMs: 180_000, onProgress });
        const ms = Date.now() - t0;
        log(`${action} ${node}: epoch ${r.view.epoch} stable in ${ms} ms, ${load.ackedBetween(t0)} writes acknowledged meanwhile; ${phases.join(" -> ")}`);
        expect(r.view).toMatchObject({ epoch, members, previous: [], phase: "stable" });
        expect(c.memberIds).toEqual(members);
        expect(c.getConnectionOptions().members).toEqual(members);
        // Under load: the writers kept being acknowledged while the change ran.
        const before = load.acked;
        await waitFor(`writes acknowledged after ${action} ${node}`, async () => load.acked >= before + 20, 60_000);
        expect(load.ackedBetween(t0), `writes acknowledged during and right after ${action} ${node}`).toBeGreaterThan(0);
        if (epoch === 2) {
          // At 5 members the new nodes hold their share: the writers' groups placed on them moved there.
          for (const id of ["n4", "n5"]) {
            const placed = load.ledgers.filter((l) => replicasFor(l.key, FIVE).includes(id)).length;
            // (A joiner counts a group once it installed the data, which may come just after `stable`.)
            const held = await waitFor(`${id} to hold the ${placed} writers' groups placed there`, async () => {
              const n = (await store.status(id)).membership?.held ?? 0;
              return n >= placed ? n : null;
            }, 30_000, 200);
            log(`${id} holds ${held} groups (${placed} of the writers' placed there)`);
          }
        }
      }
    } finally {
      await load.stop();
    }
    log(`load: ${load.summary()}`);
    for (const f of load.failures.slice(0, 10)) log(`  failed: ${f.key} #${f.seq} ${f.code}: ${f.message}`);

    // Nothing acknowledged lost: each writer's key read back linearizably against its ledger.
    await verifyLedgers(store, load.ledgers);

    // Every node, members and removed alike, runs epoch 4, stable; n4 and n5 hold nothing and say removed.
    await waitFor(
      "every node to report epoch 4 stable, n4 and n5 removed",
      async () => {
        for (const id of FIVE) {
          const m = (await store.status(id, { timeoutMs: 5_000 })).membership;
          const removed = !THREE.includes(id);
          if (m === undefined || m.epoch !== 4 || m.phase !== "stable" || m.removed !== removed) throw new Error(`${id}: ${JSON.stringify(m)}`);
          expect(m.members).toEqual(THREE);
        }
        return true;
      },
      60_000,
      500,
    );
    // The module's client followed the changes (it learns the members from status).
    await waitFor("the client to route by the 3 members", async () => {
      await store.status();
      return [...(store.members ?? [])].sort().join() === THREE.join();
    });

    // Removed nodes may be stopped: the cluster serves and everything is still there without them.
    await Promise.all([c.node("n4").stop(), c.node("n5").stop()]);
    await verifyLedgers(store, load.ledgers);
    const w = await store.put("after-shrink", "ok");
    expect((await store.get("after-shrink")).version).toBe(w.version);
  });

  it("stop() removes the added nodes' containers and volumes with the others", { timeout: 120_000 }, async () => {
    if (!docker.ok) throw new Error("unreachable");
    const c = cluster!;
    const dockerode = docker.client.container.dockerode;
    expect(c.nodeIds).toEqual(FIVE);
    const containers = c.nodes.map((n) => n.containerId);
    const volumes = c.nodes.map((n) => n.volume);
    for (const v of volumes) expect((await dockerode.getVolume(v).inspect()).Name).toBe(v);
    await c.stop();
    cluster = undefined;
    await expect(c.addNode()).rejects.toThrow(/stopping or stopped/);
    const gone = async (p: Promise<unknown>): Promise<number> => p.then(() => 200, (e: { statusCode?: number }) => e.statusCode ?? -1);
    for (const id of containers) expect(await gone(dockerode.getContainer(id).inspect()), `container ${id}`).toBe(404);
    for (const v of volumes) expect(await gone(dockerode.getVolume(v).inspect()), `volume ${v}`).toBe(404);
  });
});
