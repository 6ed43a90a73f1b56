// What the membership tests (issue 13) share: the admin op and the CLI as a user runs them, a
// change followed to its end, and the two checks after a change: no acknowledged write lost,
// every group on exactly its new replicas with the other copies dropped.

import { spawn } from "node:child_process";
import path from "node:path";
import { expect } from "vitest";
import { replicasFor } from "../../src/protocol/placement.js";
import type { TestCluster } from "../helpers/cluster.js";
import { REPO_ROOT } from "../helpers/natsServer.js";
import { ok, waitFor, type Item, type Ledger } from "./support.js";

/** `paxosstore <args>` against the test cluster, as a user runs it. */
export function cli(c: TestCluster, args: string[], timeoutMs = 120_000): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", path.join(REPO_ROOT, "src/cli/main.ts"), ...args, "--servers", c.url, "--cluster", c.cluster], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    for (const s of [child.stdout!, child.stderr!]) s.on("data", (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`paxosstore ${args.join(" ")} did not finish:\n${out}`));
    }, timeoutMs);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

/** The members admin op (`<prefix>.admin`), one call. */
export async function admin(c: TestCluster, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  const m = await c.nc.request(`paxosstore.${c.cluster}.admin`, new TextEncoder().encode(JSON.stringify({ op: "members", ...body })), { timeout: 15_000 });
  return JSON.parse(new TextDecoder().decode(m.data)) as Record<string, unknown>;
}

/** Calls `advance` until the change is stable (what `paxosstore members <action> --wait` does). */
export async function advanceToStable(c: TestCluster, timeoutMs = 60_000): Promise<Record<string, unknown>> {
  const seen: string[] = [];
  return waitFor(
    "the change to end",
    async () => {
      const r = await admin(c, { action: "advance" });
      const view = r.view as { phase: string } | undefined;
      seen.push(`${view?.phase}:${String(r.waitingFor)}`);
      return r.ok === true && view?.phase === "stable" ? r : null;
    },
    timeoutMs,
    500,
  ).catch(async (e: unknown) => {
    throw new Error(`${(e as Error).message}; last: ${seen.slice(-5).join(" | ")}\n${await stuckReport(c)}`);
  });
}

/** For a failure message: the movers' last errors, and each group they name as seen by every running node. */
export async function stuckReport(c: TestCluster): Promise<string> {
  const errors = [...c.nodes.values()].flatMap((n) => n.lines.filter((l) => l.includes("mover_error") || l.includes("crashed")).slice(-3).map((l) => `[${n.id}] ${l.slice(0, 600)}`));
  const stuck = new Set<string>();
  for (const l of errors) for (const m of l.matchAll(/"group":"([^"]+)"/g)) stuck.add(m[1]!);
  const states: string[] = [];
  for (const g of stuck) for (const n of c.nodes.values()) if (n.child !== null) states.push(`${g}@${n.id}: ${JSON.stringify(await groupInfo(c, n.id, g).catch((x: unknown) => String(x)))}`);
  return `${errors.join("\n")}\n${states.join("\n")}`;
}

/** One change, then `advance` until stable. */
export async function change(c: TestCluster, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  const first = await admin(c, body);
  expect(first.ok, JSON.stringify(first)).toBe(true);
  return advanceToStable(c);
}

export async function groupInfo(c: TestCluster, node: string, group: string): Promise<{ role: string; members: { epoch: number; replicas: string[] } } | null> {
  const m = await c.nc.request(`paxosstore.${c.cluster}.peer.${node}.group`, new TextEncoder().encode(JSON.stringify({ cluster: c.cluster, from: "n1", group })), { timeout: 5_000 });
  const r = JSON.parse(new TextDecoder().decode(m.data)) as { ok: boolean; info: { role: string; members: { epoch: number; replicas: string[] } } | null; error?: string };
  if (!r.ok) throw new Error(`${node}: ${r.error}`);
  return r.info;
}

/** Every acknowledged write readable with its value and version, through each of its group's replicas. */
export async function expectNoLoss(c: TestCluster, ledgers: readonly Ledger[], groups: readonly string[], members: readonly string[]): Promise<void> {
  const problems: string[] = [];
  for (const group of groups) {
    for (const node of replicasFor(group, members)) {
      const items = new Map<string, Item>();
      let after: string | undefined;
      for (;;) {
        const page = await ok(c, { op: "scan", group, limit: 1000, ...(after === undefined ? {} : { after }) }, node);
        for (const it of page.items as Item[]) items.set(it.key, it);
        if (page.next === undefined) break;
        after = page.next as string;
      }
      for (const l of ledgers)
        for (const w of l.writes) {
          if (w.group !== group) continue;
          const got = items.get(w.key);
          if (w.status === "acked" && (got === undefined || got.value !== w.value || got.version !== w.version)) problems.push(`${node} ${group}/${w.key}: acked v${w.version}, read ${got === undefined ? "nothing" : `v${got.version}`} (${w.trail.join(" ")})`);
          if (w.status !== "acked" && got !== undefined && got.value !== w.value) problems.push(`${node} ${group}/${w.key}: wrong value`);
        }
    }
  }
  expect(problems.slice(0, 20), `${problems.length} problems`).toEqual([]);
}

/** Each group on exactly its replicas under `members`; every other node of `nodes` holds no copy. */
export async function expectPlacement(c: TestCluster, groups: readonly string[], members: readonly string[], nodes: readonly string[]): Promise<void> {
  await waitFor(
    "every group on exactly its new replicas, old copies dropped",
    async () => {
      const wrong: string[] = [];
      for (const group of groups) {
        const want = replicasFor(group, members);
        for (const node of nodes) {
          const info = await groupInfo(c, node, group);
          if (want.includes(node)) {
            if (info === null || info.role !== "voter" || [...info.members.replicas].sort().join() !== [...want].sort().join()) wrong.push(`${group}@${node}: ${JSON.stringify(info)}`);
          } else if (info !== null) wrong.push(`${group}@${node} still holds ${info.role}`);
        }
      }
      if (wrong.length > 0) throw new Error(wrong.slice(0, 5).join("; "));
      return true;
    },
    60_000,
    1_000,
  );
}
