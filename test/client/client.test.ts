// The TypeScript client against a real 3-node cluster: every operation in both encodings
// (json and msgpack), cas conflicts as typed errors, txn branches, scan paging, stale and
// linearizable reads, status and routing to the preferred replica.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TIMEOUT_HEADER as NODE_TIMEOUT_HEADER } from "../../src/actors/apiHandler.js";
import {
  BadRequestError,
  ConflictError,
  PaxosStoreError,
  TIMEOUT_HEADER,
  TooLargeError,
  connect,
  preferredReplica,
  replicasFor,
  type Encoding,
  type PaxosStoreClient,
} from "../../src/client/index.js";
import { startCluster, type TestCluster } from "../helpers/cluster.js";

let c: TestCluster;
beforeAll(async () => {
  c = await startCluster({ nodes: 3, cluster: "cl" });
});
afterAll(async () => {
  await c?.close();
});

it("the client's timeout header is the one the node reads", () => {
  expect(TIMEOUT_HEADER).toBe(NODE_TIMEOUT_HEADER);
});

it("connect learns the members with a status; status(node) asks that node", async () => {
  const client = await connect({ servers: c.url, cluster: c.cluster });
  try {
    expect(client.members).toEqual(c.members);
    for (const node of c.members) {
      const s = await client.status(node);
      expect(s).toMatchObject({ node, cluster: c.cluster, members: c.members, version: expect.any(String) });
      expect(s.uptimeMs).toBeGreaterThan(0);
      expect(s.membersSeen).toContain(node);
      expect(s.limits.valueBytesMax).toBe(256 * 1024);
    }
    const any = await client.status();
    expect(c.members).toContain(any.node);
  } finally {
    await client.close();
  }
});

