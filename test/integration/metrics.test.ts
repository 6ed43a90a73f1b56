// A node with --metrics-port serves Prometheus text at /metrics, and its counters move with
// the traffic it serves: requests by op and outcome, fast-round proposals, storage batches,
// group loads, bad frames. Real nats-server, real LevelDB, the node in this process.

import { connect, headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import pino from "pino";
import { afterEach, expect, it } from "vitest";
import { startNode, type NodeHandle } from "../../src/actors/node.js";
import { loadNodeConfig } from "../../src/actors/nodeConfig.js";
import { startNatsServer, type NatsServer } from "../helpers/natsServer.js";
import { preferredReplica } from "../../src/protocol/placement.js";
import { freePort } from "../helpers/ports.js";
import { tempDir } from "../helpers/tmp.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function series(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split("\n")) if (line.startsWith(name) && " {,}".includes(line[name.length] ?? "")) sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  return sum;
}

it("serves /metrics with request, proposal, storage and group counters", async () => {
  const nats: NatsServer = await startNatsServer();
  cleanups.push(() => nats.stop());
  const dir = await tempDir("metrics");
  cleanups.push(() => dir.cleanup());
  const ports: number[] = [];
  const configs = [];
  for (const id of ["n1", "n2", "n3"]) {
    const port = await freePort();
    ports.push(port);
    const config = loadNodeConfig(undefined, {}, { nodeId: id, cluster: "m", members: "n1,n2,n3", nats: nats.url, dataDir: `${dir.path}/${id}`, metricsPort: String(port) });
    expect(config.metricsPort).toBe(port);
    configs.push(config);
  }
  // Together: a node with an empty data directory waits until every peer says whether it has
  // seen it (a brand-new cluster's nodes answer one another).
  const nodes: NodeHandle[] = await Promise.all(configs.map((config) => startNode(config, { logger: pino({ level: "silent" }) })));
  for (const node of nodes) cleanups.push(() => node.stop());
  const port = ports[0]!;
  const nc: NatsConnection = await connect({ servers: nats.url });
  cleanups.push(() => nc.close());

  // Every call goes to n1, which proposes each put itself (PaxosStore-Direct: no relay to the
  // group's owner), at round 0 where it is the group's preferred replica and with a Prepare
  // round elsewhere.
  const direct = natsHeaders();
  direct.set("PaxosStore-Direct", "1");
  const call = async (body: Record<string, unknown>): Promise<Record<string, unknown>> =>
    JSON.parse(new TextDecoder().decode((await nc.request("paxosstore.m.api.n1", JSON.stringify(body), { timeout: 10_000, headers: direct })).data)) as Record<string, unknown>;
  const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);
  const fastKeys = keys.filter((k) => preferredReplica(k, ["n1", "n2", "n3"]) === "n1").slice(0, 5);
  expect(fastKeys.length).toBe(5);
  for (const k of fastKeys) expect((await call({ op: "put", key: k, value: "v" })).ok).toBe(true);
  expect((await call({ op: "get", key: fastKeys[0] })).ok).toBe(true);
  expect((await call({ op: "get", key: fastKeys[0], consistency: "stale" })).ok).toBe(true);
  nc.publish("paxosstore.m.peer.n1", new Uint8Array([1, 2, 3])); // a bad peer frame
  await nc.flush();

  const url = `http://127.0.0.1:${port}/metrics`;
  let text = "";
  const until = Date.now() + 10_000;
  while (Date.now() < until) {
    text = await (await fetch(url)).text();
    if (series(text, "paxosstore_bad_frames_total") >= 1) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  expect(text).toContain('paxosstore_requests_total{op="put",outcome="ok",node="n1",cluster="m"} 5');
  expect(text).toContain('paxosstore_requests_total{op="get",outcome="ok",node="n1",cluster="m"} 1');
  expect(text).toContain('paxosstore_requests_total{op="get_stale",outcome="ok",node="n1",cluster="m"} 1');
  expect(series(text, "paxosstore_request_duration_seconds_count")).toBe(7);
  expect(series(text, 'paxosstore_proposals_total{round="fast"')).toBe(5);
  expect(series(text, "paxosstore_group_loads_total")).toBe(5);
  expect(series(text, "paxosstore_groups_active")).toBe(5);
  expect(series(text, "paxosstore_storage_batch_records_sum")).toBeGreaterThanOrEqual(5);
  expect(series(text, "paxosstore_storage_commit_seconds_count")).toBeGreaterThanOrEqual(1);
  expect(series(text, "paxosstore_bad_frames_total")).toBe(1);
  expect(series(text, "paxosstore_process_resident_memory_bytes")).toBeGreaterThan(0);
  expect((await fetch(`http://127.0.0.1:${port}/other`)).status).toBe(404);
});

it("metrics are off by default", () => {
  const config = loadNodeConfig(undefined, {}, { nodeId: "n1", members: "n1" });
  expect(config.metricsPort).toBe(0);
});
