// Crashes over a real nats-server and LevelDB, with node processes killed by SIGKILL:
//   - one node killed while clients write through it and the others: no acknowledged write is
//     lost, and the restarted node catches up on what it missed, by each path (one behind via
//     a catch-up entry, one behind via the next Accept's `prev`, data-level in chunks);
//   - the failover gap: writes keep succeeding while one node is down (no leader to elect),
//     measured and printed, never asserted tightly;
//   - the whole cluster killed with writes in flight and restarted: nothing acknowledged lost.
// One cluster for the file; every ledger is checked again after the whole-cluster restart.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type TestCluster } from "../helpers/cluster.js";
import { expectLedgerEverywhere, fmt, Ledger, ok, percentile, scanAll, sleep, startWriter, waitFor, write, type Body, type WriteRecord } from "./support.js";

describe("kill -9 over real NATS and LevelDB", () => {
  let c: TestCluster;
  const ledgers: Ledger[] = [];
  beforeAll(async () => {
    c = await startCluster({ nodes: 3 });
  });
  afterAll(async () => {
    await c?.close();
  });

  const get = (group: string, key: string, node: string, consistency: "linearizable" | "stale" = "linearizable"): Promise<Body> =>
    ok(c, { op: "get", group, key, consistency }, node);
  const put = async (group: string, key: string, value: string, requestId: string, node = "n1"): Promise<number> =>
    (await ok(c, { op: "put", group, key, value, requestId }, node)).version as number;
  const bigValue = (i: number): string => `big-${i}:`.padEnd(48 * 1024, String.fromCharCode(97 + (i % 26)));

  it("kill -9 of a node while clients write: every acked write survives, and the restarted node catches up by every path", async () => {
    const victim = "n3";
    const ledger = new Ledger("k9");
    ledgers.push(ledger);

    // Groups the writers never touch, to steer the victim into each catch-up path.
    const v1 = await put("ob", "k", "ob v1", "ob-1"); //       one behind: learns the last entry
    const w1 = await put("ob2", "k", "ob2 v1", "ob2-1"); //    one behind: learns it from an Accept's prev
    for (let i = 0; i < 5; i++) await put("dl", `a${i}`, `a${i} v1`, `dl-a${i}`); // far behind: data copy
    for (let i = 0; i < 2; i++) await put("big", `b${i}`, bigValue(i), `big-pre-${i}`); //  far behind, several chunks
    await waitFor(`${victim} has the groups`, async () => {
      const [a, b, d, e] = await Promise.all([get("ob", "k", victim, "stale"), get("ob2", "k", victim, "stale"), get("dl", "a4", victim, "stale"), get("big", "b1", victim, "stale")]);
      return a.version === v1 && b.version === w1 && d.found === true && e.found === true;
    });
    const dlBefore = await scanAll(c, "dl", victim, "stale");
    const bigBefore = await scanAll(c, "big", victim, "stale");

    // Six clients, two through each node (the victim's fall back to the others), on eight
    // shared groups: proposers on different nodes compete for the same instances.
    const groups = Array.from({ length: 8 }, (_, i) => `crash-${i}`);
    const routes: Record<string, string[]> = { n1: ["n1", "n2", "n3"], n2: ["n2", "n3", "n1"], n3: ["n3", "n1", "n2"] };
    const writers = c.members.flatMap((n) => ["a", "b"].map((x) => startWriter(c, ledger, `${n}${x}`, groups, { route: routes[n]!, timeoutMs: 1_500 })));
    let acksAtKill = 0;
    let restartedAfter = 0;
    try {
      await sleep(1_000);
      const killedAt = performance.now();
      await c.kill9(victim);
      acksAtKill = ledger.acked().length;

      // While the victim is down: exactly one write to ob and ob2; many to dl (with a delete of
      // a key the victim has), and ~400 KB to big (more than one catch-up chunk of 192 KB).
      const v2 = await put("ob", "k", "ob v2", "ob-2", "n2");
      const w2 = await put("ob2", "k", "ob2 v2", "ob2-2", "n1");
      expect(v2).toBe(v1 + 1);
      await ok(c, { op: "delete", group: "dl", key: "a0", requestId: "dl-del-a0" }, "n1");
      for (let i = 0; i < 40; i++) await put("dl", `k${i % 10}`, `k${i % 10} v${i}`, `dl-k-${i}`, i % 2 === 0 ? "n1" : "n2");
      for (let i = 2; i < 10; i++) await put("big", `b${i}`, bigValue(i), `big-down-${i}`, "n2");
      await sleep(300);
      await c.start(victim); // the writers keep going meanwhile
      restartedAfter = performance.now() - killedAt;

      // It restarted on its own disk and missed everything since: stale reads show the old state.
      expect(await get("ob", "k", victim, "stale")).toMatchObject({ found: true, value: "ob v1", version: v1, index: v1 });
      expect(await get("ob2", "k", victim, "stale")).toMatchObject({ found: true, value: "ob2 v1", version: w1 });
      expect((await scanAll(c, "dl", victim, "stale")).items).toEqual(dlBefore.items);
      expect((await scanAll(c, "big", victim, "stale")).items).toEqual(bigBefore.items);

      // One behind, resolved by a read: the linearizable read through the victim probes, finds a
      // peer one ahead and gets its last entry; a stale read then shows the victim holds it.
      expect(await get("ob", "k", victim)).toMatchObject({ found: true, value: "ob v2", version: v2, index: v2 });
      expect(await get("ob", "k", victim, "stale")).toMatchObject({ found: true, value: "ob v2", version: v2, index: v2 });

      // One behind, resolved by the next write: its Accept carries the missed entry as `prev`.
      const w3 = await put("ob2", "k", "ob2 v3", "ob2-3", "n1");
      expect(w3).toBe(w2 + 1);
      await waitFor("the victim learned ob2 through the next write", async () => (await get("ob2", "k", victim, "stale")).version === w3);
      expect(await get("ob2", "k", victim, "stale")).toMatchObject({ value: "ob2 v3", version: w3, index: w3 });

      // Far behind: the linearizable scan through the victim copies the group's data (in chunks
      // for big); then its own stale copy equals the other replicas', deleted key included.
      for (const g of ["dl", "big"]) {
        const truth = await scanAll(c, g, "n1");
        const viaVictim = await scanAll(c, g, victim);
        expect(viaVictim.items, g).toEqual(truth.items);
        expect(viaVictim.index, g).toBe(truth.index);
        const local = await scanAll(c, g, victim, "stale");
        expect(local.items, `${g} stale on ${victim}`).toEqual(truth.items);
        expect(local.index).toBe(truth.index);
      }
      const dl = await scanAll(c, "dl", victim, "stale");
      expect(dl.items.has("a0")).toBe(false);
      expect(dl.items.get("k9")).toMatchObject({ value: "k9 v39" });
      expect((await scanAll(c, "big", victim, "stale")).items.size).toBe(10);

      await sleep(500);
    } finally {
      for (const w of writers) w.stop();
      await Promise.all(writers.map((w) => w.done));
    }
    const counts = ledger.counts();
    console.log(
      `[kill -9 one] ${ledger.writes.length} writes by 6 clients (acked ${counts.acked}, unknown ${counts.maybe}); ${acksAtKill} acked before the kill, ${counts.acked! - acksAtKill} after; ${victim} was back ${(restartedAfter / 1000).toFixed(1)} s after the kill; acks per client ${writers.map((w) => `${w.name}:${w.acks}`).join(" ")}`,
    );
    expect(counts.pending).toBe(0);
    expect(counts.acked!).toBeGreaterThan(acksAtKill + 20); // progress while the victim was down or catching up
    // Every acked write, through every node (the victim included), linearizable and stale.
    await expectLedgerEverywhere(c, [ledger]);
  });

  it("writes keep succeeding while one of three nodes is down: the gap is measured", async () => {
    const victim = "n2";
    const ledger = new Ledger("fo");
    ledgers.push(ledger);
    const timeoutMs = 1_000; // the client's: a request lost with the victim costs one of these
    interface Client {
      readonly name: string;
      readonly writes: WriteRecord[];
      done?: Promise<void>;
    }
    let running = true;
    const clients: Client[] = [];
    const run = (name: string, routeFor: (i: number) => (string | undefined)[]): void => {
      const cl: Client = { name, writes: [] };
      cl.done = (async () => {
        for (let i = 0; running; i++) {
          const w = ledger.next(`fo-${i % 4}`, name);
          cl.writes.push(w);
          await write(c, w, { route: routeFor(i), timeoutMs, giveUpMs: 20_000 });
        }
      })();
      clients.push(cl);
    };
    // Through the queue subject (any node answers), and round-robin over the nodes (a dead
    // node's subject answers "no responders" at once; a lost request times out; then the next).
    for (let k = 0; k < 3; k++) run(`queue${k}`, () => [undefined]);
    for (let k = 0; k < 3; k++) run(`rr${k}`, (i) => [0, 1, 2].map((j) => c.members[(i + j + k) % 3]!));
    const killAt = await (async () => {
      try {
        await sleep(1_500);
        const at = performance.now();
        await c.kill9(victim);
        await sleep(3_000);
        return at;
      } finally {
        running = false;
        await Promise.all(clients.map((cl) => cl.done));
      }
    })();

    const all = clients.flatMap((cl) => cl.writes);
    expect(all.filter((w) => w.status !== "acked").map((w) => `${w.key} ${w.trail.join(" ")}`)).toEqual([]);
    const before = all.filter((w) => w.endedAt! < killAt);
    const baseline = before.filter((w) => w.startedAt > killAt - 1_000).map((w) => w.endedAt! - w.startedAt);
    const inFlight = all.filter((w) => w.startedAt <= killAt && w.endedAt! >= killAt);
    const around = all.filter((w) => w.endedAt! >= killAt - 500 && w.startedAt <= killAt + 2_000);
    const ackTimes = all.map((w) => w.endedAt!).sort((a, b) => a - b);
    const firstAfter = ackTimes.find((t) => t >= killAt)! - killAt;
    const longestAckGap = (ts: readonly number[], from: number, to: number): number => {
      let prev = from;
      let gap = 0;
      for (const t of ts) if (t >= from && t <= to) (gap = Math.max(gap, t - prev)), (prev = t);
      return gap;
    };
    const lines = clients.map((cl) => {
      const ts = cl.writes.map((w) => w.endedAt!);
      const first = ts.find((t) => t >= killAt)! - killAt;
      const stall = longestAckGap(ts, killAt - 1_000, killAt + 3_000);
      const lost = cl.writes.filter((w) => w.startedAt <= killAt && w.endedAt! >= killAt && w.attempts > 1);
      return { name: cl.name, first, stall, retried: lost.length, after: cl.writes.filter((w) => w.startedAt >= killAt).length };
    });
    console.log(
      [
        `[failover] kill -9 ${victim}; client timeout ${timeoutMs} ms; 3 clients on ${"`<prefix>.api`"} (queue), 3 round-robin over n1..n3`,
        `  baseline (last second before the kill): ${baseline.length} writes, p50 ${fmt(percentile(baseline, 50))}, p99 ${fmt(percentile(baseline, 99))}, max ${fmt(Math.max(...baseline))}`,
        `  kill -> next successful write (any client): ${fmt(firstAfter)}`,
        `  kill -> next successful write, per client: ${lines.map((l) => `${l.name} ${fmt(l.first)}`).join(", ")}`,
        `  longest pause between two acks of one client around the kill: ${lines.map((l) => `${l.name} ${fmt(l.stall)}`).join(", ")}`,
        `  longest pause between two acks of the whole cluster: ${fmt(longestAckGap(ackTimes, killAt - 1_000, killAt + 3_000))}`,
        `  writes in flight at the kill: ${inFlight.length}, their latency: ${inFlight.map((w) => `${fmt(w.endedAt! - w.startedAt)} (${w.trail.join(" ")})`).join("; ")}`,
        `  max write latency from 0.5 s before to 2 s after the kill: ${fmt(Math.max(...around.map((w) => w.endedAt! - w.startedAt)))}`,
        `  writes after the kill: ${lines.map((l) => `${l.name} ${l.after}`).join(", ")}`,
        `  slow writes (> 300 ms) from 0.5 s before to 3 s after the kill: ${
          all
            .filter((w) => w.endedAt! >= killAt - 500 && w.startedAt <= killAt + 3_000 && w.endedAt! - w.startedAt > 300)
            .map((w) => `${w.group}/${w.key} at ${fmt(w.startedAt - killAt)}: ${fmt(w.endedAt! - w.startedAt)} (${w.trail.join(" ")})`)
            .join("; ") || "none"
        }`,
      ].join("\n"),
    );
    // Progress, not speed: every client went on writing with a node down.
    for (const l of lines) {
      expect(l.first, `${l.name}: first ack after the kill`).toBeLessThan(10_000);
      expect(l.after, `${l.name}: writes after the kill`).toBeGreaterThan(0);
    }
    await c.start(victim);
  });

  it("kill -9 of all three nodes with writes in flight, restart: nothing acknowledged is lost", async () => {
    const ledger = new Ledger("all");
    ledgers.push(ledger);
    let down = false;
    const groups = Array.from({ length: 6 }, (_, i) => `whole-${i}`);
    const writers = c.members.flatMap((n, i) =>
      ["a", "b"].map((x) => startWriter(c, ledger, `${n}${x}`, groups, { route: [n, c.members[(i + 1) % 3]!], timeoutMs: 1_000, stopped: () => down })),
    );
    try {
      await sleep(1_500);
      await Promise.all(c.members.map((n) => c.kill9(n)));
    } finally {
      down = true;
      for (const w of writers) w.stop();
      await Promise.all(writers.map((w) => w.done));
    }
    const counts = ledger.counts();
    console.log(`[kill -9 all] ${ledger.writes.length} writes (acked ${counts.acked}, unknown ${counts.maybe}) when all three nodes were killed`);
    expect(counts.acked!).toBeGreaterThan(5);

    await Promise.all(c.members.map((n) => c.start(n)));
    // This test's writes and every earlier test's, through every node.
    await expectLedgerEverywhere(c, ledgers);
    for (const [g, k, v] of [["ob", "k", "ob v2"], ["ob2", "k", "ob2 v3"], ["dl", "k9", "k9 v39"]] as const)
      for (const n of c.members) expect(await get(g, k, n)).toMatchObject({ found: true, value: v });
    // And the cluster goes on: a new write to each group lands above everything before it.
    for (const g of groups) {
      const { index } = await scanAll(c, g, "n1");
      const v = await put(g, "after-restart", "yes", `after-${g}`, c.members[groups.indexOf(g) % 3]);
      expect(v).toBeGreaterThan(index);
    }
  });
});
