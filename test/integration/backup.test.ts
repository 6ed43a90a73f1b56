// Backup and restore (src/actors/backup.ts, docs/OPERATIONS.md) over real nats-server and
// LevelDB with node processes: `paxosstore backup` copies n3's data through its health
// endpoint while writers keep writing; n3 is stopped and its data directory wiped;
// `paxosstore restore` seeds it from the (now stale) backup; restarted, n3 takes the lost-disk
// path (the backup's promises are older than what it had promised since, so it must not vote
// with them), reads through it stay linearizable meanwhile, no acknowledged write is lost, it
// finishes its recovery and votes again (needed for a majority once n1 is stopped). Also: a
// backup refuses to restore into another node or a non-empty directory, and a damaged file is
// refused.

import { spawn } from "node:child_process";
import { readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LOST_DISK_RECORD } from "../../src/actors/lostDisk.js";
import { LevelStorage } from "../../src/storage/leveldb.js";
import { startCluster, type TestCluster } from "../helpers/cluster.js";
import { REPO_ROOT } from "../helpers/natsServer.js";
import { freePort } from "../helpers/ports.js";
import { tempDir, type TempDir } from "../helpers/tmp.js";
import { attempt, expectLedgerEverywhere, Ledger, ok, startWriter, waitFor } from "./support.js";

const MAIN = path.join(REPO_ROOT, "src/cli/main.ts");

function runCli(args: string[], timeoutMs = 60_000): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", MAIN, ...args], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`paxosstore ${args.join(" ")} did not finish:\n${out}\n${err}`));
    }, timeoutMs);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

