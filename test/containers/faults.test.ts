// Faults on a real 3-node cluster in containers (a nats-server and three node containers on one
// user-defined network), driven through the mapped NATS port with the failover client:
// - pause (docker pause) of one node: writes continue; unpaused, it catches up;
// - a peer partition (the node stays connected to NATS but its Paxos frames to and from its
//   peers are dropped, see src/testcontainers/natsConfig.ts): the majority serves, the isolated
//   node answers `unavailable` (or `timeout` for a write whose Accept it sent), healed it
//   catches up;
// - a network disconnect of one node container (it loses NATS entirely): the majority serves,
//   the node is unreachable; reconnected, it catches up and the replicas converge.
// Every test checks its writers' ledger: nothing acknowledged is lost.

import { afterAll, beforeAll, expect, it } from "vitest";
import { preferredReplica, type PaxosStoreClient } from "../../src/client/index.js";
import { PaxosStoreCluster, type StartedPaxosStoreCluster } from "../../src/testcontainers/index.js";
import { describeWithDocker, ensureImages } from "./docker.js";
import { ask, describeAnswer, dumpLogsOnFailure, expectConverged, progress, sleep, verifyLedgers, waitFor, WriteLoad } from "./support.js";

const WRITERS = 6;

describeWithDocker("a 3-node cluster in containers, under faults", () => {
  let cluster: StartedPaxosStoreCluster | undefined;
  let store: PaxosStoreClient;
  const log = progress("faults");
  beforeAll(async () => {
    await ensureImages();
    const t0 = Date.now();
    cluster = await new PaxosStoreCluster().withClusterName("faults").start();
    store = await cluster.client();
    log(`cluster started in ${Date.now() - t0} ms: ${cluster.getNatsUrl()}`);
  }, 600_000);
  afterAll(async () => {
    await cluster?.stop();
  });
  dumpLogsOnFailure(() => cluster);

  /** The node that is the preferred replica of the first writer's key: the fault hits a hot path. */
  function victimOf(load: WriteLoad): string {
    return preferredReplica(load.ledgers[0]!.key, cluster!.nodeIds) ?? "n1";
  }

  it("pause one node: writes continue; unpaused, it catches up", { timeout: 120_000 }, async () => {
    const c = cluster!;
    const load = new WriteLoad(store, "pause", WRITERS);
    const victim = victimOf(load);
    load.start();
    await sleep(1_000);
    const t0 = Date.now();
    await c.node(victim).pause();
    log(`paused ${victim}`);
    await sleep(6_000);
    const t1 = Date.now();
    const duringPause = load.ackedBetween(t0, t1);
    await c.node(victim).unpause();
    log(`unpaused ${victim}; ${duringPause} writes acknowledged while it was paused`);
    await sleep(1_000);
    await load.stop();
    log(load.summary());

    // Writes continued on every key, those whose preferred replica was paused included.
    expect(load.stalledBetween(t0, t1), "writers with no acknowledged write during the pause").toEqual([]);
    expect(duringPause).toBeGreaterThan(WRITERS * 3);
    // The client fails over within each call's deadline: a pause costs latency, not errors.
    expect(load.failures, load.summary()).toEqual([]);
    await verifyLedgers(store, load.ledgers);

    // The unpaused node catches up: after a linearizable read through it, its stale read is the latest.
    const viaVictim = await c.client({ node: victim, timeoutMs: 10_000 });
    let behind = 0;
    for (const l of load.ledgers) {
      const latest = await store.get(l.key);
      const before = await viaVictim.get(l.key, { consistency: "stale" });
      if (!before.found || before.version !== latest.version) behind++;
      const lin = await viaVictim.get(l.key);
      expect([lin.text(), lin.version], `${l.key}: linearizable read through ${victim}`).toEqual([latest.text(), latest.version]);
      const after = await viaVictim.get(l.key, { consistency: "stale" });
      expect([after.text(), after.version], `${l.key}: stale read on ${victim} after a linearizable one`).toEqual([latest.text(), latest.version]);
    }
    log(`${victim}: ${behind}/${load.ledgers.length} keys were behind on its stale reads right after the pause`);
    await viaVictim.close();
  });

  it("partition one node from its peers: the majority serves, the isolated node answers unavailable; healed, it catches up", { timeout: 120_000 }, async () => {
    const c = cluster!;
    const load = new WriteLoad(store, "part", WRITERS);
    const isolated = victimOf(load);
    const peer = c.nodeIds.find((n) => n !== isolated)!;
    const viaIsolated = await c.client({ node: isolated, timeoutMs: 2_000 });
    const viaPeer = await c.client({ node: peer });
    // "owned": last written through the isolated node, which so owns the fast round (skips
    // Prepare) of the group's next instance; "other": last written through a peer.
    const owned = await viaIsolated.put("part-owned", "before");
    await viaPeer.put("part-other", "before");

    await c.partition([isolated]);
    log(`partitioned: [${isolated}] | [${c.nodeIds.filter((n) => n !== isolated).join(" ")}]`);
    load.start();
    const t0 = Date.now();

    // What the isolated node itself answers (raw wire API, no client failover in between).
    // Sent without a request id (the node makes a fresh one): never left the node, so
    // `unavailable`, certainly not applied. With the client's own id the node cannot know that
    // no earlier attempt elsewhere was applied: `timeout` (docs/API.md, request ids).
    const write = await ask(store, isolated, { op: "put", key: "part-other", value: "lost" });
    log(`isolated ${isolated}, put (needs Prepare): ${describeAnswer(write)}`);
    expect(write, "a fresh write that never left the node is `unavailable`: certainly not applied").toMatchObject({ kind: "error", code: "unavailable" });
    const withId = await ask(store, isolated, { op: "put", key: "part-other", value: "lost", requestId: "part-other-1" });
    expect(withId, "the same with a client's request id: the outcome is unknown to the node").toMatchObject({ kind: "error", code: "timeout" });
    const fast = await ask(store, isolated, { op: "put", key: "part-owned", value: "maybe", requestId: "part-owned-1" });
    log(`isolated ${isolated}, put (fast round, Accept sent): ${describeAnswer(fast)}`);
    expect(fast, "a write whose Accept the node sent has an unknown outcome: `timeout`").toMatchObject({ kind: "error", code: "timeout" });
    const read = await ask(store, isolated, { op: "get", key: "part-other" });
    log(`isolated ${isolated}, linearizable get: ${describeAnswer(read)}`);
    expect(read).toMatchObject({ kind: "error", code: "unavailable" });
    const stale = await ask(store, isolated, { op: "get", key: "part-other", consistency: "stale" });
    expect(stale, "a stale read is still served, from the node's own replica").toMatchObject({ kind: "ok", body: { found: true, value: "before" } });
    // Through the client pinned to it: typed errors. (The client retries the node until its
    // deadline; its last, shortened attempt may get no answer in time, hence `timeout` too.)
    await expect(viaIsolated.get("part-other")).rejects.toMatchObject({ code: expect.stringMatching(/^(unavailable|timeout)$/) });
    await expect(viaIsolated.put("part-other", "lost-too")).rejects.toMatchObject({ code: expect.stringMatching(/^(unavailable|timeout)$/) });

    // The majority side keeps serving, through the failover client.
    const majorityWrite = await store.put("part-other", "majority");
    await sleep(Math.max(0, 5_000 - (Date.now() - t0)));
    const t1 = Date.now();
    await c.heal();
    log(`healed after ${t1 - t0} ms`);
    await sleep(1_000);
    await load.stop();
    log(load.summary());
    expect(load.stalledBetween(t0, t1), "writers with no acknowledged write during the partition").toEqual([]);
    // Writers whose preferred replica is the isolated node get its `timeout`/`unavailable` and
    // fail over within the call's deadline.
    expect(load.failures, load.summary()).toEqual([]);
    await verifyLedgers(store, load.ledgers);

    // The write with an unknown outcome, retried with its request id: applied at most once.
    const retried = await store.put("part-owned", "maybe", { requestId: "part-owned-1" });
    const final = await store.get("part-owned");
    expect([final.text(), final.version]).toEqual(["maybe", retried.version]);
    expect(final.version).toBeGreaterThan(owned.version);
    const other = await store.get("part-other");
    expect([other.text(), other.version], "the isolated node's `unavailable` write was not applied").toEqual(["majority", majorityWrite.version]);

    // Healed: the isolated node catches up, and every replica holds the same data.
    await expectConverged(c, [...load.ledgers.map((l) => l.key), "part-owned", "part-other"]);
    await viaIsolated.close();
    await viaPeer.close();
  });

  it("disconnect one node container from the network: the majority serves; reconnected, it catches up", { timeout: 150_000 }, async () => {
    const c = cluster!;
    const load = new WriteLoad(store, "net", WRITERS);
    const victim = victimOf(load);
    load.start();
    await sleep(1_000);
    const t0 = Date.now();
    await c.node(victim).disconnect();
    log(`disconnected ${victim} from ${c.network.getName()}`);
    try {
      // It lost NATS: requests addressed to it reach nobody who answers.
      const a = await ask(store, victim, { op: "get", key: load.ledgers[0]!.key }, 1_000);
      log(`request to ${victim} while disconnected: ${describeAnswer(a)}`);
      expect(["noAnswer", "noResponders"]).toContain(a.kind);
      await sleep(Math.max(0, 6_000 - (Date.now() - t0)));
    } finally {
      await c.node(victim).connect();
    }
    const t1 = Date.now();
    log(`reconnected ${victim}`);
    // Its NATS client notices the dead connection (missed pings) or resumes it, then answers again.
    await waitFor(`${victim} to answer again`, async () => (await ask(store, victim, { op: "status" }, 1_000)).kind === "ok", 60_000, 250);
    log(`${victim} answers again ${Date.now() - t1} ms after the reconnect`);
    await sleep(1_000);
    await load.stop();
    log(load.summary());
    expect(load.stalledBetween(t0, t1), "writers with no acknowledged write while the node was cut off").toEqual([]);
    expect(load.failures, load.summary()).toEqual([]);
    await verifyLedgers(store, load.ledgers);
    await expectConverged(c, load.ledgers.map((l) => l.key));
  });
});
