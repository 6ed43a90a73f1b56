// A node whose data directory is lost (new disk, wiped by mistake, wrong mount), over real
// nats-server and LevelDB with node processes (actors/lostDisk.ts, docs/OPERATIONS.md):
//   - wiped under write load and restarted: no acknowledged write is lost, reads stay
//     linearizable, the node finishes its recovery and votes again (it is needed for a majority
//     once another node is stopped);
//   - wiped and restarted next to a node that missed the last write: the acknowledged write
//     survives (before lost-disk detection it was silently replaced by another value at its index);
//   - an empty node whose peers are all down waits for them instead of guessing "new";
//   - a data directory of another node or cluster is refused (exit code 2);
//   - a brand-new cluster of empty nodes starts with no flag.
// And the way out when two of a group's three replicas lost it by checksum (unfence-group).

import { spawn } from "node:child_process";
import { rm } from "node:fs/promises";
import path from "node:path";
import { Level } from "level";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dataKey, groupPrefix } from "../../src/storage/layout.js";
import { startCluster, type TestCluster } from "../helpers/cluster.js";
import { REPO_ROOT } from "../helpers/natsServer.js";
import { attempt, expectLedgerEverywhere, Ledger, ok, sleep, startWriter, waitFor, type Body } from "./support.js";

const MAIN = path.join(REPO_ROOT, "src/cli/main.ts");

/** Runs `paxosstore ARGS` to completion: exit code and output. */
function runCli(args: string[], timeoutMs = 30_000): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", MAIN, ...args], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, PAXOSSTORE_LOG_LEVEL: "info" } });
    let output = "";
    child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`paxosstore ${args.join(" ")} did not finish:\n${output}`));
    }, timeoutMs);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

async function wipe(c: TestCluster, id: string): Promise<void> {
  await rm(c.nodes.get(id)!.dataDir, { recursive: true, force: true });
}

const logHas = (c: TestCluster, id: string, text: string): boolean => c.nodes.get(id)!.lines.some((l) => l.includes(text));

/** Flips a byte of one data record of `group` in a stopped node's directory. */
async function corrupt(c: TestCluster, id: string, group: string, key: string): Promise<void> {
  const db = new Level<Uint8Array, Uint8Array>(c.nodes.get(id)!.dataDir, { keyEncoding: "view", valueEncoding: "view" });
  await db.open();
  const k = dataKey(groupPrefix(group), key);
  const record = await db.get(k);
  expect(record, `${id} holds ${group}/${key}`).toBeDefined();
  const bad = Uint8Array.from(record!);
  bad[bad.length - 1] ^= 0xff;
  await db.put(k, bad, { sync: true });
  await db.close();
}

