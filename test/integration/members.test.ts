// Elastic membership (issue 13) against a real nats-server and node processes with LevelDB:
// grow a running cluster from 3 to 5 nodes under write load and shrink it back, with the admin
// op (`paxosstore members add|remove`, advanced step by step as `--wait` does). After each
// change: no acknowledged write is lost (every one read back, linearizably, with its value and
// version), every group lives on exactly its new replicas (the others dropped their copies), and
// the nodes all run the same epoch.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type TestCluster } from "../helpers/cluster.js";
import { connect, type PaxosStoreClient } from "../../src/client/client.js";
import { admin, change as changeIn, cli as cliIn, expectNoLoss as expectNoLossIn, expectPlacement as expectPlacementIn, stuckReport } from "./membersSupport.js";
import { Ledger, ok, sleep, startWriter, waitFor, write, type Writer } from "./support.js";

const GROUPS = Array.from({ length: 24 }, (_, i) => `mg${i}`);
/** Groups born while the members change (one write each, one after another): births in every phase. */
const BORN: string[] = [];

let c: TestCluster;

const change = (body: Record<string, unknown>) => changeIn(c, body);
const expectNoLoss = (ledgers: readonly Ledger[], members: readonly string[]) => expectNoLossIn(c, ledgers, [...GROUPS, ...BORN], members);
const expectPlacement = (members: readonly string[], nodes: readonly string[]) => expectPlacementIn(c, [...GROUPS, ...BORN], members, nodes);
/** The CLI; when it fails, what the movers last said. */
async function cli(args: string[]): Promise<{ code: number | null; out: string }> {
  try {
    return await cliIn(c, args);
  } catch (e) {
    throw new Error(`${(e as Error).message}\n${await stuckReport(c)}`);
  }
}

