// A local cluster for the benchmarks: one nats-server and N node processes started from the
// built dist/ (real processes, as `paxosstore dev` runs them), in a temp dir removed on stop.

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { connect } from "@nats-io/transport-node";
import { findNatsServer } from "../src/cli/devCommand.js";

const BIN = fileURLToPath(new URL("../bin/paxosstore.mjs", import.meta.url));

export interface LocalClusterOptions {
  cluster: string;
  members: string[];
  natsPort: number;
  /** Node i serves /metrics on metricsPortBase + i. */
  metricsPortBase: number;
  /** Extra environment (PAXOSSTORE_* settings) for every node. */
  nodeEnv: Record<string, string>;
  /** Extra node.js flags (e.g. --cpu-prof). */
  nodeFlags?: string[];
}


export interface LocalCluster {
  readonly url: string;
  readonly pids: { nodes: number[]; nats: number };
  readonly metricsUrls: string[];
  stop(): Promise<void>;
}

export async function startLocalCluster(o: LocalClusterOptions): Promise<LocalCluster> {
  const natsBin = findNatsServer();
  if (natsBin === null) throw new Error("nats-server is not installed: bash infra/install-nats-server.sh");
  const dir = mkdtempSync(join(tmpdir(), "paxosstore-bench-"));
  const url = `nats://127.0.0.1:${o.natsPort}`;
  const children: ChildProcess[] = [];
  const nats = spawn(natsBin, ["-a", "127.0.0.1", "-p", String(o.natsPort)], { stdio: ["ignore", "ignore", "pipe"] });
  children.push(nats);
  await waitFor(async () => {
    try {
      const nc = await connect({ servers: url, reconnect: false });
      await nc.close();
      return true;
    } catch {
      return false;
    }
  }, 10_000, "nats-server to listen");
  const metricsUrls: string[] = [];
  const ready = new Set<string>();
  const logs = new Map<string, string[]>();
  o.members.forEach((id, i) => {
    const port = o.metricsPortBase + i;
    metricsUrls.push(`http://127.0.0.1:${port}/metrics`);
    const child = spawn(
      process.execPath,
      [...(o.nodeFlags ?? []), BIN, "node", "--node-id", id, "--cluster", o.cluster, "--members", o.members.join(","), "--nats", url, "--data-dir", join(dir, id)],
      { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, PAXOSSTORE_METRICS_PORT: String(port), PAXOSSTORE_LOG_LEVEL: "info", ...o.nodeEnv } },
    );
    children.push(child);
    const lines: string[] = [];
    logs.set(id, lines);
    for (const s of [child.stdout!, child.stderr!]) {
      s.on("data", (d: Buffer) => {
        for (const line of d.toString().split("\n")) {
          if (line.includes(`paxosstore node ${id} ready`)) ready.add(id);
          if (line !== "" && lines.length < 200) lines.push(line);
        }
      });
    }
  });
  try {
    await waitFor(async () => ready.size === o.members.length, 30_000, "the nodes to be ready");
  } catch (e) {
    for (const [id, lines] of logs) console.error(`[${id}] ${lines.slice(-5).join(`\n[${id}] `)}`);
    await stopChildren(children);
    throw e;
  }
  return {
    url,
    pids: { nodes: children.slice(1).map((c) => c.pid!), nats: nats.pid! },
    metricsUrls,
    stop: async () => {
      await stopChildren(children.slice(1));
      await stopChildren([nats]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function stopChildren(children: ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((res) => {
          if (c.exitCode !== null || c.signalCode !== null) return res();
          const t = setTimeout(() => c.kill("SIGKILL"), 15_000);
          c.once("exit", () => (clearTimeout(t), res()));
          c.kill("SIGTERM");
        }),
    ),
  );
}

export async function waitFor(cond: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** CPU time (user + system) of a process in ms, from /proc/<pid>/stat; null if unreadable. */
export function cpuMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may hold spaces) start after the last ")".
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(f[11]) + Number(f[12]); // utime, stime (fields 14, 15)
    return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
  } catch {
    return null;
  }
}


/** Resident memory of a process in bytes (VmRSS), or null. */
export function rssBytes(pid: number): number | null {
  try {
    const m = readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+) kB/);
    return m === null ? null : Number(m[1]) * 1024;
  } catch {
    return null;
  }
}
