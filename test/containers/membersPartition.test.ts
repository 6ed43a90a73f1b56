// Elastic membership (issue 13): a change begun while a member is PARTITIONED, through the
// testcontainers module. (The change while a member is down is test/integration/membersReplace.test.ts.)
//
// 3 nodes under a steady write load; addNode() a 4th; partition(["n3"]) cuts n3's Paxos frames
// to and from the others (n3 stays connected to NATS, answers clients and `status`); then
// `members add n4`. The majority side (n1, n2, with n4) moves every group it can, and the writes
// through it keep being acknowledged, but the change must not end while n3 is cut off: n3 is a
// member, its copies of the moved groups are behind their reconfiguration, and it reports them
// left to move, so `advance` waits for n3. Healed, n3 catches up and the change ends (`stable`).
// Afterwards: no acknowledged write lost (read back linearizably, through the failover client
// and through each replica directly), every node's `status.membership` says the same epoch and
// `stable`, and every group the writers used (and the membership log's own group) is on exactly
// its replicas under the new members, the other copies dropped.

import { writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { replicasFor, type PaxosStoreClient } from "../../src/client/index.js";
import { PaxosStoreCluster, type MembersAdminResult, type StartedPaxosStoreCluster } from "../../src/testcontainers/index.js";
import { describeWithDocker, ensureImages } from "./docker.js";
import { ask, describeAnswer, dumpLogsOnFailure, progress, verifyLedgers, waitFor, WriteLoad } from "./support.js";

const WRITERS = 5; // five single-key groups, plus the membership log
const THREE = ["n1", "n2", "n3"];
const FOUR = ["n1", "n2", "n3", "n4"];
const MEMBERS_GROUP = "__members";

interface GroupInfo {
  readonly role: string;
  readonly members: { readonly epoch: number; readonly replicas: readonly string[] };
  readonly chosen: number;
}

describeWithDocker("a membership change while a member is partitioned (testcontainers module)", () => {
  let cluster: StartedPaxosStoreCluster | undefined;
  let store: PaxosStoreClient;
  const log = progress("members-partition");
  /** Each node's warnings and errors (mover errors, crashes), for a failure message. */
  const trouble = new Map<string, string[]>();
  /** Every node's log lines, written to a file when the test fails. */
  const everything: string[] = [];
  beforeAll(async () => {
    await ensureImages();
    const t0 = Date.now();
    cluster = await new PaxosStoreCluster()
      .withClusterName("mpart")
      .withLogConsumer((id, line) => {
        if (line.includes('"event":"nats_error"')) return; // (not the partition's denied publishes)
        if (everything.length < 50_000) everything.push(`${id} ${line}`);
        if (!/"level":(40|50|60)/.test(line)) return;
        const lines = trouble.get(id) ?? [];
        lines.push(line.slice(0, 600));
        if (lines.length > 50) lines.shift();
        trouble.set(id, lines);
      })
      .start();
    store = await cluster.client({ timeoutMs: 10_000 });
    log(`cluster started in ${Date.now() - t0} ms: ${cluster.getNatsUrl()}`);
  }, 600_000);
  afterAll(async () => {
    await cluster?.stop();
  }, 120_000);
  dumpLogsOnFailure(() => cluster);
  afterEach((ctx) => {
    if (ctx.task.result?.state !== "fail") return;
    const file = path.join(os.tmpdir(), `paxosstore-members-partition-${Date.now()}.log`);
    writeFileSync(file, everything.join("\n"));
    console.error(`every node's log lines: ${file}`);
  });

  /** The peer question `<prefix>.peer.<node>.group`: the node's copy of a group (null: none), as the mover asks it. */
  async function groupInfo(node: string, group: string): Promise<GroupInfo | null> {
    const c = cluster!;
    const m = await store.connection.request(`${c.prefix}.peer.${node}.group`, new TextEncoder().encode(JSON.stringify({ cluster: c.cluster, from: "n1", group })), { timeout: 5_000 });
    const r = JSON.parse(new TextDecoder().decode(m.data)) as { ok: boolean; info: GroupInfo | null; error?: string };
    if (!r.ok) throw new Error(`${node}: ${r.error}`);
    return r.info;
  }

  function troubleReport(): string {
    return [...trouble].map(([id, lines]) => `--- ${id}: last warnings/errors ---\n${lines.slice(-10).join("\n")}`).join("\n");
  }

  it("add n4 while n3 is cut off: the change waits for n3, writes go on; healed, it ends; nothing lost, every group on its new replicas", { timeout: 600_000 }, async () => {
    const c = cluster!;
    const load = new WriteLoad(store, "mpart", WRITERS, 20);
    const groups = load.ledgers.map((l) => l.key);
    // The test needs groups that move (n4 among their new replicas): n3's copies of them are
    // then behind their reconfiguration, and n3 has something left to do when healed.
    const moving = [...groups, MEMBERS_GROUP].filter((g) => replicasFor(g, FOUR).includes("n4"));
    log(`groups placed on n4 under ${FOUR.join(",")}: ${moving.join(", ")}`);
    expect(moving.length, "no group moves to n4: pick another key prefix").toBeGreaterThan(0);

    load.start();
    const phases: string[] = [];
    const onProgress = (r: MembersAdminResult): void => {
      const step = `${r.view.phase}${r.waitingFor === null ? "" : ` (${r.waitingFor})`}`;
      if (phases.at(-1) !== step) phases.push(step);
    };
    try {
      await waitFor("the first writes", async () => load.acked >= 30, 30_000);

      const n4 = await c.addNode();
      expect(n4.id).toBe("n4");
      expect(c.memberIds).toEqual(THREE);

      // n3 cut off from its peers (n1, n2 and n4 still talk); it is still reachable by clients.
      await c.partition(["n3"]);
      const tPartition = Date.now();
      log(`partitioned: [n3] | [n1 n2 n4]`);
      const cut = await ask(store, "n3", { op: "get", key: groups[0]! });
      log(`n3, linearizable get while cut off: ${describeAnswer(cut)}`);
      expect(cut, "n3 cannot reach a majority").toMatchObject({ kind: "error", code: expect.stringMatching(/^(unavailable|timeout)$/) });

      // Begin `members add n4`, followed only for a while: it cannot end while n3 is cut off.
      await expect(c.members("add", "n4", undefined, { timeoutMs: 20_000, onProgress })).rejects.toThrow(/not stable within 20000 ms: epoch 1 /);
      log(`add n4 begun, not stable after 20 s: ${phases.join(" -> ")}`);

      // Keep advancing: the majority moves what it can, then the change waits for n3 alone
      // (every other node reports nothing left), and stays there while writes go on.
      let since = 0; // when the current run of "waiting for n3 alone" answers began
      let streak = 0;
      let ackedAtBlock = 0;
      const wrong: string[] = [];
      let last: MembersAdminResult | null = null;
      await waitFor(
        "the change to wait for n3 alone while writes go on",
        async () => {
          let r: MembersAdminResult;
          try {
            r = await store.membersAdmin("advance");
          } catch (e) {
            log(`advance: ${(e as Error).message}`); // a node cut off may answer the admin op with an error: ask again
            return null;
          }
          last = r;
          onProgress(r);
          if (r.view.epoch !== 1 || (r.view.phase !== "migrating" && r.view.phase !== "sealing")) wrong.push(`${r.view.epoch} ${r.view.phase} (${r.waitingFor})`);
          const othersDone = r.nodes.every((n) => n.node === "n3" || (n.membership !== null && n.membership.left === 0));
          if (r.waitingFor !== null && /\bn3\b/.test(r.waitingFor) && othersDone) {
            if (streak === 0) {
              since = Date.now();
              ackedAtBlock = load.acked;
            }
            streak++;
          } else {
            streak = 0;
          }
          // Held there for 10 s, with the writers' keys acknowledged meanwhile, each of them.
          return streak >= 6 && Date.now() - since >= 10_000 && load.acked >= ackedAtBlock + 50 && load.stalledBetween(since).length === 0;
        },
        180_000,
        500,
      ).catch((e: unknown) => {
        throw new Error(`${(e as Error).message}; phases ${phases.join(" -> ")}; last ${JSON.stringify(last)}\n${troubleReport()}`);
      });
      expect(wrong, "the change ended (or went past sealing) while n3 was cut off").toEqual([]);
      const blocked = last! as MembersAdminResult;
      const tHeal = Date.now();
      log(
        `waiting for n3 (${blocked.view.phase}: ${blocked.waitingFor}) for ${tHeal - since} ms; ` +
          `${load.ackedBetween(tPartition, tHeal)} writes acknowledged since the partition, ${load.ackedBetween(since, tHeal)} while blocked on n3; ` +
          `reports: ${blocked.nodes.map((n) => `${n.node}: left ${n.membership?.left ?? "?"}`).join(", ")}`,
      );
      expect(load.stalledBetween(tPartition, tHeal), "writers with no acknowledged write while n3 was cut off").toEqual([]);
      expect(blocked.view).toMatchObject({ epoch: 1, members: FOUR, previous: THREE });
      expect(blocked.nodes.find((n) => n.node === "n3")?.membership?.left ?? 0, "n3 reports groups left to move").toBeGreaterThan(0);

      // Healed: n3 catches up with the groups' reconfigurations and the change ends.
      await c.heal();
      log("healed");
      const done = await c.advanceMembers({ timeoutMs: 180_000, onProgress }).catch((e: unknown) => {
        throw new Error(`${(e as Error).message}; phases ${phases.join(" -> ")}\n${troubleReport()}`);
      });
      log(`stable ${Date.now() - tHeal} ms after the heal; ${phases.join(" -> ")}`);
      expect(done.view).toMatchObject({ epoch: 1, members: FOUR, previous: [], phase: "stable" });
      expect(c.memberIds).toEqual(FOUR);
      const before = load.acked;
      await waitFor("writes acknowledged after the change", async () => load.acked >= before + 20, 60_000);
    } finally {
      await load.stop();
    }
    log(`load: ${load.summary()}`);
    for (const f of load.failures.slice(0, 10)) log(`  failed: ${f.key} #${f.seq} ${f.code}: ${f.message}`);

    // Nothing acknowledged lost: read back linearizably through the client...
    await verifyLedgers(store, load.ledgers);
    // ... and through each replica under the new members, directly (no failover, no relay).
    for (const l of load.ledgers) {
      for (const node of replicasFor(l.key, FOUR)) {
        const r = await waitFor(`${l.key} through ${node}`, async () => {
          const a = await ask(store, node, { op: "get", key: l.key }, 5_000);
          if (a.kind !== "ok") throw new Error(describeAnswer(a));
          return a.body;
        }, 30_000, 500);
        const v = r.found === true ? Number(r.value) : 0;
        expect(v, `${l.key} through ${node}: read ${v}, acknowledged up to ${l.acked}`).toBeGreaterThanOrEqual(l.acked);
        expect(v, `${l.key} through ${node}: read ${v}, only ${l.attempted} sent`).toBeLessThanOrEqual(l.attempted);
      }
    }

    // Every node runs the same epoch, stable, as a member.
    await waitFor(
      "every node to report epoch 1 stable",
      async () => {
        const seen: string[] = [];
        for (const id of FOUR) {
          const m = (await store.status(id, { timeoutMs: 5_000 })).membership;
          if (m === undefined || m.epoch !== 1 || m.phase !== "stable" || m.removed) throw new Error(`${id}: ${JSON.stringify(m)}`);
          expect(m.members).toEqual(FOUR);
          seen.push(`${id}: v${m.version} held ${m.held} removedHeld ${m.removedHeld}`);
        }
        log(`status: ${seen.join("; ")}`);
        return true;
      },
      60_000,
      500,
    );

    // Every group the writers used, and the membership log's, on exactly its replicas under the
    // new members (voters at epoch 1); every other node dropped its copy.
    await waitFor(
      "every group on exactly its new replicas, the other copies dropped",
      async () => {
        const problems: string[] = [];
        for (const group of [...groups, MEMBERS_GROUP]) {
          const want = replicasFor(group, FOUR);
          for (const node of FOUR) {
            const info = await groupInfo(node, group);
            if (want.includes(node)) {
              if (info === null || info.role !== "voter" || [...info.members.replicas].sort().join() !== [...want].sort().join()) problems.push(`${group}@${node}: ${JSON.stringify(info)}`);
            } else if (info !== null) problems.push(`${group}@${node} still holds a ${info.role} copy`);
          }
        }
        if (problems.length > 0) throw new Error(problems.join("; "));
        return true;
      },
      60_000,
      1_000,
    ).catch((e: unknown) => {
      throw new Error(`${(e as Error).message}\n${troubleReport()}`);
    });
  });
});