describe("a node whose data directory was wiped under write load", () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startCluster({ nodes: 3, cluster: "ld" });
  });
  afterAll(async () => {
    await c?.close();
  });

  it("a brand-new cluster of empty nodes started with no flag, each as a new node", () => {
    for (const id of c.members) expect(logHas(c, id, "starting as a brand-new node"), id).toBe(true);
  });

  it("loses no acknowledged write, keeps reads linearizable, recovers and votes again", async () => {
    const victim = "n3";
    const ledger = new Ledger("ld");
    const groups = Array.from({ length: 6 }, (_, i) => `ld-${i}`);
    const routes: Record<string, string[]> = { n1: ["n1", "n2", "n3"], n2: ["n2", "n3", "n1"], n3: ["n3", "n1", "n2"] };
    const writers = c.members.flatMap((n) => ["a", "b"].map((x) => startWriter(c, ledger, `${n}${x}`, groups, { route: routes[n]!, timeoutMs: 1_500 })));
    try {
      await waitFor("writes acknowledged in every group", async () => groups.every((g) => ledger.acked().some((w) => w.group === g)), 20_000);
      await c.kill9(victim);
      await wipe(c, victim);
      await sleep(300); // the others go on without it
      await c.start(victim);
      expect(logHas(c, victim, "LOST DISK")).toBe(true);
      // It started as a learner: its groups recover before it votes; the writers go on. A
      // linearizable read through it of the latest acknowledged write sees that write.
      const acksAtRestart = ledger.acked().length;
      // (A read that fails is no violation, one that shows other data is; most must succeed.)
      const readProblems: string[] = [];
      const readFailures: string[] = [];
      let reads = 0;
      while (ledger.acked().length < acksAtRestart + 30 || reads < 20) {
        const acked = ledger.acked();
        const w = acked[acked.length - 1]!;
        const r = await attempt(c, { op: "get", group: w.group, key: w.key }, victim, 5_000);
        if (r.kind !== "ok") readFailures.push(`${w.group}/${w.key} via ${victim}: ${r.kind} ${"body" in r ? JSON.stringify(r.body) : ""}`);
        else if (r.body.value !== w.value || r.body.version !== w.version) readProblems.push(`${w.group}/${w.key} acked v${w.version}, read ${JSON.stringify(r.body)}`);
        reads++;
        if (reads > 2_000) throw new Error("the writers made no progress after the restart");
      }
      expect(readProblems).toEqual([]);
      expect(readFailures.length, readFailures.slice(0, 5).join("\n")).toBeLessThanOrEqual(reads / 4);
    } finally {
      for (const w of writers) w.stop();
      await Promise.all(writers.map((w) => w.done));
    }
    expect(ledger.counts().pending).toBe(0);

    // One more chosen write in every group lets the victim finish its recovery of each.
    for (const g of groups) {
      const w = ledger.next(g, "last");
      w.version = (await ok(c, { op: "put", group: g, key: w.key, value: w.value, requestId: w.requestId }, "n1")).version as number;
      w.status = "acked";
    }
    await waitFor(
      `${victim} finishes its lost-disk recovery`,
      async () => {
        if (logHas(c, victim, "lost disk: recovery complete")) return true;
        // A linearizable read through the victim probes the others and catches it up.
        await Promise.all(groups.map((g) => attempt(c, { op: "get", group: g, key: "any" }, victim)));
        return false;
      },
      30_000,
      250,
    );

    // Every acknowledged write, through every node, linearizable and stale; replicas agree.
    const afterLedger = new Ledger("ld-after");
    await expectLedgerEverywhere(c, [ledger]);

    // It votes again: with n1 stopped, n2 and n3 must form every majority.
    expect(await c.stop("n1")).toBe(0);
    for (const g of groups) {
      for (const via of ["n3", "n2"]) {
        const w = afterLedger.next(g, via);
        const put = await ok(c, { op: "put", group: g, key: w.key, value: w.value, requestId: w.requestId }, via);
        w.status = "acked";
        w.version = put.version as number;
        // A linearizable read after the write sees it, through either node.
        for (const reader of ["n3", "n2"]) expect(await ok(c, { op: "get", group: g, key: w.key }, reader), `${g}/${w.key} via ${reader}`).toMatchObject({ found: true, value: w.value, version: w.version });
      }
    }
    await c.start("n1");
    await expectLedgerEverywhere(c, [ledger, afterLedger]);
  }, 180_000);
});

