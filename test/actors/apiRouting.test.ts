// Where the api handler (src/actors/apiHandler.ts) sends a request, decided by what the node
// knows of its peers (issue 10, docs/DESIGN.md "Failover without a gap"):
//   - a client's hedged copy (`PaxosStore-Direct: hedge`) is relayed only to a replica heard
//     from just now (75 ms), else proposed where it landed; a plain write is relayed to any live
//     owner, however long ago it was heard within the silence limit;
//   - `PaxosStore-Direct: 1` is proposed here, never relayed;
//   - a read through the queue subject at a node that has just started (or come back from a
//     cut) goes to a live peer replica; once settled, the node serves it itself;
//   - just back from a cut of a second or more, queue-subject requests (NATS's backlog for the
//     node) are answered at once, neither forwarded nor relayed nor proposed; stale reads and
//     requests on the node's own subject are served as always.
// The real ApiHandler on a real nats-server; the node behind it is a stub (its peers' liveness
// is set by the test, its groups answer at once), and the peers n1 and n3 are plain NATS
// subscribers that record what reaches them.

import { connect, headers as natsHeaders, type Msg, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ApiHandler } from "../../src/actors/apiHandler.js";
import type { GroupMsg } from "../../src/actors/keyGroup.js";
import { DEFAULT_WIRE_LIMITS } from "../../src/protocol/limits.js";
import { subjectsFor } from "../../src/protocol/subjects.js";
import { startNatsServer, type NatsServer } from "../helpers/natsServer.js";

const subjects = subjectsFor("route");
const enc = new TextEncoder();
const dec = new TextDecoder();

interface Seen {
  readonly node: string;
  readonly body: Record<string, unknown>;
  readonly headers: MsgHdrs | undefined;
}

let nats: NatsServer;
let nc: NatsConnection;
let handler: ApiHandler;
/** What reached the stub peers n1 and n3, and what the stub node n2 proposed or read itself. */
const seen: Seen[] = [];
const local: GroupMsg[] = [];
/** The peers as n2 knows them (set per test). */
const heardAgoMs = new Map<string, number>();
const alive = new Set<string>();
let settled = true;
let returning = false;

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  for (const peer of ["n1", "n3"]) {
    nc.subscribe(subjects.apiNode(peer), {
      callback: (err, msg: Msg) => {
        if (err !== null) return;
        const body = JSON.parse(dec.decode(msg.data)) as Record<string, unknown>;
        seen.push({ node: peer, body, headers: msg.headers });
        msg.respond(enc.encode(JSON.stringify(body.op === "get" ? { ok: true, found: false, index: 0, from: peer } : { ok: true, version: 1, from: peer })));
      },
    });
  }
  handler = new ApiHandler({
    nc,
    subjects,
    self: "n2",
    incarnation: "test",
    limits: DEFAULT_WIRE_LIMITS,
    requestTimeoutMs: 2_000,
    replicasFor: () => ["n1", "n2", "n3"],
    peerAlive: (n) => alive.has(n),
    fastRoundOwner: () => "n1",
    selfSettled: () => settled,
    returningFromCut: () => returning,
    lastHeard: (n) => Date.now() - (heardAgoMs.get(n) ?? 1e9),
    markDown: (n) => alive.delete(n),
    dispatch: (_group, msg) => {
      local.push(msg);
      // The group answers at once: `unavailable` for a write, "not found" for a read.
      if (msg.type === "propose") handler.answer(msg.call, { kind: "error", code: "unavailable", message: "stub: answered by n2 itself" });
      if (msg.type === "read") handler.answer(msg.call, { kind: "read", result: { kind: "get", index: 0, entry: null } });
    },
    status: () => ({}) as never,
    now: () => performance.now(),
  });
  handler.start();
  await nc.flush();
});

afterAll(async () => {
  handler?.close();
  await nc?.close();
  await nats?.stop();
});

beforeEach(() => {
  seen.length = 0;
  local.length = 0;
  heardAgoMs.clear();
  alive.clear();
  settled = true;
  returning = false;
});

async function request(subject: string, body: Record<string, unknown>, direct?: string): Promise<Record<string, unknown>> {
  let headers: MsgHdrs | undefined;
  if (direct !== undefined) {
    headers = natsHeaders();
    headers.set("PaxosStore-Direct", direct);
  }
  const m = await nc.request(subject, enc.encode(JSON.stringify(body)), { timeout: 5_000, headers });
  return JSON.parse(dec.decode(m.data)) as Record<string, unknown>;
}

const put = { op: "put", key: "k", value: "v", requestId: "route-1" };

