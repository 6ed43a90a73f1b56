// The queue subject's relay of writes (src/actors/apiHandler.ts) around a replica that cannot
// answer: a write whose group's preferred replica is paused (SIGSTOP: its NATS connection stays
// up, so only its silence tells) is still answered `ok`, by a hedged copy on a live replica,
// and applied once: the paused replica, when it resumes and runs its copy (same request id),
// does not apply it again. Functional only: how fast is measured by bench/failover.ts.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { preferredReplica } from "../../src/protocol/placement.js";
import { startCluster, type TestCluster } from "../helpers/cluster.js";
import { attempt, ok, waitFor } from "./support.js";

describe("the queue subject's relay", () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startCluster({ nodes: 3 });
  });
  afterAll(async () => {
    for (const n of c?.nodes.values() ?? []) n.child?.kill("SIGCONT");
    await c?.close();
  });

  it("a write whose preferred replica is paused is answered ok by a hedged copy, and applied once", async () => {
    let group = "relay:0";
    for (let i = 1; preferredReplica(group, c.members) !== "n1"; i++) group = `relay:${i}`;
    // Warm up: the group loaded everywhere, and the peers trust each other (transport.ts rejoin).
    for (let i = 0; i < 5; i++) await ok(c, { op: "put", group, key: "warm", value: String(i) });
    // Not a race but a rule: a peer is trusted with relayed writes after 1 s of steady frames.
    await new Promise((r) => setTimeout(r, 1_200));

    const n1 = c.nodes.get("n1")!.child!;
    n1.kill("SIGSTOP");
    let acked: { key: string; version: number } | null = null;
    try {
      // A queue request NATS hands to the paused n1 itself can only time out: try fresh keys
      // until one lands on a live node, which must relay it around n1.
      for (let i = 0; i < 12 && acked === null; i++) {
        const key = `k${i}`;
        const a = await attempt(c, { op: "put", group, key, value: "v", requestId: `relay-test-${i}` }, undefined, 2_000);
        if (a.kind === "ok") acked = { key, version: a.body.version as number };
        else if (a.kind === "error") expect.fail(`a live node answered ${JSON.stringify(a.body)}`);
      }
    } finally {
      n1.kill("SIGCONT");
    }
    expect(acked).not.toBeNull();
    // n1 runs its backlog, its copy of the write included; then a write through n1 orders
    // after it in the group, and the acked key must still be at its acked version.
    await waitFor("n1 to answer again", () => ok(c, { op: "status" }, "n1"), 15_000);
    await ok(c, { op: "put", group, key: "after", value: "x" }, "n1");
    const read = await ok(c, { op: "get", group, key: acked!.key }, "n1");
    expect(read.version).toBe(acked!.version);
  });
});
