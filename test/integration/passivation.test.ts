// Passivation over real node processes: with PAXOSSTORE_PASSIVATE_AFTER_MS=300 an idle
// key-group actor is stopped (its state stays in LevelDB) and the next message reloads it.
// Groups must come back with their data, versions, chosen index and request-id memory.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type TestCluster } from "../helpers/cluster.js";
import { ok, scanAll, sleep, waitFor, type Body } from "./support.js";

describe("idle key-groups are passivated and come back with their state", () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startCluster({ nodes: 3, env: { PAXOSSTORE_PASSIVATE_AFTER_MS: "300" } });
  });
  afterAll(async () => {
    await c?.close();
  });

  const active = async (): Promise<number[]> => Promise.all(c.members.map(async (n) => (await ok(c, { op: "status" }, n)).groupsActive as number));

  it("groupsActive drops to zero when idle; reads (stale and linearizable) and writes find the data as it was", async () => {
    const groups = Array.from({ length: 30 }, (_, i) => `p-${i}`);
    const expected = new Map<string, Map<string, { value: string; version: number }>>();
    const indexes = new Map<string, number>();
    await Promise.all(
      groups.map(async (g, i) => {
        const keys = new Map<string, { value: string; version: number }>();
        expected.set(g, keys);
        for (let k = 0; k < 3; k++) {
          const node = c.members[(i + k) % 3]!;
          const value = `${g}/k${k} via ${node}`;
          const r = await ok(c, { op: "put", group: g, key: `k${k}`, value, requestId: `${g}-k${k}` }, node);
          keys.set(`k${k}`, { value, version: r.version as number });
          indexes.set(g, r.version as number);
        }
        const d = await ok(c, { op: "delete", group: g, key: "k1", requestId: `${g}-del` }, c.members[i % 3]);
        keys.delete("k1");
        indexes.set(g, d.version as number);
      }),
    );
    const busy = await active();
    const t0 = performance.now();
    const idle = await waitFor("every node passivated every group", async () => {
      const a = await active();
      return a.every((n) => n === 0) ? a : false;
    }, 10_000, 50);
    console.log(`[passivation] groupsActive right after the writes: ${busy.join(", ")}; all 0 after ${(performance.now() - t0).toFixed(0)} ms (${idle.join(", ")})`);
    expect(Math.min(...busy)).toBeGreaterThan(0);

    const check = async (node: string, consistency: "stale" | "linearizable"): Promise<void> => {
      await Promise.all(groups.map(async (g) => {
        const { items, index } = await scanAll(c, g, node, consistency);
        expect(Object.fromEntries([...items].map(([k, it]) => [k, { value: it.value, version: it.version }])), `${g} ${consistency} via ${node}`).toEqual(
          Object.fromEntries(expected.get(g)!),
        );
        expect(index, `${g} index ${consistency} via ${node}`).toBe(indexes.get(g));
      }));
    };
    // Stale reads first: they touch nothing but the local replica, reloaded from disk.
    for (const n of c.members) await check(n, "stale");
    expect(Math.max(...(await active()))).toBeGreaterThan(0); // reloaded
    await waitFor("passivated again", async () => (await active()).every((n) => n === 0), 10_000, 50);
    for (const n of c.members) await check(n, "linearizable");
    await waitFor("passivated again", async () => (await active()).every((n) => n === 0), 10_000, 50);

    // A retried request id is answered with its first result, from the reloaded memory.
    for (const [i, g] of groups.entries()) {
      const retry = await ok(c, { op: "put", group: g, key: "k0", value: "NOT APPLIED", requestId: `${g}-k0` }, c.members[(i + 2) % 3]);
      expect(retry.version, `${g} retry`).toBe(expected.get(g)!.get("k0")!.version);
    }
    // New writes land on the next index, through a node other than the last writer.
    await waitFor("passivated again", async () => (await active()).every((n) => n === 0), 10_000, 50);
    for (const [i, g] of groups.entries()) {
      const r = await ok(c, { op: "put", group: g, key: "k3", value: "after", requestId: `${g}-k3` }, c.members[(i + 1) % 3]);
      expect(r.version, `${g} new write`).toBe(indexes.get(g)! + 1);
      expected.get(g)!.set("k3", { value: "after", version: r.version as number });
      indexes.set(g, r.version as number);
    }
    for (const n of c.members) await check(n, "linearizable");
    for (const n of c.members) await check(n, "stale");
  });

  it("a group written at about the passivation period keeps every write in order", async () => {
    // Each write lands just before, at, or just after the group's actor is passivated on one
    // node or another: each must see the one before it.
    let last = 0;
    const versions: number[] = [];
    for (let i = 0; i < 16; i++) {
      const node = c.members[i % 3]!;
      const r: Body = await ok(c, { op: "put", group: "edge", key: `k${i % 4}`, value: `v${i}`, requestId: `edge-${i}` }, node);
      versions.push(r.version as number);
      expect(r.version as number, `write ${i} via ${node}`).toBeGreaterThan(last);
      last = r.version as number;
      const other = c.members[(i + 1) % 3]!;
      expect(await ok(c, { op: "get", group: "edge", key: `k${i % 4}` }, other)).toMatchObject({ value: `v${i}`, version: last });
      await sleep(200 + ((i * 37) % 250));
    }
    expect(versions).toEqual(versions.map((_, i) => versions[0]! + i));
    for (const n of c.members) {
      const { items } = await scanAll(c, "edge", n);
      expect([...items.values()].map((it) => it.value)).toEqual(["v12", "v13", "v14", "v15"]);
    }
  });
});
