// The generated nats-server config of the testcontainers module (pure; no Docker needed): who
// may publish peer frames to whom under a partition, and that nats-server accepts the file.

import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { checkPartition, cutOffFrom, natsConfigText } from "../../src/testcontainers/natsConfig.js";

const nodes = ["n1", "n2", "n3"];

describe("testcontainers nats config", () => {
  it("cuts the named groups apart; the nodes named nowhere are one more group", () => {
    expect(cutOffFrom("n1", nodes, null)).toEqual([]);
    expect(cutOffFrom("n1", nodes, [["n1"]])).toEqual(["n2", "n3"]);
    expect(cutOffFrom("n2", nodes, [["n1"]])).toEqual(["n1"]);
    expect(cutOffFrom("n3", nodes, [["n1"], ["n2", "n3"]])).toEqual(["n1"]);
    expect(cutOffFrom("n3", nodes, [["n1"], ["n2"]])).toEqual(["n1", "n2"]);
    expect(cutOffFrom("n2", nodes, [nodes])).toEqual([]);
  });

  it("refuses unknown nodes and a node in two groups", () => {
    expect(() => checkPartition([["n4"]], nodes)).toThrow(/unknown node "n4"/);
    expect(() => checkPartition([["n1"], ["n1", "n2"]], nodes)).toThrow(/more than one group/);
    expect(() => checkPartition([["n1"], ["n2"]], nodes)).not.toThrow();
  });

  const text = natsConfigText({
    prefix: "paxosstore.t",
    nodes: nodes.map((nodeId) => ({ nodeId, user: `node-${nodeId}`, password: `pw-${nodeId}` })),
    clientUser: { user: "client", password: "pw-client" },
    partition: [["n1"]],
  });

  it("denies each node user publish on the peer subjects across the partition", () => {
    expect(text).toContain(`{ user: "node-n1", password: "pw-n1", permissions: { publish: { allow: [">"], deny: ["paxosstore.t.peer.n2", "paxosstore.t.peer.n3"] }`);
    expect(text).toContain(`{ user: "node-n2", password: "pw-n2", permissions: { publish: { allow: [">"], deny: ["paxosstore.t.peer.n1"] }`);
    expect(text).toContain(`no_auth_user: "client"`);
  });

  it.skipIf(!existsSync("/usr/sbin/nats-server"))("is a config nats-server accepts (nats-server -t)", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "paxosstore-natsconf-"));
    try {
      const file = path.join(dir, "nats.conf");
      writeFileSync(file, text);
      const r = spawnSync("/usr/sbin/nats-server", ["-c", file, "-t"], { encoding: "utf8" });
      expect(`${r.stdout}${r.stderr}`).toMatch(/is valid/);
      expect(r.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