for (const encoding of ["json", "msgpack"] as const satisfies readonly Encoding[]) {
  describe(`every operation, ${encoding}`, () => {
    let client: PaxosStoreClient;
    const k = (s: string): string => `${encoding}:${s}`;
    beforeAll(async () => {
      client = await connect({ servers: c.url, cluster: c.cluster, encoding, timeoutMs: 10_000 });
    });
    afterAll(async () => {
      await client.close();
    });

    it("put, get (text, bytes, JSON), delete on single keys", async () => {
      const put = await client.put(k("greeting"), "hello");
      expect(put.version).toBeGreaterThan(0);
      const got = await client.get(k("greeting"));
      expect(got.found).toBe(true);
      if (!got.found) throw new Error("unreachable");
      expect(got.text()).toBe("hello");
      expect(got.value).toEqual(new TextEncoder().encode("hello"));
      expect(got.version).toBe(put.version);
      expect(got.index).toBeGreaterThanOrEqual(put.version);

      // Binary values (not UTF-8, control bytes) come back byte for byte in both encodings.
      const bytes = new Uint8Array([0, 1, 2, 0xff, 0xfe, 10, 0x80]);
      const putBin = await client.put(k("bin"), bytes);
      const gotBin = await client.get(k("bin"));
      expect(gotBin.value).toEqual(bytes);
      expect(gotBin.version).toBe(putBin.version);
      // Text with non-ASCII characters stays text.
      await client.put(k("unicode"), "héllo wörld ✓ 𝄞");
      expect((await client.get(k("unicode"))).text()).toBe("héllo wörld ✓ 𝄞");
      // An empty value is a value.
      await client.put(k("empty"), "");
      const empty = await client.get(k("empty"));
      expect(empty.found && empty.value.length).toBe(0);

      await client.putJSON(k("json"), { name: "Ann", tags: ["a", "b"], n: 3 });
      expect(await client.getJSON(k("json"))).toEqual({ name: "Ann", tags: ["a", "b"], n: 3 });
      expect(await client.getJSON(k("no-such-json"))).toBeUndefined();

      const del = await client.delete(k("greeting"));
      expect(del.existed).toBe(true);
      expect(del.version).toBeGreaterThan(put.version);
      const gone = await client.get(k("greeting"));
      expect(gone).toMatchObject({ found: false, value: null, version: 0 });
      expect(gone.text()).toBeNull();
      const again = await client.delete(k("greeting"));
      expect(again.existed).toBe(false);
    });

    it("a put with a request id is applied once: a retry answers the first result", async () => {
      const requestId = `${encoding}-idem-1`;
      const first = await client.put(k("idem"), "one", { requestId });
      const retry = await client.put(k("idem"), "one", { requestId });
      expect(retry.version).toBe(first.version);
      const got = await client.get(k("idem"));
      expect(got.version).toBe(first.version);
    });

    it("cas: create-if-absent, update at the right version, ConflictError with the current version otherwise", async () => {
      const created = await client.cas(k("counter"), 0, "1");
      const updated = await client.cas(k("counter"), created.version, "2");
      expect(updated.version).toBeGreaterThan(created.version);
      const err = await client.cas(k("counter"), created.version, "3").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConflictError);
      expect(err).toBeInstanceOf(PaxosStoreError);
      const conflict = err as ConflictError;
      expect(conflict.code).toBe("conflict");
      expect(conflict.details).toEqual({ key: k("counter"), expected: created.version, current: updated.version });
      // create-if-absent on an existing key conflicts too; nothing was written.
      const exists = (await client.cas(k("counter"), 0, "x").catch((e: unknown) => e)) as ConflictError;
      expect(exists).toBeInstanceOf(ConflictError);
      expect(exists.details.current).toBe(updated.version);
      expect((await client.get(k("counter"))).text()).toBe("2");
    });

    it("a group handle: keys of one group share one log; txn success and failure branches", async () => {
      const user = client.group(k("user:42"));
      const balance = await user.put("balance", "100");
      const pending = await user.put("pending", "x");
      expect(pending.version).toBeGreaterThan(balance.version); // one log: versions increase across keys

      const ok = await user.txn({
        compares: [
          { key: "balance", version: balance.version },
          { key: "lock", exists: false },
          { key: "balance", value: "100" },
        ],
        success: [
          { op: "put", key: "balance", value: "90" },
          { op: "delete", key: "pending" },
        ],
        failure: [{ op: "put", key: "failed", value: "yes" }],
      });
      expect(ok.succeeded).toBe(true);
      expect(ok.currentVersions).toEqual([balance.version, 0, balance.version]);
      expect(ok.results).toEqual([
        { op: "put", version: ok.version },
        { op: "delete", version: ok.version, existed: true },
      ]);
      expect((await user.get("balance")).text()).toBe("90");
      expect((await user.get("pending")).found).toBe(false);

      // The same compares again fail (balance moved): the failure branch runs, not an error.
      const failed = await user.txn({
        compares: [{ key: "balance", version: balance.version }],
        success: [{ op: "put", key: "balance", value: "80" }],
        failure: [{ op: "put", key: "failed", value: new Uint8Array([1, 2, 3]) }],
      });
      expect(failed.succeeded).toBe(false);
      expect(failed.currentVersions).toEqual([ok.version]);
      expect(failed.results).toEqual([{ op: "put", version: failed.version }]);
      expect((await user.get("balance")).text()).toBe("90");
      expect((await user.get("failed")).value).toEqual(new Uint8Array([1, 2, 3]));

      // Version compares other than "=".
      const cmp = await user.txn({ compares: [{ key: "balance", version: 0, cmp: ">" }], success: [{ op: "put", key: "seen", value: "1" }] });
      expect(cmp.succeeded).toBe(true);
      // An empty txn is an atomic no-op write that succeeds.
      const empty = await user.txn({});
      expect(empty).toMatchObject({ succeeded: true, results: [] });

      // cas and delete inside the group.
      const cas = await user.cas("balance", ok.version, "70");
      expect(cas.version).toBeGreaterThan(ok.version);
      await expect(user.cas("balance", ok.version, "60")).rejects.toMatchObject({ code: "conflict", details: { current: cas.version } });
      expect((await user.delete("seen")).existed).toBe(true);
      await user.putJSON("profile", { name: "Ann" });
      expect(await user.getJSON("profile")).toEqual({ name: "Ann" });
    });

    it("scan pages through a group with cursors, and the async iterators follow them", async () => {
      const g = client.group(k("scan"));
      const keys = Array.from({ length: 23 }, (_, i) => `contacts/${String(i).padStart(2, "0")}`);
      await g.txn({ success: keys.map((key) => ({ op: "put" as const, key, value: `v-${key}` })) });
      await g.put("other/1", "not a contact");

      const seen: string[] = [];
      let after: string | undefined;
      let pages = 0;
      for (;;) {
        const page = await g.scan({ prefix: "contacts/", after, limit: 5 });
        pages++;
        expect(page.items.length).toBeLessThanOrEqual(5);
        for (const it of page.items) {
          expect(it.text()).toBe(`v-${it.key}`);
          expect(it.version).toBeGreaterThan(0);
          seen.push(it.key);
        }
        if (page.next === undefined) break;
        expect(page.next).toBe(page.items[page.items.length - 1]!.key);
        after = page.next;
      }
      expect(seen).toEqual(keys);
      expect(pages).toBe(5);

      const all: string[] = [];
      for await (const it of g.scanAll({ prefix: "contacts/", limit: 7 })) all.push(it.key);
      expect(all).toEqual(keys);
      let pageCount = 0;
      for await (const page of g.scanPages({ limit: 10 })) pageCount += page.items.length > 0 ? 1 : 0;
      expect(pageCount).toBe(3); // 24 keys in pages of 10
      const everything = await g.scan({ limit: 1000 });
      expect(everything.items.map((i) => i.key)).toEqual([...keys, "other/1"]);
      expect(everything.next).toBeUndefined();
      const none = await g.scan({ prefix: "nothing/" });
      expect(none.items).toEqual([]);
      const stale = await g.scan({ prefix: "other/", consistency: "stale" });
      expect(stale.items.map((i) => i.text())).toEqual(["not a contact"]);
    });

    it("stale and linearizable gets through every node see the write", async () => {
      const put = await client.put(k("read-me"), "fresh");
      // Every node through a client pinned to it: linearizable reads see the write at once.
      for (const node of c.members) {
        const pinned = await connect({ servers: c.url, cluster: c.cluster, encoding, node });
        try {
          const lin = await pinned.get(k("read-me"), { consistency: "linearizable" });
          expect(lin).toMatchObject({ found: true, version: put.version });
          // After a linearizable read through a replica, its stale read has the value too.
          const stale = await pinned.get(k("read-me"), { consistency: "stale" });
          expect(stale).toMatchObject({ found: true, version: put.version });
          expect(stale.text()).toBe("fresh");
        } finally {
          await pinned.close();
        }
      }
      const staleMissing = await client.get(k("never-written"), { consistency: "stale" });
      expect(staleMissing.found).toBe(false);
    });

    it("bad input is refused with typed errors and is not retried", async () => {
      await expect(client.put("", "x")).rejects.toBeInstanceOf(BadRequestError);
      await expect(client.put("k".repeat(2000), "x")).rejects.toMatchObject({ code: "too_large", details: { limit: "keyBytesMax" } });
      const big = await client.put(k("big"), new Uint8Array(300_000)).catch((e: unknown) => e);
      expect(big).toBeInstanceOf(TooLargeError);
      expect((big as TooLargeError).details).toMatchObject({ limit: "valueBytesMax", size: 300_000 });
      // Larger than a frame: refused before it is sent.
      await expect(client.put(k("huge"), new Uint8Array(2_000_000))).rejects.toMatchObject({ code: "too_large", details: { limit: "frameBytesMax" } });
      await expect(client.group(k("g")).scan({ limit: 0 })).rejects.toMatchObject({ code: "bad_request", details: { field: "limit" } });
      await expect(client.cas(k("c"), -1, "x")).rejects.toMatchObject({ code: "bad_request", details: { field: "version" } });
      await expect(client.put(k("id"), "x", { requestId: "" })).rejects.toMatchObject({ code: "bad_request", details: { field: "requestId" } });
    });

    it("a value at the size limit goes through", async () => {
      const value = new Uint8Array(256 * 1024).map((_, i) => i % 251);
      const put = await client.put(k("max"), value);
      const got = await client.get(k("max"));
      expect(got.version).toBe(put.version);
      expect(got.value).toEqual(value);
    });
  });
}

