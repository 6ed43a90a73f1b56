import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type TestCluster } from "../helpers/cluster.js";

describe("a 3-node cluster over real NATS and LevelDB", () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startCluster({ nodes: 3 });
  });
  afterAll(async () => {
    await c?.close();
  });

  it("a write through any node is read linearizably through every other", async () => {
    for (const writer of c.members) {
      const put = await c.request({ op: "put", key: `k-${writer}`, value: `from ${writer}` }, writer);
      expect(put).toMatchObject({ ok: true });
      for (const reader of c.members) {
        const got = await c.request({ op: "get", key: `k-${writer}` }, reader);
        expect(got).toMatchObject({ ok: true, found: true, value: `from ${writer}` });
      }
    }
  });
});
