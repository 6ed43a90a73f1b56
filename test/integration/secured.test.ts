// A 3-node cluster on the shipped infra/nats/secured.conf: one NATS user per node (passwords
// from files), one per application (alice, bob) with its own inbox prefix. Checks what the
// secured config promises: both applications work; neither can read the other's answers (a
// raw subscription to the other's inbox, or to _INBOX.>, is refused); a client with the
// shared default inbox is told `unauthorized`; a request whose reply subject is a peer subject
// makes no node publish there; a node's user cannot read another node's peer subject nor send
// frames to itself.

import { writeFileSync } from "node:fs";
import path from "node:path";
import { Writable } from "node:stream";
import { connect as natsConnect, errors as natsErrors, type NatsConnection } from "@nats-io/transport-node";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type PaxosStoreClient } from "../../src/client/client.js";
import { startNode, type NodeHandle } from "../../src/actors/node.js";
import { loadNodeConfig } from "../../src/actors/nodeConfig.js";
import { UnauthorizedError } from "../../src/protocol/errors.js";
import { NATS_CONFIGS, startNatsServer, type NatsServer } from "../helpers/natsServer.js";
import { freePort } from "../helpers/ports.js";
import { tempDir, type TempDir } from "../helpers/tmp.js";
import { waitFor } from "./support.js";

const enc = new TextEncoder();
const dec = new TextDecoder();
const MEMBERS = ["n1", "n2", "n3"];
const PASSWORDS: Record<string, string> = { n1: "pw n1#1", n2: "pw n2#2", n3: "pw n3#3", alice: "alice $pw", bob: "bob, pw" };

/** A pino logger whose JSON lines land in `lines`. */
function capture(lines: Record<string, unknown>[], node: string): pino.Logger {
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split("\n")) if (l.trim() !== "") lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return pino({ level: "info", base: { node } }, stream);
}

