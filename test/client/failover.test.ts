// Client failover against real nodes: streams of writes through the client while the groups'
// preferred node is killed with SIGKILL. Calls continue through the other replicas; afterwards
// every acknowledged write is readable through every node, and no retried write was applied
// twice.
//
// How a double application would show: each write is a txn "if n = i then n := i+1, w/<i> := 1
// else dup/<i> := 1" with its own request id, from one sequential writer per group. A retry
// that the nodes applied a second time would find n = i+1 and run the failure branch, leaving
// a dup/<i> key; a lost acknowledged write would leave n short and w/<i> missing.

import { afterAll, beforeAll, expect, it } from "vitest";
import {
  connect,
  preferredReplica,
  TimeoutError,
  UnavailableError,
  type KeyGroup,
  type PaxosStoreClient,
} from "../../src/client/index.js";
import { startCluster, type TestCluster } from "../helpers/cluster.js";

let c: TestCluster;
beforeAll(async () => {
  c = await startCluster({ nodes: 3, cluster: "fo" });
});
afterAll(async () => {
  await c?.close();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Stream {
  readonly group: KeyGroup;
  /** Writes acknowledged so far (the counter's value the cluster must hold at least). */
  acked: number;
  /** Calls that ended with timeout/unavailable and were sent again with the same request id. */
  retried: number;
  /** Latency of each acknowledged write, ms. */
  readonly latencies: number[];
}

async function writeStream(s: Stream, until: () => boolean): Promise<void> {
  while (!until()) {
    const i = s.acked;
    const requestId = `${s.group.name}-w-${i}`;
    const t0 = performance.now();
    for (;;) {
      try {
        const r = await s.group.txn(
          {
            compares: [{ key: "n", value: String(i) }],
            success: [
              { op: "put", key: "n", value: String(i + 1) },
              { op: "put", key: `w/${String(i).padStart(5, "0")}`, value: "1" },
            ],
            failure: [{ op: "put", key: `dup/${String(i).padStart(5, "0")}`, value: "1" }],
          },
          { requestId },
        );
        expect(r.succeeded, `${requestId}: the failure branch ran: applied twice, or a write was lost`).toBe(true);
        break;
      } catch (e) {
        // The documented recovery: retry with the SAME request id.
        if (e instanceof TimeoutError || e instanceof UnavailableError) {
          s.retried++;
          continue;
        }
        throw e;
      }
    }
    s.latencies.push(performance.now() - t0);
    s.acked = i + 1;
  }
}

it("kill -9 of the preferred node mid-stream: writes and reads continue, nothing acknowledged is lost, nothing is applied twice", async () => {
  const victim = "n1";
  // Groups whose preferred replica is the victim, so every stream loses its first choice.
  const names: string[] = [];
  for (let i = 0; names.length < 4; i++) if (preferredReplica(`fo-${i}`, c.members) === victim) names.push(`fo-${i}`);

  const client: PaxosStoreClient = await connect({ servers: c.url, cluster: c.cluster, timeoutMs: 3_000 });
  try {
    expect(client.members).toEqual(c.members);
    const streams: Stream[] = names.map((n) => ({ group: client.group(n), acked: 0, retried: 0, latencies: [] }));
    for (const s of streams) await s.group.put("n", "0");

    let stop = false;
    let killedAt = Infinity;
    const ackedAtKill: number[] = [];
    // A linearizable reader alongside: a read that starts after an ack must see it.
    let reads = 0;
    const reader = (async () => {
      const s = streams[0]!;
      while (!stop) {
        const floor = s.acked;
        try {
          const r = await s.group.get("n");
          expect(Number(r.text())).toBeGreaterThanOrEqual(floor);
          reads++;
        } catch (e) {
          if (!(e instanceof TimeoutError || e instanceof UnavailableError)) throw e;
        }
      }
    })();
    const writers = streams.map((s) => writeStream(s, () => stop));

    await sleep(1_000);
    for (const s of streams) ackedAtKill.push(s.acked);
    killedAt = performance.now();
    await c.kill9(victim);
    await sleep(2_500);
    stop = true;
    await Promise.all([...writers, reader]);

    const total = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
    const before = total(ackedAtKill);
    const after = total(streams.map((s) => s.acked)) - before;
    const slowest = Math.max(...streams.flatMap((s) => s.latencies));
    console.log(
      `[failover] ${before} writes before the kill, ${after} after (in 2.5 s), ${total(streams.map((s) => s.retried))} whole-call retries, ` +
        `${reads} linearizable reads, slowest write ${slowest.toFixed(0)} ms; client ${JSON.stringify(client.stats)}`,
    );
    // Requests were in flight on the victim when it died (every stream always has one): they
    // got no answer and were sent again (hedged, or retried after the attempt's budget), same
    // request id, to another replica. The checks below show none of them was applied twice.
    expect(client.stats.noAnswer + client.stats.hedges).toBeGreaterThan(0);
    // Later calls found the victim gone (no responders) or skipped it as a suspect.
    expect(client.stats.attempts).toBeGreaterThan(client.stats.calls);
    expect(before).toBeGreaterThan(0);
    expect(after).toBeGreaterThan(8); // the streams went on without the victim (few on a loaded machine)
    for (const [i, s] of streams.entries()) expect(s.acked, s.group.name).toBeGreaterThan(ackedAtKill[i]!);
    expect(performance.now() - killedAt).toBeGreaterThan(0);

    // Bring the victim back: it catches up, and every node must show every acknowledged write.
    await c.start(victim);
    for (const node of c.members) {
      const pinned = await connect({ servers: c.url, cluster: c.cluster, node, timeoutMs: 10_000 });
      try {
        for (const s of streams) {
          const g = pinned.group(s.group.name);
          const n = Number((await g.get("n")).text());
          // The last write of a stream is acknowledged before `acked` moves; none is in flight now.
          expect(n, `${s.group.name} through ${node}`).toBe(s.acked);
          let written = 0;
          for await (const it of g.scanAll({ prefix: "w/", limit: 500 })) {
            expect(it.key).toBe(`w/${String(written).padStart(5, "0")}`);
            written++;
          }
          expect(written, `${s.group.name} w/ keys through ${node}`).toBe(s.acked);
          const dups = await g.scan({ prefix: "dup/" });
          expect(dups.items.map((d) => d.key), `${s.group.name} through ${node}: writes applied twice`).toEqual([]);
        }
      } finally {
        await pinned.close();
      }
    }
  } finally {
    await client.close();
  }
});

it("single-key writes ride through a node restart: each acknowledged put is readable at its version", async () => {
  // Keys are their own groups, spread over all nodes; one node is stopped and started again.
  const client = await connect({ servers: c.url, cluster: c.cluster, timeoutMs: 3_000 });
  try {
    const acked = new Map<string, number>();
    let stop = false;
    const writers = Array.from({ length: 3 }, async (_, w) => {
      for (let i = 0; !stop; i++) {
        const key = `single-${w}-${i}`;
        for (;;) {
          try {
            acked.set(key, (await client.put(key, key, { requestId: `put-${key}` })).version);
            break;
          } catch (e) {
            if (!(e instanceof TimeoutError || e instanceof UnavailableError)) throw e;
          }
        }
      }
    });
    await sleep(500);
    await c.kill9("n2");
    await sleep(1_000);
    await c.start("n2");
    await sleep(500);
    stop = true;
    await Promise.all(writers);
    expect(acked.size).toBeGreaterThan(30);
    for (const [key, version] of acked) {
      const got = await client.get(key);
      expect(got, key).toMatchObject({ found: true, version });
      expect(got.text()).toBe(key);
    }
  } finally {
    await client.close();
  }
});
