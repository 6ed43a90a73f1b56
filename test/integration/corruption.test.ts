// A stored record that fails its checksum is never served: the node wipes its copy of that
// group and recovers it from the peers as a learner that does not vote (protocol/recovery.ts),
// then serves it again once it is safe.
import { Level } from "level";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dataKey, groupPrefix } from "../../src/storage/layout.js";
import { startCluster, type TestCluster } from "../helpers/cluster.js";

describe("a corrupt record on one node", () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startCluster({ nodes: 3 });
  });
  afterAll(async () => {
    await c?.close();
  });

  it("is never served; the group is recovered from the peers and served again", async () => {
    const group = "corrupt-me";
    for (let i = 1; i <= 5; i++) {
      expect(await c.request({ op: "put", group, key: `k${i}`, value: `v${i}`, requestId: `corrupt-${i}` }, "n1")).toMatchObject({ ok: true });
    }
    // Make sure n3 has the group on disk, then stop it and flip a byte of one data record.
    expect(await c.request({ op: "get", group, key: "k5" }, "n3")).toMatchObject({ ok: true, value: "v5" });
    expect(await c.stop("n3")).toBe(0);
    const db = new Level<Uint8Array, Uint8Array>(c.nodes.get("n3")!.dataDir, { keyEncoding: "view", valueEncoding: "view" });
    await db.open();
    const key = dataKey(groupPrefix(group), "k3");
    const record = await db.get(key);
    expect(record).toBeDefined();
    const bad = Uint8Array.from(record!);
    bad[bad.length - 1] ^= 0xff;
    await db.put(key, bad, { sync: true });
    await db.close();

    await c.start("n3");
    // Stale reads on n3 would come from its local copy: refused while it recovers.
    const stale = await c.request({ op: "get", group, key: "k3", consistency: "stale" }, "n3");
    expect(stale).toMatchObject({ ok: false, error: { code: "unavailable" } });
    expect(c.nodes.get("n3")!.lines.some((l) => l.includes("failed its checksum"))).toBe(true);
    // Linearizable reads through n3 count only the other replicas and catch n3 up.
    expect(await c.request({ op: "get", group, key: "k3" }, "n3")).toMatchObject({ ok: true, found: true, value: "v3" });
    // Writes through n3 are refused (it does not vote yet); through the others they work. With
    // the client's own request id the answer is `timeout`, not `unavailable`: an earlier
    // attempt with that id elsewhere may have been applied (docs/API.md); without one, it is.
    // (Direct: n3 itself; without the header n3 would relay the write to a replica that votes.)
    expect(await c.request({ op: "put", group, key: "k6", value: "x", requestId: "corrupt-n3" }, "n3", 10_000, true)).toMatchObject({ ok: false, error: { code: "timeout" } });
    expect(await c.request({ op: "put", group, key: "k6", value: "x" }, "n3", 10_000, true)).toMatchObject({ ok: false, error: { code: "unavailable" } });
    expect(await c.request({ op: "put", group, key: "k6", value: "v6", requestId: "corrupt-6" }, "n2")).toMatchObject({ ok: true });
    // One more chosen instance past everything n3 could have voted in: it is a full replica again.
    let recovered = false;
    for (let i = 0; i < 50 && !recovered; i++) {
      await c.request({ op: "get", group, key: "k6" }, "n3");
      const r = await c.request({ op: "get", group, key: "k6", consistency: "stale" }, "n3");
      recovered = r.ok === true && r.value === "v6";
      if (!recovered) await new Promise((res) => setTimeout(res, 100));
    }
    expect(recovered).toBe(true);
    for (let i = 1; i <= 6; i++) {
      expect(await c.request({ op: "get", group, key: `k${i}`, consistency: "stale" }, "n3")).toMatchObject({ ok: true, value: `v${i}` });
    }
    expect(await c.request({ op: "put", group, key: "k7", value: "v7", requestId: "corrupt-7" }, "n3")).toMatchObject({ ok: true });
  });
});
