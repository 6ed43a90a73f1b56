// A 3-node cluster over a real nats-server and LevelDB, node processes started from source:
// agreement across nodes (one group, then 200 groups at once), bad peer frames, one key under
// compare-and-set contention from every node with concurrent readers (no lost or doubled
// update, reads in real-time order), and a graceful SIGTERM with requests in flight. One
// cluster for the file; the SIGTERM test comes last because it restarts a node.

import { pack } from "msgpackr";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodePeerFrame } from "../../src/protocol/peerCodec.js";
import { startCluster, type TestCluster } from "../helpers/cluster.js";
import { attempt, badFrameLines, expectLedgerEverywhere, fmt, Ledger, ok, percentile, sleep, waitFor, type Attempt, type Body } from "./support.js";

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
      const put = await c.request({ op: "put", key: `k-${writer}`, value: `from ${writer}`, requestId: `seq-${writer}` }, writer);
      expect(put).toMatchObject({ ok: true });
      for (const reader of c.members) {
        const got = await c.request({ op: "get", key: `k-${writer}` }, reader);
        expect(got).toMatchObject({ ok: true, found: true, value: `from ${writer}`, version: put.version });
      }
    }
  });

  it("200 groups written at once through random nodes: each write is seen at once through every other node, and all nodes agree", async () => {
    const groups = Array.from({ length: 200 }, (_, i) => `many-${i}`);
    let seed = 42;
    const pick = (): string => c.members[(seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % c.members.length]!;
    const versions = new Map<string, number>();
    // Two rounds: the first write of a group (nobody owns its fast round yet: Prepare), then an
    // overwrite through another random node. Right after each ack, a linearizable read through
    // every OTHER node must see it (a read that starts after a write's ack sees the write).
    for (const round of [1, 2]) {
      const t0 = performance.now();
      await Promise.all(
        groups.map(async (g) => {
          const writer = pick();
          const value = `${g} round ${round} via ${writer}`;
          const put = await ok(c, { op: "put", group: g, key: "k", value, requestId: `many-${g}-${round}` }, writer);
          const version = put.version as number;
          expect(version).toBeGreaterThan(versions.get(g) ?? 0);
          versions.set(g, version);
          await Promise.all(
            c.members
              .filter((n) => n !== writer)
              .map(async (reader) => {
                const got = await ok(c, { op: "get", group: g, key: "k" }, reader);
                expect(got, `${g} read through ${reader} after the ack from ${writer}`).toMatchObject({ found: true, value, version });
              }),
          );
        }),
      );
      console.log(`[agreement] round ${round}: 200 groups written and each read through 2 other nodes in ${(performance.now() - t0).toFixed(0)} ms`);
    }
    // Every group through every node: linearizable, then stale (after the linearizable read
    // each replica holds the data itself), all equal.
    for (const consistency of ["linearizable", "stale"] as const) {
      const seen = await Promise.all(
        c.members.map((node) =>
          Promise.all(groups.map(async (g) => ({ g, r: await ok(c, { op: "get", group: g, key: "k", consistency }, node) }))),
        ),
      );
      for (const perNode of seen)
        for (const { g, r } of perNode) expect(r, `${g} ${consistency}`).toMatchObject({ found: true, version: versions.get(g), value: expect.stringMatching(new RegExp(`^${g} round 2 via`)) });
    }
  });

  it("malformed and foreign peer frames are dropped and counted; the node keeps serving and is not fooled", async () => {
    const prefix = `paxosstore.${c.cluster}`;
    const target = "n1";
    // A group with data, and a forged catch-up snapshot that would replace it if believed:
    // from a real member ("n2") but for another cluster, and from a non-member in ours.
    const put = await ok(c, { op: "put", group: "bf", key: "real", value: "yes", requestId: "bf-1" }, target);
    const forgedSnapshot = (from: string, cluster: string): Uint8Array =>
      encodePeerFrame({
        from,
        cluster,
        messages: [
          {
            type: "catchupSnapshot",
            group: "bf",
            at: { index: 99, ballot: { round: 7, node: from }, value: { id: "forged/1", commands: [] } },
            after: null,
            items: [["phantom", { value: new TextEncoder().encode("forged"), version: 99 }]],
            requests: [],
            next: null,
          },
        ],
      } as never);
    let r = 0x12345;
    const garbage = new Uint8Array(512).map(() => (r = (Math.imul(r, 1103515245) + 12345) >>> 0) >>> 24);
    const bad: [string, Uint8Array][] = [
      ["garbage bytes", garbage],
      ["empty payload", new Uint8Array(0)],
      ["truncated msgpack", pack({ from: "n2", cluster: c.cluster, messages: [] }).subarray(0, 9)],
      ["msgpack, not a map", pack(["n2", c.cluster, []])],
      ["msgpack string", pack("hello")],
      ["map of the wrong shape", pack({ hello: "world" })],
      ["message of the wrong shape", pack({ from: "n2", cluster: c.cluster, messages: [{ type: "accept", group: "bf", index: "one" }] })],
      ["unknown message type", pack({ from: "n2", cluster: c.cluster, messages: [{ type: "takeover", group: "bf" }] })],
      ["negative ballot", pack({ from: "n2", cluster: c.cluster, messages: [{ type: "prepare", group: "bf", index: 2, ballot: { round: -1, node: "n2" }, prev: null }] })],
      ["another cluster (a forged snapshot)", forgedSnapshot("n2", "other")],
      ["a non-member sender (a forged snapshot)", forgedSnapshot("n9", c.cluster)],
      ["itself as sender", encodePeerFrame({ from: target, cluster: c.cluster, messages: [] })],
      ["an invalid node id", pack({ from: "n 2.*", cluster: c.cluster, messages: [] })],
      ["array32 header claiming 4G elements", Uint8Array.from([0x83, 0xa4, 0x66, 0x72, 0x6f, 0x6d, 0xa2, 0x6e, 0x32, 0xa8, ...new TextEncoder().encode("messages"), 0xdd, 0xff, 0xff, 0xff, 0xff])],
      ["bin32 header claiming 4 GB", Uint8Array.from([0xc6, 0xff, 0xff, 0xff, 0xf0, 1, 2, 3])],
      ["a frame over the frame limit (1,000,000 bytes, under NATS max_payload)", new Uint8Array(1_000_000).fill(0x90)],
    ];
    const before = badFrameLines(c, target).length;
    for (const [, bytes] of bad) c.nc.publish(`${prefix}.peer.${target}`, bytes);
    await c.nc.flush();
    const lines = await waitFor("every bad frame logged", async () => {
      const l = badFrameLines(c, target);
      return l.length >= before + bad.length ? l : false;
    }, 10_000);
    await sleep(300); // nothing more than one line per frame
    expect(badFrameLines(c, target).length - before).toBe(bad.length);
    const reasons = lines.slice(before).map((l) => (JSON.parse(l) as { reason: string }).reason);
    console.log(`[bad frames] ${target} dropped ${bad.length} frames:\n  ${reasons.join("\n  ")}`);
    expect(reasons.some((x) => x.includes('cluster "other"'))).toBe(true);
    expect(reasons.some((x) => x.includes('non-member "n9"'))).toBe(true);
    expect(reasons.some((x) => x.includes("over frameBytesMax"))).toBe(true);

    // Alive, serving, and not fooled: no phantom key, the real one at its version.
    expect(c.nodes.get(target)!.child?.exitCode ?? null).toBeNull();
    for (const consistency of ["stale", "linearizable"])
      expect(await ok(c, { op: "scan", group: "bf", consistency }, target)).toMatchObject({ items: [{ key: "real", value: "yes", version: put.version }], index: put.version });
    const again = await ok(c, { op: "put", group: "bf", key: "after", value: "still here", requestId: "bf-2" }, target);
    expect(again.version).toBe((put.version as number) + 1);
    for (const node of c.members) expect(await ok(c, { op: "get", group: "bf", key: "after" }, node)).toMatchObject({ value: "still here" });
    // The others saw nothing of it.
    for (const other of c.members.filter((n) => n !== target)) expect(badFrameLines(c, other)).toEqual([]);
  });

  it("one key under contention from every node: compare-and-set increments are never lost or doubled, and reads never go back in time", async () => {
    interface Op { readonly start: number; readonly end: number; readonly value: number; readonly version: number; readonly node: string }
    const increments: Op[] = [];
    const reads: Op[] = [];
    const target = 30;
    let conflicts = 0;
    const retries: string[] = [];
    const read = async (node: string): Promise<Op> => {
      const start = performance.now();
      const r = await ok(c, { op: "get", group: "lin", key: "counter" }, node);
      const end = performance.now();
      return r.found ? { start, end, value: Number(r.value), version: r.version as number, node } : { start, end, value: 0, version: 0, node };
    };
    let n = 0;
    const incrementer = async (node: string): Promise<void> => {
      while (increments.length < target) {
        const cur = await read(node);
        const requestId = `lin-${node}-${++n}`;
        const start = performance.now();
        for (;;) {
          const a = await attempt(c, { op: "cas", group: "lin", key: "counter", version: cur.version, value: String(cur.value + 1), requestId }, node, 3_000);
          if (a.kind === "ok") {
            increments.push({ start, end: performance.now(), value: cur.value + 1, version: a.body.version as number, node });
            break;
          }
          if (a.kind === "error" && (a.body.error as Body).code === "conflict") {
            conflicts++;
            break;
          }
          // No decision in time (contention: proposers on three nodes duel for one group):
          // retry the same request id, which is applied at most once.
          const code = a.kind === "error" ? ((a.body.error as Body).code as string) : a.kind;
          expect(["timeout", "unavailable"], `cas via ${node}: ${JSON.stringify(a)}`).toContain(code);
          retries.push(`${node}:${code}@${a.ms.toFixed(0)}ms`);
        }
      }
    };
    let reading = true;
    const reader = async (node: string): Promise<void> => {
      while (reading) reads.push(await read(node));
    };
    const readers = c.members.map(reader);
    try {
      await Promise.all(c.members.map(incrementer));
    } finally {
      reading = false;
      await Promise.allSettled(readers);
    }
    await Promise.all(readers);
    const final = await read("n1");
    const lat = increments.map((o) => o.end - o.start);
    console.log(
      `[cas] ${increments.length} increments acked (${conflicts} conflicts, retried after no decision: ${retries.join(" ") || "none"}), ${reads.length} concurrent reads; final value ${final.value} at version ${final.version}; acked cas latency p50 ${fmt(percentile(lat, 50))}, max ${fmt(Math.max(...lat))}`,
    );

    // Every acked increment counted exactly once: the values are 1..N, at increasing versions.
    expect(final.value).toBe(increments.length);
    const byValue = [...increments].sort((a, b) => a.value - b.value);
    expect(byValue.map((o) => o.value)).toEqual(byValue.map((_, i) => i + 1));
    for (let i = 1; i < byValue.length; i++) expect(byValue[i]!.version).toBeGreaterThan(byValue[i - 1]!.version);
    const versionOf = new Map(byValue.map((o) => [o.value, o.version]));
    // Each read saw a state some write made (value and version together)...
    for (const r of reads) if (r.value > 0) expect(r.version, `read of ${r.value} via ${r.node}`).toBe(versionOf.get(r.value));
    // ...and respects real time: what completed before it began is visible to it.
    const done = [...reads, ...increments].sort((a, b) => a.end - b.end);
    let maxDone = 0;
    let j = 0;
    for (const r of [...reads].sort((a, b) => a.start - b.start)) {
      while (j < done.length && done[j]!.end < r.start) maxDone = Math.max(maxDone, done[j++]!.version);
      expect(r.version, `read via ${r.node} began after version ${maxDone} was acked or read`).toBeGreaterThanOrEqual(maxDone);
    }
    // And nothing it returned was written after it ended.
    for (const r of reads) for (const w of increments) if (r.end < w.start) expect(r.version).toBeLessThan(w.version);
  });

  it("SIGTERM with requests in flight: the node answers every request it took, exits 0, and restarts with everything", async () => {
    const victim = "n2";
    const ledger = new Ledger("term");
    const calls: Promise<void>[] = [];
    const outcomes: Attempt["kind"][] = [];
    const errors: string[] = [];
    // Open-loop load on the victim alone (no fallback): requests keep arriving whatever the
    // answers, so some are on their way to the node while it stops taking new ones.
    let pumping = true;
    const pump = (async () => {
      for (let i = 0; pumping; i++) {
        for (let j = 0; j < 3; j++) {
          const w = ledger.next(`term-${(i + j) % 5}`, `c${j}`);
          calls.push(
            attempt(c, { op: "put", group: w.group, key: w.key, value: w.value, requestId: w.requestId }, victim, 4_000).then((a) => {
              outcomes.push(a.kind);
              if (a.kind === "ok") {
                w.status = "acked";
                w.version = a.body.version as number;
              } else {
                w.status = "maybe";
                if (a.kind === "error") errors.push(JSON.stringify(a.body.error));
              }
            }),
          );
        }
        await sleep(2);
      }
    })();
    await sleep(700);
    const t0 = performance.now();
    const code = await c.stop(victim);
    const stopMs = performance.now() - t0;
    await sleep(100);
    pumping = false;
    await pump;
    await Promise.all(calls);
    const count = (k: string): number => outcomes.filter((o) => o === k).length;
    console.log(
      `[sigterm] ${victim} exited ${code} after ${stopMs.toFixed(0)} ms; ${outcomes.length} requests: ok ${count("ok")}, error answers ${count("error")}, no responders ${count("noResponders")}, timeouts ${count("timeout")}, failed ${count("failed")}`,
    );
    expect(code).toBe(0);
    expect(count("ok")).toBeGreaterThan(10);
    expect(count("noResponders")).toBeGreaterThan(0); // the load did outlive the node
    // A request the node took got an answer; one it did not take found no responder. None hung.
    expect(count("timeout"), "requests the stopping node took and never answered").toBe(0);
    expect(count("failed")).toBe(0);
    expect(errors, "error answers while stopping").toEqual([]);

    await c.start(victim);
    await expectLedgerEverywhere(c, [ledger]);
  });
});