describe("a hedged copy (PaxosStore-Direct: hedge)", () => {
  it("goes to the group's owner when the owner was heard from just now", async () => {
    alive.add("n1").add("n3");
    heardAgoMs.set("n1", 10).set("n3", 10);
    const a = await request(subjects.apiNode("n2"), put, "hedge");
    expect(a).toMatchObject({ ok: true, from: "n1" });
    expect(seen.map((s) => s.node)).toEqual(["n1"]);
    // Relayed as a copy the owner proposes itself, under the client's request id.
    expect(seen[0]!.headers?.get("PaxosStore-Direct")).toBe("1");
    expect(seen[0]!.body.requestId).toBe("route-1");
    expect(local).toEqual([]);
  });

  it("is proposed where it landed when the owner has been silent for more than 75 ms", async () => {
    alive.add("n1").add("n3");
    heardAgoMs.set("n1", 200).set("n3", 10);
    const a = await request(subjects.apiNode("n2"), put, "hedge");
    expect(a.ok).toBe(false); // the stub group's own answer
    expect(seen).toEqual([]);
    expect(local.map((m) => m.type)).toEqual(["propose"]);
  });

  it("while a plain write is still relayed to that owner (alive: silent for less than the silence limit)", async () => {
    alive.add("n1").add("n3");
    heardAgoMs.set("n1", 200).set("n3", 10);
    const a = await request(subjects.apiNode("n2"), put);
    expect(a).toMatchObject({ ok: true, from: "n1" });
    expect(seen.map((s) => s.node)).toEqual(["n1"]);
  });

  it("and `PaxosStore-Direct: 1` is proposed here even with the owner heard just now", async () => {
    alive.add("n1").add("n3");
    heardAgoMs.set("n1", 10).set("n3", 10);
    await request(subjects.apiNode("n2"), put, "1");
    expect(seen).toEqual([]);
    expect(local.map((m) => m.type)).toEqual(["propose"]);
  });
});

describe("a read through the queue subject", () => {
  const get = { op: "get", key: "k" };

  it("at a node that has just started goes to a live peer replica", async () => {
    settled = false;
    alive.add("n3");
    heardAgoMs.set("n3", 10);
    const a = await request(subjects.api, get);
    expect(a).toMatchObject({ ok: true, from: "n3" });
    expect(seen.map((s) => s.node)).toEqual(["n3"]);
    expect(local).toEqual([]);
  });

  it("is served by the node itself when no peer replica is live", async () => {
    settled = false;
    const a = await request(subjects.api, get);
    expect(a.ok).toBe(true);
    expect(seen).toEqual([]);
    expect(local.map((m) => m.type)).toEqual(["read"]);
  });

  it("is served by the node itself once it has settled", async () => {
    alive.add("n1").add("n3");
    heardAgoMs.set("n1", 10).set("n3", 10);
    const a = await request(subjects.api, get);
    expect(a.ok).toBe(true);
    expect(seen).toEqual([]);
    expect(local.map((m) => m.type)).toEqual(["read"]);
  });
});

describe("just back from a cut (returningFromCut)", () => {
  beforeEach(() => {
    settled = false;
    returning = true;
    alive.add("n1").add("n3");
    heardAgoMs.set("n1", 10).set("n3", 10);
  });

  it("answers a queue-subject write at once: `unavailable` without a request id, `timeout` with one (an earlier attempt may have been applied)", async () => {
    const plain = await request(subjects.api, { op: "put", key: "k", value: "v" });
    expect(plain).toMatchObject({ ok: false, error: { code: "unavailable" } });
    const withId = await request(subjects.api, put);
    expect(withId).toMatchObject({ ok: false, error: { code: "timeout", details: { requestId: "route-1" } } });
    const txn = await request(subjects.api, { op: "txn", group: "k", compares: [], success: [{ op: "put", key: "k", value: "v" }] });
    expect(txn).toMatchObject({ ok: false, error: { code: "unavailable" } });
    expect(seen).toEqual([]); // not relayed
    expect(local).toEqual([]); // not proposed
  });

  it("answers a linearizable read at once, and serves a stale read as always", async () => {
    const a = await request(subjects.api, { op: "get", key: "k" });
    expect(a).toMatchObject({ ok: false, error: { code: "unavailable" } });
    expect(seen).toEqual([]); // not forwarded
    const stale = await request(subjects.api, { op: "get", key: "k", consistency: "stale" });
    expect(stale.ok).toBe(true); // (unsettled: forwarded to a live peer, as before a cut)
  });

  it("serves requests on its own subject as always (a client that routes by itself chose it)", async () => {
    const a = await request(subjects.apiNode("n2"), put);
    expect(a).toMatchObject({ ok: true, from: "n1" }); // relayed to the live owner, as when settled
    returning = false;
    const b = await request(subjects.api, { op: "get", key: "k" });
    expect(b).toMatchObject({ ok: true, from: "n1" }); // unsettled still: forwarded to a live peer
  });
});
