// `unavailable` promises that the REQUEST ID is never applied (docs/API.md), so a node may
// answer it only where that is provable. Here: the forwarding path of a node that holds no
// replica of the group, when no replica has a responder. Without a request id of the client's
// own the id the replica would make cannot exist anywhere: `unavailable`. With one, an
// earlier attempt may have been applied: `timeout` (issue 8, defect 1; it answered
// "unavailable ... the write was not applied" before).

import { afterAll, beforeAll, expect, it } from "vitest";
import { replicasFor } from "../../src/protocol/placement.js";
import { startCluster, type TestCluster } from "../helpers/cluster.js";

let c: TestCluster;
let group = "";

beforeAll(async () => {
  // Four members, one running: groups placed on n2..n4 reach n1 only through the queue subject.
  c = await startCluster({ nodes: 4, cluster: "unav" });
  await Promise.all(["n2", "n3", "n4"].map((id) => c.stop(id)));
  for (let i = 0; group === ""; i++) if (!replicasFor(`g${i}`, c.members, 3).includes("n1")) group = `g${i}`;
});
afterAll(async () => {
  await c?.close();
});

it("forwarding that reaches no replica: timeout for a client's own request id, unavailable for none", async () => {
  const withId = await c.request({ op: "put", group, key: "k", value: "v", requestId: "client-chosen-1" });
  expect(withId).toMatchObject({ ok: false, error: { code: "timeout", details: { group, requestId: "client-chosen-1" } } });
  const withoutId = await c.request({ op: "put", group, key: "k", value: "v" });
  expect(withoutId).toMatchObject({ ok: false, error: { code: "unavailable" } });
  // Reads change nothing: "unavailable" is simply true for them.
  const read = await c.request({ op: "get", group, key: "k" });
  expect(read).toMatchObject({ ok: false, error: { code: "unavailable" } });
});
