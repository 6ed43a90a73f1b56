// Elastic membership (issue 13), the harder cases, against a real nats-server and node processes
// with LevelDB: replacing a node whose data directory is gone (`paxosstore members replace`),
// and a change begun while a member is down. After each: no acknowledged write lost (read back
// linearizably through every replica), every group on exactly its new replicas, the copies of
// nodes that left a group dropped.

import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type TestCluster } from "../helpers/cluster.js";
import { admin, advanceToStable, change, expectNoLoss, expectPlacement } from "./membersSupport.js";
import { Ledger, ok, startWriter, waitFor, type Writer } from "./support.js";

const GROUPS = Array.from({ length: 16 }, (_, i) => `rg${i}`);

let c: TestCluster;

describe("membership: replace a node that lost its disk; change while a member is down", () => {
  beforeAll(async () => {
    c = await startCluster({ nodes: 3, spares: 2, cluster: "memr", env: { PAXOSSTORE_MOVE_RATE: "200" } });
  }, 60_000);
  afterAll(async () => {
    await c?.close();
  }, 60_000);

  it("replaces n2 (data directory deleted) by n4, then adds n5 while n3 is down", async () => {
    const ledger = new Ledger("memr");
    const start = (names: string[]): Writer[] => names.map((n) => startWriter(c, ledger, n, GROUPS, { route: [undefined], timeoutMs: 3_000, giveUpMs: 60_000, pauseMs: 5 }));
    let writers = start(["w1", "w2"]);
    await waitFor("writes acknowledged", async () => ledger.acked().length >= 60, 30_000);

    // n2's machine dies with its disk: the process is gone and so is its data directory.
    await c.kill9("n2");
    rmSync(c.nodes.get("n2")!.dataDir, { recursive: true, force: true });
    let before = ledger.acked().length;
    await waitFor("writes go on with n2 gone", async () => ledger.acked().length >= before + 20, 30_000);

    // A new machine, n4, empty, takes n2's place: the old configuration (n1, n3: a majority of
    // it) decides each group's hand-over, and n4 is caught up from them before it votes.
    await c.start("n4");
    const r = await change(c, { action: "replace", node: "n2", with: "n4" });
    expect(r.view).toMatchObject({ epoch: 1, members: ["n1", "n4", "n3"], phase: "stable" });
    before = ledger.acked().length;
    await waitFor("writes go on after the replace", async () => ledger.acked().length >= before + 20, 30_000);
    for (const w of writers) w.stop();
    await Promise.all(writers.map((w) => w.done));
    expect(ledger.counts().pending).toBe(0);
    const three = ["n1", "n3", "n4"];
    await expectNoLoss(c, [ledger], GROUPS, three);
    await expectPlacement(c, GROUPS, three, three);
    expect((await ok(c, { op: "status" }, "n4")).membership).toMatchObject({ epoch: 1, phase: "stable", removed: false });

    // A change while a member is down: n3 is killed, then n5 is added. Groups move meanwhile
    // (each old configuration keeps a majority), but the change does not end before n3 is back
    // and has swept its groups: it may still hold groups to move or copies to drop.
    writers = start(["w3", "w4"]);
    await c.kill9("n3");
    await c.start("n5");
    const first = await admin(c, { action: "add", node: "n5" });
    expect(first.ok, JSON.stringify(first)).toBe(true);
    expect(first.view).toMatchObject({ epoch: 2, members: ["n1", "n4", "n3", "n5"], phase: "migrating" });
    const waiting = await waitFor(
      "the change to wait for n3",
      async () => {
        const a = await admin(c, { action: "advance" });
        return typeof a.waitingFor === "string" && a.waitingFor.includes("n3") ? a : null;
      },
      30_000,
      500,
    );
    expect((waiting.view as { phase: string }).phase).toBe("migrating");
    before = ledger.acked().length;
    await waitFor("writes go on while n3 is down", async () => ledger.acked().length >= before + 20, 30_000);
    await c.start("n3");
    const done = await advanceToStable(c);
    expect(done.view).toMatchObject({ epoch: 2, members: ["n1", "n4", "n3", "n5"], phase: "stable" });
    for (const w of writers) w.stop();
    await Promise.all(writers.map((w) => w.done));
    expect(ledger.counts().pending).toBe(0);
    const four = ["n1", "n3", "n4", "n5"];
    await expectNoLoss(c, [ledger], GROUPS, four);
    await expectPlacement(c, GROUPS, four, four);
    for (const node of four) expect((await ok(c, { op: "status" }, node)).membership).toMatchObject({ epoch: 2, phase: "stable" });
    console.log(`members replace/down: ${JSON.stringify(ledger.counts())} writes (acked / outcome unknown)`);
  }, 420_000);
});