it("routes a group's calls to its preferred replica first", async () => {
  const client = await connect({ servers: c.url, cluster: c.cluster });
  // Count the requests each node's own subject receives (a plain NATS subscriber sees them too).
  const counts = new Map<string, number>();
  const subs = c.members.map((node) =>
    c.nc.subscribe(`paxosstore.${c.cluster}.api.${node}`, { callback: () => void counts.set(node, (counts.get(node) ?? 0) + 1) }),
  );
  await c.nc.flush();
  try {
    const groups = Array.from({ length: 30 }, (_, i) => `route-${i}`);
    const attemptsBefore = client.stats.attempts; // connect()'s status, on the queue subject
    for (const g of groups) await client.group(g).put("k", "v");
    const expected = new Map<string, number>();
    for (const g of groups) {
      const p = preferredReplica(g, c.members)!;
      expect(replicasFor(g, c.members)[0]).toBe(p);
      expected.set(p, (expected.get(p) ?? 0) + 1);
    }
    // Each call went to its preferred replica first; a slow one (a cold group on a busy
    // machine) may also have been hedged to another replica: every request is an attempt.
    // A hedge that wins makes the silent replica a suspect for a while (later calls go to the
    // next replica first), so the per-node counts hold only when nothing was hedged.
    if (client.stats.hedges === 0) for (const node of c.members) expect(counts.get(node) ?? 0, node).toBeGreaterThanOrEqual(expected.get(node) ?? 0);
    expect([...counts.values()].reduce((a, b) => a + b, 0)).toBe(client.stats.attempts - attemptsBefore);
  } finally {
    for (const s of subs) s.unsubscribe();
    await client.close();
  }
});