describe("a cluster on infra/nats/secured.conf", () => {
  let nats: NatsServer;
  let dir: TempDir;
  let httpPort: number;
  const nodes = new Map<string, NodeHandle>();
  const logs = new Map<string, Record<string, unknown>[]>();
  const clients: PaxosStoreClient[] = [];
  const raws: NatsConnection[] = [];

  const raw = async (user: string, inboxPrefix?: string): Promise<NatsConnection> => {
    const nc = await natsConnect({ servers: nats.url, user, pass: PASSWORDS[user], inboxPrefix, maxReconnectAttempts: 0, noAsyncTraces: true });
    raws.push(nc);
    return nc;
  };
  const client = async (user: string, inboxPrefix?: string): Promise<PaxosStoreClient> => {
    const c = await connect({ servers: nats.url, cluster: "sec", user, pass: PASSWORDS[user], inboxPrefix, timeoutMs: 8_000 });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    nats = await startNatsServer({
      config: NATS_CONFIGS.secured,
      // Quoted: nats-server parses a variable's value as a config value (see secured.conf).
      env: Object.fromEntries(Object.entries(PASSWORDS).map(([u, p]) => [`PAXOSSTORE_${u.toUpperCase()}_PASSWORD`, JSON.stringify(p)])),
    });
    dir = await tempDir("secured");
    httpPort = await freePort();
    await Promise.all(
      MEMBERS.map(async (id) => {
        const passFile = path.join(dir.path, `${id}.pass`);
        writeFileSync(passFile, `${PASSWORDS[id]}\n`, { mode: 0o600 });
        // The node's identity from its own variables; the CLI's would be ignored.
        const config = loadNodeConfig(undefined, { PAXOSSTORE_NODE_NATS_USER: id, PAXOSSTORE_NATS_USER: "alice", PAXOSSTORE_NATS_PASS: PASSWORDS.alice }, {
          nodeId: id,
          cluster: "sec",
          members: MEMBERS.join(","),
          nats: nats.url,
          dataDir: path.join(dir.path, id),
          passFile,
          httpPort: id === "n1" ? String(httpPort) : undefined,
        });
        expect(config.nats.user).toBe(id);
        expect(config.nats.inboxPrefix).toBe(`_INBOX_${id}`);
        const lines: Record<string, unknown>[] = [];
        logs.set(id, lines);
        nodes.set(id, await startNode(config, { logger: capture(lines, id) }));
      }),
    );
  }, 60_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(raws.map((c) => c.close().catch(() => undefined)));
    await Promise.all([...nodes.values()].map((n) => n.stop()));
    await nats?.stop();
    await dir?.cleanup();
  });

  it("both applications work, each on its own inbox prefix, and the ready line names the node's user", async () => {
    const alice = await client("alice", "_INBOX_alice");
    const bob = await client("bob", "_INBOX_bob");
    const put = await alice.put("shared", "from alice");
    expect((await bob.get("shared")).text()).toBe("from alice");
    await bob.put("bob-only", "secret of bob");
    expect((await alice.get("bob-only")).text()).toBe("secret of bob");
    expect(put.version).toBeGreaterThan(0);
    // n1's readiness: NATS connected, storage open, a majority of the members heard from.
    const readyz = await waitFor("n1 ready", async () => {
      const r = await fetch(`http://127.0.0.1:${httpPort}/readyz`);
      return r.status === 200 ? ((await r.json()) as Record<string, unknown>) : false;
    }, 10_000, 50);
    expect(readyz).toEqual({ ok: true, checks: { natsConnected: true, storageOpen: true, peersSeen: true, notStopping: true } });
    const ready = logs.get("n1")!.find((l) => l.event === "ready")!;
    expect(ready).toMatchObject({ node: "n1", cluster: "sec", natsUser: "n1", nats: expect.stringContaining("127.0.0.1") });
    expect(typeof ready.version).toBe("string");
  });

  it("an application cannot read another's answers: subscribing to bob's inbox or to _INBOX.> is refused", async () => {
    const bob = await client("bob", "_INBOX_bob");
    const spy = await raw("alice", "_INBOX_alice");
    for (const subject of ["_INBOX_bob.>", "_INBOX.>", ">"]) {
      const sub = spy.subscribe(subject);
      const seen: string[] = [];
      const done = (async () => {
        for await (const m of sub) seen.push(dec.decode(m.data));
      })();
      await expect(done).rejects.toBeInstanceOf(natsErrors.PermissionViolationError);
      expect(seen).toEqual([]);
    }
    // Bob still works, and alice's connection survived the refusals.
    await bob.put("after-spy", "bob's value");
    expect((await bob.get("after-spy")).text()).toBe("bob's value");
    expect(spy.isClosed()).toBe(false);
  });

  it("a client on the shared _INBOX prefix is told unauthorized, not unavailable", async () => {
    const c = await connect({ servers: nats.url, cluster: "sec", user: "alice", pass: PASSWORDS.alice, timeoutMs: 3_000, members: MEMBERS });
    clients.push(c);
    const err = await c.get("shared").then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(UnauthorizedError);
    expect((err as UnauthorizedError).code).toBe("unauthorized");
  });

  it("a wrong password is unauthorized at connect", async () => {
    const err = await connect({ servers: nats.url, cluster: "sec", user: "alice", pass: "wrong", inboxPrefix: "_INBOX_alice" }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(UnauthorizedError);
  });

  it("a request whose reply subject is a peer subject is dropped: nothing is published there, and the drop is logged with the subject", async () => {
    const n1 = nodes.get("n1")!;
    // An observer with n2's credentials on n2's peer subject (the real n2 listens there too).
    const observer = await raw("n2", "_INBOX_n2");
    const onPeer: Uint8Array[] = [];
    observer.subscribe("paxosstore.sec.peer.n2", { callback: (_e, m) => void onPeer.push(m.data) });
    await observer.flush();
    const attacker = await raw("alice", "_INBOX_alice");
    const before = (n1.stats().api as { badReplySubjects: number }).badReplySubjects;
    for (let i = 0; i < 30; i++) attacker.publish("paxosstore.sec.api.n1", enc.encode(JSON.stringify({ op: "status" })), { reply: "paxosstore.sec.peer.n2" });
    attacker.publish("paxosstore.sec.api.n1", enc.encode(JSON.stringify({ op: "get", key: "shared" })), { reply: "paxosstore.sec.peer.n2" });
    await attacker.flush();
    await waitFor("n1 counted the dropped requests", async () => (n1.stats().api as { badReplySubjects: number }).badReplySubjects >= before + 31, 10_000, 20);
    // A round trip through n1 after them: had n1 answered them, those answers were published before this one.
    const alice = await client("alice", "_INBOX_alice");
    await alice.status("n1");
    await observer.flush();
    const answers = onPeer.filter((d) => d[0] === 0x7b /* '{': a JSON answer, never a msgpack peer frame */);
    expect(answers).toEqual([]);
    const drops = logs.get("n1")!.filter((l) => l.event === "bad_reply_subject");
    expect(drops.length).toBeGreaterThan(0);
    expect(drops.length).toBeLessThanOrEqual(20); // rate-limited: 31 drops, at most 20 lines
    expect(drops[0]).toMatchObject({ reply: "paxosstore.sec.peer.n2" });
    expect(String(drops[0]!.msg)).toContain("paxosstore.sec.peer.n2");
    expect((nodes.get("n2")!.stats().transport as { badFrames: number }).badFrames).toBe(0);
    const status = (await (await fetch(`http://127.0.0.1:${httpPort}/status.json`)).json()) as { requests: { badReplySubjects: number } };
    expect(status.requests.badReplySubjects).toBeGreaterThanOrEqual(31);
  });

  it("peer up and peer down are logged; readiness holds while a majority is up", async () => {
    const n1log = logs.get("n1")!;
    await waitFor("n1 saw n2 and n3 come up", async () => ["n2", "n3"].every((p) => n1log.some((l) => l.event === "peer_up" && l.peer === p)), 10_000, 50);
    await nodes.get("n3")!.stop();
    nodes.delete("n3");
    const down = await waitFor("n1 logs n3 down", async () => n1log.find((l) => l.event === "peer_down" && l.peer === "n3"), 30_000, 100);
    expect(down).toMatchObject({ level: 40, peer: "n3" });
    expect(logs.get("n3")!.filter((l) => l.event === "shutdown").map((l) => l.phase)).toEqual(["stop_accepting", "calls_done", "flush_storage", "drain_nats", "stopped"]);
    const r = await fetch(`http://127.0.0.1:${httpPort}/readyz`);
    expect(r.status).toBe(200); // n1 and n2: a majority of three
  }, 60_000);

  it("a node's user cannot read another node's peer subject, nor publish frames to itself", async () => {
    const n1user = await raw("n1", "_INBOX_n1");
    const sub = n1user.subscribe("paxosstore.sec.peer.n2");
    await expect((async () => { for await (const _m of sub) { /* nothing */ } })()).rejects.toBeInstanceOf(natsErrors.PermissionViolationError);
    const errs: Error[] = [];
    void (async () => { for await (const s of n1user.status()) if (s.type === "error") errs.push(s.error); })();
    n1user.publish("paxosstore.sec.peer.n1", new Uint8Array([1]));
    await n1user.flush();
    await waitFor("the server refused the publish", async () => errs.length > 0, 5_000, 20);
    expect(errs[0]).toBeInstanceOf(natsErrors.PermissionViolationError);
  });
});