describe("a wiped node that rejoins next to a node that missed the last write", () => {
  let c: TestCluster;
  beforeAll(async () => {
    // Short passivation: a group stopped and reloaded during lost-disk mode must still recover.
    c = await startCluster({ nodes: 3, cluster: "ld2", env: { PAXOSSTORE_PASSIVATE_AFTER_MS: "500" } });
  });
  afterAll(async () => {
    await c?.close();
  });

  // Before lost-disk detection, the wiped n3 voted at once with its accept of "a" forgotten:
  // n1 (which missed "a") and n3 chose "b" at the index where "a" had been chosen and
  // acknowledged, and "a" was gone (n2 still held it: the replicas diverged).
  it("keeps the acknowledged write: the wiped node does not vote until it has recovered", async () => {
    const group = "missed";
    expect(await ok(c, { op: "put", group, key: "x", value: "x", requestId: "missed-x" }, "n1")).toMatchObject({ version: 1 });
    await waitFor("n3 holds x", async () => (await attempt(c, { op: "get", group, key: "x", consistency: "stale" }, "n3")).kind === "ok");
    expect(await c.stop("n1")).toBe(0);
    const a = await ok(c, { op: "put", group, key: "a", value: "a", requestId: "missed-a" }, "n2"); // chosen by n2 and n3
    expect(a.version).toBe(2);
    expect(await c.stop("n2")).toBe(0);
    await c.kill9("n3");
    await wipe(c, "n3");
    // n3 comes back empty next to n1, which never saw "a".
    await Promise.all([c.start("n1"), c.start("n3")]);
    const b = await attempt(c, { op: "put", group, key: "b", value: "b", requestId: "missed-b" }, "n1", 3_000);
    await c.start("n2");
    const reads: Body[] = [];
    for (const via of ["n1", "n2", "n3"]) {
      const got = await waitFor(`a readable through ${via}`, async () => {
        const r = await attempt(c, { op: "get", group, key: "a" }, via);
        return r.kind === "ok" ? r.body : null;
      });
      reads.push(got);
    }
    for (const r of reads) expect(r).toMatchObject({ found: true, value: "a", version: 2 });
    if (b.kind === "ok") expect(await ok(c, { op: "get", group, key: "b" }, "n1")).toMatchObject({ found: true, value: "b", version: b.body.version });
    expect(logHas(c, "n3", "LOST DISK")).toBe(true);
  }, 120_000);

  it("an empty node whose peers are down waits for them, then finds its disk was lost", async () => {
    await c.kill9("n3");
    await wipe(c, "n3");
    expect(await c.stop("n1")).toBe(0);
    expect(await c.stop("n2")).toBe(0);
    const lines = c.nodes.get("n3")!.lines;
    const from = lines.length;
    const since = (text: string): boolean => lines.slice(from).some((l) => l.includes(text));
    const started = c.start("n3");
    started.catch(() => undefined);
    // Generous: a node started from source on a busy 2-core machine takes a while to say anything.
    await waitFor("n3 says it waits for its peers", async () => since("waiting for every peer to say whether it has seen node n3"), 90_000);
    expect(since("paxosstore node n3 ready")).toBe(false);
    await c.start("n2");
    await started;
    expect(since("LOST DISK")).toBe(true);
    await c.start("n1");
  }, 240_000);

  it("a group passivated during lost-disk mode reloads still recovering, and recovers at its next write", async () => {
    // A group with nothing open anywhere: only a new write can finish its recovery on n3.
    const group = "idle";
    for (const key of ["i1", "i2"]) await ok(c, { op: "put", group, key, value: key, requestId: `idle-${key}` }, "n1");
    // The peers hold the group (so they list it for n3). Not n3 itself: it may still be in
    // lost-disk mode from the test before, where a group it has no record of is not served.
    await waitFor("n2 holds idle", async () => (await attempt(c, { op: "get", group, key: "i2", consistency: "stale" }, "n2")).kind === "ok", 60_000);
    const lines = c.nodes.get("n3")!.lines;
    const from = lines.length;
    const since = (text: string): boolean => lines.slice(from).some((l) => l.includes(text));
    await c.kill9("n3");
    await wipe(c, "n3");
    await c.start("n3");
    expect(since("LOST DISK")).toBe(true);
    const status = async (): Promise<Body> => ok(c, { op: "status" }, "n3");
    for (let round = 0; round < 2; round++) {
      // Stale reads come from the local copy: refused while the group recovers (the first
      // loads it with no record here, the second reloads it from its recovering record).
      const stale = await attempt(c, { op: "get", group, key: "i1", consistency: "stale" }, "n3");
      expect(stale.kind === "error" ? (stale.body.error as Body).code : stale.kind, `round ${round}`).toBe("unavailable");
      await waitFor("n3 passivated its groups", async () => (await status()).groupsActive === 0, 30_000);
    }
    expect(since("lost disk: recovery complete")).toBe(false);
    // A write chosen in each listed group after n3 (re)loaded it and probed its peers finishes
    // n3's recovery of that group (a reload recomputes the target: it may take one more).
    let n = 0;
    await waitFor(
      "n3 recovered its groups and left lost-disk mode",
      async () => {
        n++;
        for (const g of [group, "missed"]) await ok(c, { op: "put", group: g, key: "c", value: "c", requestId: `${g}-c-${n}` }, "n1");
        await Promise.all([group, "missed"].map((g) => attempt(c, { op: "get", group: g, key: "c" }, "n3")));
        return since("lost disk: recovery complete");
      },
      30_000,
      500,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${lines.slice(from).filter((l) => l.includes("lost disk") || l.includes("LOST")).join("\n")}`);
    });
    for (const key of ["i1", "i2", "c"]) expect(await ok(c, { op: "get", group, key, consistency: "stale" }, "n3")).toMatchObject({ found: true, value: key });
    for (const key of ["x", "a", "c"]) expect(await ok(c, { op: "get", group: "missed", key, consistency: "stale" }, "n3")).toMatchObject({ found: true, value: key });
  }, 120_000);

  it("refuses a data directory of another node or another cluster (exit code 2, one line)", async () => {
    const n2Dir = c.nodes.get("n2")!.dataDir;
    expect(await c.stop("n2")).toBe(0);
    const common = ["node", "--members", c.members.join(","), "--nats", c.url, "--data-dir", n2Dir];
    const wrongNode = await runCli([...common, "--node-id", "n1", "--cluster", c.cluster]);
    expect(wrongNode.code).toBe(2);
    expect(wrongNode.output).toContain(`belongs to node "n2" of cluster "${c.cluster}", not node "n1"`);
    // One plain line beside the JSON log lines (stdout): the error, as for any config error.
    expect(wrongNode.output.trim().split("\n").filter((l) => !l.startsWith("{"))).toHaveLength(1);
    const wrongCluster = await runCli([...common, "--node-id", "n2", "--cluster", "other"]);
    expect(wrongCluster.code).toBe(2);
    expect(wrongCluster.output).toContain(`belongs to node "n2" of cluster "${c.cluster}", not node "n2" of cluster "other"`);
    // A window of request ids other than its peers': replicas would apply retries differently.
    const otherWindow = await runCli([...common, "--node-id", "n2", "--cluster", c.cluster, "--request-memory", "512"], 60_000);
    expect(otherWindow.code).toBe(2);
    expect(otherWindow.output).toContain("requestMemory is 512 here but 1024 on n");
    await c.start("n2");
    expect(await ok(c, { op: "get", group: "missed", key: "a" }, "n2")).toMatchObject({ found: true, value: "a" });
  }, 60_000);
});

describe("two of a group's three replicas lost it by checksum", () => {
  let c: TestCluster;
  beforeAll(async () => {
    c = await startCluster({ nodes: 3, cluster: "ld3" });
  });
  afterAll(async () => {
    await c?.close();
  });

  it("is stuck until unfence-group on one of them; then the survivor's data is the group's truth", async () => {
    const group = "two-lost";
    for (let i = 1; i <= 5; i++) await ok(c, { op: "put", group, key: `k${i}`, value: `v${i}`, requestId: `two-${i}` }, "n1");
    for (const id of ["n2", "n3"])
      await waitFor(`${id} holds k5`, async () => (await attempt(c, { op: "get", group, key: "k5", consistency: "stale" }, id)).kind === "ok");
    for (const id of ["n2", "n3"]) {
      expect(await c.stop(id)).toBe(0);
      await corrupt(c, id, group, "k2");
      await c.start(id);
      // Loading the group finds the bad record: it is wiped and recovers without voting.
      await attempt(c, { op: "get", group, key: "k1", consistency: "stale" }, id);
      await waitFor(`${id} lost the group`, async () => logHas(c, id, "failed its checksum"));
    }
    // Neither lost replica votes or answers probes: no majority, no write, no read.
    const stuck = await attempt(c, { op: "put", group, key: "k6", value: "v6", requestId: "two-6" }, "n1", 2_500);
    expect(stuck.kind === "ok").toBe(false);
    expect((await attempt(c, { op: "get", group, key: "k1" }, "n1", 2_000)).kind === "ok").toBe(false);

    // The way out, on ONE of them, with its node stopped: without the confirmation it only explains.
    expect(await c.stop("n2")).toBe(0);
    const dir = c.nodes.get("n2")!.dataDir;
    const asked = await runCli(["unfence-group", "--data-dir", dir, "--group", group]);
    expect(asked.code).toBe(1);
    expect(asked.output).toContain("never on two");
    const done = await runCli(["unfence-group", "--data-dir", dir, "--group", group, "--yes-lose-unreplicated-writes"]);
    expect(done.code, done.output).toBe(0);
    await c.start("n2");

    // n1 and n2 form a majority again; n1's chosen state (k1..k5) is the group's truth.
    await waitFor("a write through n1", async () => (await attempt(c, { op: "put", group, key: "k6", value: "v6", requestId: "two-6b" }, "n1", 3_000)).kind === "ok", 30_000);
    for (const via of ["n1", "n2"]) for (let i = 1; i <= 6; i++) expect(await ok(c, { op: "get", group, key: `k${i}` }, via)).toMatchObject({ found: true, value: `v${i}` });
    // n3 recovers by itself now that a majority chooses again.
    await ok(c, { op: "put", group, key: "k7", value: "v7", requestId: "two-7" }, "n2");
    await waitFor(
      "n3 recovered the group",
      async () => {
        await attempt(c, { op: "get", group, key: "k7" }, "n3");
        const r = await attempt(c, { op: "get", group, key: "k7", consistency: "stale" }, "n3");
        return r.kind === "ok" && r.body.value === "v7";
      },
      30_000,
      200,
    ).catch((e: unknown) => {
      // Seen timing out once on a loaded machine: the nodes' last lines say where n3 stood.
      for (const id of c.members) console.log(`${id}:\n${c.nodes.get(id)!.lines.slice(-25).join("\n")}`);
      throw e;
    });
    for (let i = 1; i <= 7; i++) expect(await ok(c, { op: "get", group, key: `k${i}`, consistency: "stale" }, "n3")).toMatchObject({ found: true, value: `v${i}` });
  }, 120_000);
});