it("a closed client refuses calls; connect refuses bad options and an unreachable NATS", async () => {
  const client = await connect({ servers: c.url, cluster: c.cluster });
  await client.close();
  await expect(client.get("k")).rejects.toMatchObject({ code: "unavailable", message: expect.stringContaining("closed") });
  await expect(connect({ servers: c.url, cluster: "bad.name" })).rejects.toBeInstanceOf(BadRequestError);
  await expect(connect({ servers: c.url, cluster: c.cluster, timeoutMs: 0 })).rejects.toBeInstanceOf(BadRequestError);
  await expect(connect({ servers: "nats://127.0.0.1:1", timeoutMs: 1000 })).rejects.toMatchObject({ code: "unavailable", message: expect.stringContaining("cannot connect") });
});

it("a cluster name nobody serves: calls end by their deadline with UnavailableError", async () => {
  // A deadline with room for NATS's "no responders" on a busy machine (with 600 ms, an attempt
  // of half of it could time out first: then the client rightly cannot say "unavailable").
  const client = await connect({ servers: c.url, cluster: "nobody", timeoutMs: 2_000 });
  try {
    expect(client.members).toBeNull();
    const t0 = Date.now();
    const err = (await client.get("k").catch((e: unknown) => e)) as PaxosStoreError;
    expect(err.code).toBe("unavailable");
    expect(err.message).toContain("paxosstore.nobody.api");
    expect(Date.now() - t0).toBeLessThan(10_000);
  } finally {
    await client.close();
  }
});

it("a client closed while a write is in flight: timeout (the write may have been delivered), never unavailable", async () => {
  // A "node" that takes requests and never answers: the write is delivered and in flight.
  const { connect: natsConnect } = await import("@nats-io/transport-node");
  const silent = await natsConnect({ servers: c.url });
  const delivered: string[] = [];
  silent.subscribe("paxosstore.silent.api.>", { callback: (_err, msg) => void delivered.push(msg.subject) });
  await silent.flush();
  const client = await connect({ servers: c.url, cluster: "silent", members: ["s1"], timeoutMs: 30_000 });
  try {
    const write = client.put("k", "v", { requestId: "closed-in-flight" }).catch((e: unknown) => e);
    const read = client.get("k").catch((e: unknown) => e);
    const until = Date.now() + 20_000;
    while (delivered.length < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    expect(delivered.length).toBe(2);
    await client.close();
    expect(await write).toMatchObject({ code: "timeout", details: { requestId: "closed-in-flight" } });
    // A read changes nothing: "unavailable" is the truth for it.
    expect(await read).toMatchObject({ code: "unavailable" });
  } finally {
    await client.close();
    await silent.close();
  }
});
