// `npm run verify` end to end, as a user runs it (the command, a real cluster in network
// namespaces): a short run with every default nemesis is linearizable, and a cluster with a
// deliberate bug (linearizable reads answered without the ReadProbe) is caught.
//
// Needs root, `ip` and `iptables`. Without them the tests are skipped with a loud notice,
// unless CI=true or REQUIRE_NETNS=1, where a test fails saying why.

import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "./cluster.js";
import { DEFAULT_NEMESES } from "./nemesis.js";
import { networkProblem } from "./netns.js";

const required = process.env.CI === "true" || process.env.REQUIRE_NETNS === "1" || process.env.REQUIRE_NETNS === "true";
const problem = networkProblem();

interface Run {
  readonly code: number | null;
  readonly output: string;
  readonly reportDir: string;
}

const reportRoot = mkdtempSync(path.join(os.tmpdir(), "paxosstore-verify-test-"));
let failed = false;

/** Runs the verify command to its end (it has its own deadlines; the test timeout backs them). */
function verify(args: readonly string[], timeoutMs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", path.join(REPO_ROOT, "test/linearizability/verify.ts"), "--report-dir", reportRoot, ...args], {
      cwd: REPO_ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      // SIGTERM before the test's own timeout: verify then stops and cleans up its network.
      timeout: timeoutMs,
    });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    child.once("error", reject);
    child.once("exit", (code) => {
      const folder = /report folder (\S+)/.exec(output)?.[1] ?? "";
      resolve({ code, output, reportDir: folder });
    });
  });
}

function summaryOf(run: Run): { faultsByKind: Record<string, number>; ops: number } {
  return JSON.parse(readFileSync(path.join(run.reportDir, "summary.json"), "utf8")) as { faultsByKind: Record<string, number>; ops: number };
}

function builtAt(): number {
  try {
    return statSync(path.join(REPO_ROOT, "dist/cli/main.js")).mtimeMs;
  } catch {
    return 0;
  }
}

function newestSource(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (e.name.endsWith(".ts")) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

function banner(reason: string): void {
  const line = "!".repeat(100);
  console.warn(["", line, "!!! VERIFY TESTS SKIPPED (real cluster in network namespaces).", `!!! ${reason}`, "!!! Run as root with ip and iptables (bash infra/install-iptables.sh), or set REQUIRE_NETNS=1 to make this a failure (CI does).", line, ""].join("\n"));
}

if (problem !== null && required) {
  describe("npm run verify", () => {
    it("needs root, ip and iptables (CI=true or REQUIRE_NETNS=1)", () => {
      throw new Error(`cannot run the verify tests here: ${problem}`);
    });
  });
} else if (problem !== null) {
  banner(problem);
  describe.skip("npm run verify", () => undefined);
} else {
  describe("npm run verify", () => {
    beforeAll(() => {
      // The nodes run the built CLI (dist/): rebuild it when a source is newer. Not always:
      // other test files may be reading dist/ (CI's npm ci has built it already).
      if (builtAt() < newestSource(path.join(REPO_ROOT, "src"))) execFileSync("npx", ["tsc", "-p", "tsconfig.build.json"], { cwd: REPO_ROOT, stdio: "inherit" });
    }, 180_000);

    afterAll(() => {
      if (failed) console.warn(`verify test reports kept in ${reportRoot}`);
      else rmSync(reportRoot, { recursive: true, force: true });
    });

    it("a one-minute run with every default nemesis is linearizable", async () => {
      // Short faults and calms so that every nemesis comes at least once within the minute.
      const run = await verify(["--duration", "60", "--fault-ms", "3000-5000", "--calm-ms", "500-1500"], 270_000);
      failed ||= run.code !== 0;
      expect(run.output, run.output).toMatch(/^verify: linearizable \(\d+ ops, \d+ faults\)$/m);
      expect(run.code).toBe(0);
      const summary = summaryOf(run);
      expect(summary.ops).toBeGreaterThan(500);
      for (const kind of DEFAULT_NEMESES) expect(summary.faultsByKind[kind] ?? 0, `faults of kind ${kind}`).toBeGreaterThanOrEqual(1);
      expect(readdirSync(run.reportDir)).toEqual(expect.arrayContaining(["history.jsonl", "faults.json", "timeline.html", "summary.json", "logs"]));
    }, 300_000);

    it("catches linearizable reads answered without the ReadProbe (--break read-without-probe)", async () => {
      // A paused or cut-off replica answers from its own, older data: stale reads.
      const run = await verify(["--duration", "30", "--break", "read-without-probe", "--nemesis", "pause,isolate", "--fault-ms", "3000-5000", "--calm-ms", "1000-2000"], 210_000);
      failed ||= run.code !== 1;
      expect(run.output, run.output).toMatch(/^verify: NOT linearizable \(\d+ ops, \d+ faults\): /m);
      expect(run.code).toBe(1);
      expect(readdirSync(run.reportDir)).toContain("violation.json");
    }, 240_000);
  });
}