describe("paxosstore backup and restore", () => {
  let c: TestCluster;
  let dir: TempDir;
  const ports = new Map<string, number>();
  beforeAll(async () => {
    for (const id of ["n1", "n2", "n3"]) ports.set(id, await freePort());
    c = await startCluster({ nodes: 3, cluster: "bk", nodeArgs: (id) => ["--http-port", String(ports.get(id))] });
    dir = await tempDir("backup");
  }, 60_000);
  afterAll(async () => {
    await c?.close();
    await dir?.cleanup();
  });
  const logHas = (id: string, text: string): boolean => c.nodes.get(id)!.lines.some((l) => l.includes(text));

  it("a backup taken under write load restores a wiped node, which recovers before voting; no acknowledged write is lost", async () => {
    const victim = "n3";
    const file = path.join(dir.path, "n3.backup");
    const ledger = new Ledger("bk");
    const groups = Array.from({ length: 6 }, (_, i) => `bk-${i}`);
    const routes: Record<string, string[]> = { n1: ["n1", "n2", "n3"], n2: ["n2", "n3", "n1"], n3: ["n3", "n1", "n2"] };
    const writers = c.members.flatMap((n) => ["a", "b"].map((x) => startWriter(c, ledger, `${n}${x}`, groups, { route: routes[n]!, timeoutMs: 1_500 })));
    try {
      await waitFor("writes acknowledged in every group", async () => groups.every((g) => ledger.acked().some((w) => w.group === g)), 20_000);
      const backup = await runCli(["backup", "--from", `http://127.0.0.1:${ports.get(victim)}`, "--out", file]);
      expect(backup.code, backup.err).toBe(0);
      const summary = JSON.parse(backup.out) as { node: string; records: number };
      expect(summary).toMatchObject({ ok: true, node: victim, cluster: "bk" });
      expect(summary.records).toBeGreaterThan(groups.length);
      // The backup goes stale: writes go on after it.
      const acksAtBackup = ledger.acked().length;
      await waitFor("more writes after the backup", async () => ledger.acked().length >= acksAtBackup + 40, 30_000);

      expect(await c.stop(victim)).toBe(0);
      await rm(c.nodes.get(victim)!.dataDir, { recursive: true, force: true });
      const wrongNode = await runCli(["restore", "--file", file, "--node-id", "n2", "--cluster", "bk", "--data-dir", path.join(dir.path, "elsewhere")]);
      expect(wrongNode.code).toBe(2);
      expect(wrongNode.err).toMatch(/backup of node n3/);
      const restore = await runCli(["restore", "--file", file, "--node-id", victim, "--cluster", "bk", "--data-dir", c.nodes.get(victim)!.dataDir]);
      expect(restore.code, restore.err).toBe(0);
      expect((JSON.parse(restore.out) as { groups: number }).groups).toBeGreaterThan(0);
      const again = await runCli(["restore", "--file", file, "--node-id", victim, "--cluster", "bk", "--data-dir", c.nodes.get(victim)!.dataDir]);
      expect(again.code).toBe(2);
      expect(again.err).toMatch(/not empty/);

      // Every restored group is marked recovering (a learner until it caught up past anything it
      // may have voted in after the backup), and the node is marked as a lost disk.
      const restored = new LevelStorage(c.nodes.get(victim)!.dataDir);
      await restored.open();
      try {
        const marks: (true | undefined)[] = [];
        for await (const g of restored.listGroups()) marks.push((await restored.loadGroup(g))?.meta.recovering);
        expect(marks.length).toBeGreaterThan(0);
        expect(marks.every((m) => m === true)).toBe(true);
        expect(await restored.getNodeRecord(LOST_DISK_RECORD)).toMatchObject({ phase: "listing" });
      } finally {
        await restored.close();
      }

      await c.start(victim);
      // Lost-disk mode from the restore: it lists its groups from the peers and recovers them.
      await waitFor("the restored node in lost-disk mode", async () => logHas(victim, "lost disk:"), 20_000);
      const acksAtRestart = ledger.acked().length;
      const readProblems: string[] = [];
      const readFailures: string[] = [];
      let reads = 0;
      while (ledger.acked().length < acksAtRestart + 30 || reads < 20) {
        const acked = ledger.acked();
        const w = acked[acked.length - 1]!;
        const r = await attempt(c, { op: "get", group: w.group, key: w.key }, victim, 5_000);
        if (r.kind !== "ok") readFailures.push(`${w.group}/${w.key} via ${victim}: ${r.kind}`);
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

    // One more chosen write in every group lets the restored node finish recovering each.
    for (const g of groups) {
      const w = ledger.next(g, "last");
      w.version = (await ok(c, { op: "put", group: g, key: w.key, value: w.value, requestId: w.requestId }, "n1")).version as number;
      w.status = "acked";
    }
    await waitFor(
      `${victim} finishes its recovery`,
      async () => {
        if (logHas(victim, "lost disk: recovery complete")) return true;
        await Promise.all(groups.map((g) => attempt(c, { op: "get", group: g, key: "any" }, victim)));
        return false;
      },
      60_000,
      250,
    );
    await expectLedgerEverywhere(c, [ledger]);
    // Its groups were behind: the catch-up is in its log, as events an operator can filter on.
    expect(logHas(victim, '"event":"group_catch_up"')).toBe(true);
    const status = (await (await fetch(`http://127.0.0.1:${ports.get(victim)}/status.json`)).json()) as { lostDisk: { phase: string } | null };
    expect(status.lostDisk?.phase ?? "done").toBe("done");

    // It votes again: with n1 stopped, n2 and n3 form every majority.
    expect(await c.stop("n1")).toBe(0);
    for (const g of groups) expect(await ok(c, { op: "put", group: g, key: "after-restore", value: "yes", requestId: `after-${g}` }, victim)).toMatchObject({ ok: true });
    await c.start("n1");
  }, 240_000);

  it("a damaged or cut-off backup file is refused", async () => {
    const file = path.join(dir.path, "n3.backup");
    const bytes = await readFile(file);
    const damaged = Buffer.from(bytes);
    damaged[Math.floor(damaged.length / 2)]! ^= 0xff;
    await writeFile(path.join(dir.path, "damaged.backup"), damaged);
    await writeFile(path.join(dir.path, "cut.backup"), bytes.subarray(0, bytes.length - 100));
    for (const [name, message] of [["damaged.backup", /checksum|cut off|malformed/], ["cut.backup", /cut off|trailer/]] as const) {
      const r = await runCli(["restore", "--file", path.join(dir.path, name), "--node-id", "n3", "--cluster", "bk", "--data-dir", path.join(dir.path, `restore-${name}`)]);
      expect(r.code, r.err).toBe(2);
      expect(r.err).toMatch(message);
    }
  }, 60_000);
});