describe("membership: grow 3 -> 5 under load, shrink back", () => {
  beforeAll(async () => {
    c = await startCluster({ nodes: 3, spares: 2, cluster: "mem", env: { PAXOSSTORE_MOVE_RATE: "200" } });
  }, 60_000);
  afterAll(async () => {
    await c?.close();
  }, 60_000);

  it("grows to 5 and back to 3, losing nothing; old copies are dropped", async () => {
    const ledger = new Ledger("mem");
    const start = (names: string[]): Writer[] => names.map((n) => startWriter(c, ledger, n, GROUPS, { route: [undefined], timeoutMs: 3_000, giveUpMs: 30_000, pauseMs: 5 }));
    // A TypeScript client too: it routes by the members and epoch it learns from status, and
    // follows not_replica answers, retrying with the same request id.
    const client: PaxosStoreClient = await connect({ servers: c.url, cluster: c.cluster, encoding: "json", timeoutMs: 20_000 });
    let clientWrites = true;
    const clientDone = (async () => {
      let n = 0;
      while (clientWrites) {
        const w = ledger.next(GROUPS[n++ % GROUPS.length]!, "wc");
        w.attempts++;
        try {
          const r = await client.putIn(w.group, w.key, w.value, { requestId: w.requestId });
          w.status = "acked";
          w.version = r.version;
        } catch (e) {
          w.status = "maybe";
          w.trail.push(`client: ${(e as Error).message}`);
        }
        await sleep(10);
      }
    })();
    let writers = start(["w1", "w2"]);
    // And a writer that creates a new group with each write.
    let births = true;
    const birthsDone = (async () => {
      for (let i = 0; births; i++) {
        const group = `born${i}`;
        BORN.push(group);
        await write(c, ledger.next(group, "wb"), { route: [undefined], timeoutMs: 3_000, giveUpMs: 30_000 });
        await sleep(100);
      }
    })();
    await waitFor("writes acknowledged", async () => ledger.acked().length >= 60, 30_000);

    const shown = await admin(c, { action: "show" });
    expect((shown.view as { epoch: number; members: string[]; phase: string })).toMatchObject({ epoch: 0, members: ["n1", "n2", "n3"], phase: "stable" });

    // Grow: start the new nodes (--join), then add them one change at a time, under load.
    await c.start("n4");
    await c.start("n5");
    let r = await change({ action: "add", node: "n4" });
    expect((r.view as { epoch: number }).epoch).toBe(1);
    r = await change({ action: "add", node: "n5" });
    expect(r.view).toMatchObject({ epoch: 2, members: ["n1", "n2", "n3", "n4", "n5"], phase: "stable" });
    await waitFor("load continued through the change", async () => ledger.acked().length >= 120, 30_000);
    for (const w of writers) w.stop();
    births = false;
    await Promise.all([...writers.map((w) => w.done), birthsDone]);
    const five = ["n1", "n2", "n3", "n4", "n5"];
    expect(ledger.counts().pending).toBeLessThanOrEqual(1); // the client's write in flight
    await expectNoLoss([ledger], five);
    await expectPlacement(five, five);
    // Every node runs epoch 2, stable, and its status says so.
    for (const node of five) expect((await ok(c, { op: "status" }, node)).membership).toMatchObject({ epoch: 2, phase: "stable" });

    // Shrink back to 3 under load.
    writers = start(["w3", "w4"]);
    births = true;
    const birthsDone2 = (async () => {
      for (let i = 0; births; i++) {
        const group = `reborn${i}`;
        BORN.push(group);
        await write(c, ledger.next(group, "wb2"), { route: [undefined], timeoutMs: 3_000, giveUpMs: 30_000 });
        await sleep(100);
      }
    })();
    const before = ledger.acked().length;
    await waitFor("writes acknowledged", async () => ledger.acked().length >= before + 40, 30_000);
    // This one as a user runs it: the CLI follows the change to its end and prints progress.
    const removed = await cli(["members", "remove", "n5", "--wait"]);
    expect(removed.code, removed.out).toBe(0);
    expect(removed.out).toContain("epoch 3 migrating: members n1,n2,n3,n4 (from n1,n2,n3,n4,n5)");
    expect(removed.out).toContain("epoch 3 stable: members n1,n2,n3,n4;");
    r = await change({ action: "remove", node: "n4" });
    expect(r.view).toMatchObject({ epoch: 4, members: ["n1", "n2", "n3"], phase: "stable" });
    await waitFor("load continued through the change", async () => ledger.acked().length >= before + 80, 30_000);
    for (const w of writers) w.stop();
    births = false;
    await Promise.all([...writers.map((w) => w.done), birthsDone2]);
    clientWrites = false;
    await clientDone;
    expect(ledger.counts().pending).toBe(0);
    const three = ["n1", "n2", "n3"];
    await expectNoLoss([ledger], three);
    await expectPlacement(three, five);
    // The removed nodes hold nothing and say they may be stopped.
    await waitFor("n4 and n5 report removed", async () => {
      for (const node of ["n4", "n5"]) if ((await ok(c, { op: "status" }, node)).membership?.toString() === undefined) return false;
      const m4 = (await ok(c, { op: "status" }, "n4")).membership as { removed: boolean };
      const m5 = (await ok(c, { op: "status" }, "n5")).membership as { removed: boolean };
      return m4.removed && m5.removed;
    }, 30_000, 500);
    const shown2 = await cli(["members"]);
    expect(shown2.code, shown2.out).toBe(0);
    expect(shown2.out).toContain("epoch 4 stable: members n1,n2,n3;");
    const clientAcked = ledger.writes.filter((w) => w.key.startsWith("wc-") && w.status === "acked").length;
    expect(clientAcked).toBeGreaterThan(50);
    expect(client.members).toEqual(three);
    await client.close();
    const n4 = await cli(["status", "--node", "n4"]);
    expect(n4.out).toContain("epoch 4 stable REMOVED");
    console.log(`members: ${BORN.length} groups born during the run; ${JSON.stringify(ledger.counts())} writes (acked / outcome unknown); moved by node: ${JSON.stringify(r.nodes)}`);
    await sleep(0);
  }, 420_000);
});
