// The cluster under test of `npm run verify`: per node, one nats-server and one node process
// (the built CLI, `node bin/paxosstore.mjs node`), both in the node's network namespace
// (netns.ts). The servers form one NATS cluster (routes between the namespaces' addresses,
// short pings so that a cut is noticed in about two seconds); each node talks to its own
// server only. Everything a process prints goes to <dir>/logs/<name>.log, across restarts.
//
// The fault hooks are here too, as plain process and file operations: kill -9 and restart,
// SIGSTOP and SIGCONT, a wiped data directory, and the slow-disk control file that the node
// reads (PAXOSSTORE_FAULT_FSYNC_DELAY_FILE, src/actors/testHooks.ts).

import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, rmSync, writeFileSync, type WriteStream } from "node:fs";
import { connect as natsConnect } from "@nats-io/transport-node";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { inNamespace, nodeNet, type Network } from "./netns.js";

export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const BIN = path.join(REPO_ROOT, "bin/paxosstore.mjs");
const CLIENT_PORT = 4222;
const ROUTE_PORT = 6222;
const READY_TIMEOUT_MS = 60_000;

export interface ClusterOptions {
  readonly net: Network;
  /** The run's folder: data/, logs/, nats/, faults/ go under it. */
  readonly dir: string;
  readonly cluster: string;
  readonly natsServerBin: string;
  /** TEST-ONLY PAXOSSTORE_BREAK for every node (a deliberate bug), if any. */
  readonly breakName?: string;
  readonly log: (line: string) => void;
}

interface Proc {
  child: ChildProcess | null;
  exited: Promise<void>;
}

export class VerifyCluster {
  readonly members: readonly string[];
  private readonly nodes = new Map<string, Proc>();
  private readonly servers = new Map<string, Proc>();
  private readonly logs = new Map<string, WriteStream>();
  private readonly paused = new Set<string>();
  private stopping = false;

  constructor(private readonly options: ClusterOptions) {
    this.members = options.net.nodes.map((n) => n.node);
    for (const sub of ["data", "logs", "nats", "faults"]) mkdirSync(path.join(options.dir, sub), { recursive: true });
  }

  /** A client URL of the node's own nats-server (reached from the host over the bridge). */
  serverUrl(node: string): string {
    return `nats://${nodeNet(this.options.net, node).ip}:${CLIENT_PORT}`;
  }

  get prefix(): string {
    return `paxosstore.${this.options.cluster}`;
  }

  logDir(): string {
    return path.join(this.options.dir, "logs");
  }

  dataDir(node: string): string {
    return path.join(this.options.dir, "data", node);
  }

  /** Starts every server, waits until they are routed together, then every node, until ready. */
  async start(): Promise<void> {
    for (const node of this.members) this.startServer(node);
    await Promise.all(this.members.map((node) => this.waitForServer(node)));
    await Promise.all(this.members.map((node) => this.startNode(node)));
  }

  /** kill -9 of the node process (its server stays up). */
  async kill9(node: string): Promise<void> {
    const p = this.nodes.get(node);
    if (p?.child === null || p === undefined) return;
    this.paused.delete(node);
    p.child.kill("SIGKILL");
    await p.exited;
  }

  /** Starts a node that is down, and waits until it is ready. */
  async restart(node: string): Promise<void> {
    await this.startNode(node);
  }

  pause(node: string): void {
    const child = this.nodes.get(node)?.child;
    if (child === null || child === undefined) return;
    child.kill("SIGSTOP");
    this.paused.add(node);
  }

  resume(node: string): void {
    const child = this.nodes.get(node)?.child;
    this.paused.delete(node);
    child?.kill("SIGCONT");
  }

  /** Removes a stopped node's data directory: the disk is lost. */
  wipe(node: string): void {
    if (this.nodes.get(node)?.child) throw new Error(`wipe ${node}: the node is running`);
    rmSync(this.dataDir(node), { recursive: true, force: true });
  }

  /** The slow-disk fault: every storage commit of the node waits `ms` first (0: off). */
  setFsyncDelay(node: string, ms: number): void {
    writeFileSync(this.fsyncDelayFile(node), String(ms));
  }

  isUp(node: string): boolean {
    return (this.nodes.get(node)?.child ?? null) !== null;
  }

  /** Stops everything: nodes gracefully (SIGKILL after a grace), then servers. Never throws. */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    for (const node of this.members) this.resume(node);
    await Promise.all([...this.nodes.values()].map((p) => stopProc(p, graceMs)));
    await Promise.all([...this.servers.values()].map((p) => stopProc(p, 5_000)));
    await Promise.all([...this.logs.values()].map((s) => new Promise<void>((r) => s.end(r))));
  }

  /** SIGKILL of everything at once, for a hurried exit (Ctrl-C twice, a crash). */
  killAllNow(): void {
    this.stopping = true;
    for (const p of [...this.nodes.values(), ...this.servers.values()]) {
      try {
        p.child?.kill("SIGCONT");
        p.child?.kill("SIGKILL");
      } catch {
        // gone
      }
    }
  }

  // ----------------------------------------------------------------------------- internals

  private fsyncDelayFile(node: string): string {
    return path.join(this.options.dir, "faults", `${node}.fsync-delay-ms`);
  }

  private logStream(name: string): WriteStream {
    let s = this.logs.get(name);
    if (s === undefined) this.logs.set(name, (s = createWriteStream(path.join(this.logDir(), `${name}.log`), { flags: "a" })));
    return s;
  }

  private spawnIn(node: string, name: string, argv: string[], env: NodeJS.ProcessEnv): Proc {
    const full = inNamespace(this.options.net, node, argv);
    // pdeathsig: if this process dies without its cleanup (kill -9), the kernel kills the
    // child too; `ip netns exec` and setpriv exec in place, so the pid is the program's.
    // detached: a process group of its own, so a Ctrl-C in the terminal reaches verify alone,
    // which then stops the cluster in order.
    const child = spawn("setpriv", ["--pdeathsig", "KILL", "--", ...full], {
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, PATH: `${process.env.PATH ?? ""}:/usr/sbin:/sbin`, ...env },
    });
    const log = this.logStream(name);
    log.write(`--- ${new Date().toISOString()} verify: started ${name} (pid ${child.pid}): ${full.join(" ")}\n`);
    child.stdout?.pipe(log, { end: false });
    child.stderr?.pipe(log, { end: false });
    const proc: Proc = { child, exited: Promise.resolve() };
    proc.exited = new Promise<void>((resolve) => {
      child.once("exit", (code, signal) => {
        log.write(`--- ${new Date().toISOString()} verify: ${name} exited (${signal ?? code})\n`);
        proc.child = null;
        resolve();
      });
    });
    return proc;
  }

  private startServer(node: string): void {
    const net = this.options.net;
    const me = nodeNet(net, node);
    const routes = net.nodes.filter((n) => n.node !== node).map((n) => `"nats-route://${n.ip}:${ROUTE_PORT}"`);
    // Pings every second, two missed: a cut route or client is dropped in about 2-3 s.
    const config = [
      `server_name: "${node}"`,
      `listen: "0.0.0.0:${CLIENT_PORT}"`,
      `ping_interval: "1s"`,
      `ping_max: 2`,
      `write_deadline: "2s"`,
      `cluster {`,
      `  name: "verify"`,
      `  listen: "${me.ip}:${ROUTE_PORT}"`,
      `  routes: [${routes.join(", ")}]`,
      `}`,
    ].join("\n");
    const file = path.join(this.options.dir, "nats", `${node}.conf`);
    writeFileSync(file, config + "\n");
    this.servers.set(node, this.spawnIn(node, `nats-${node}`, [this.options.natsServerBin, "-c", file], {}));
  }

  /** Waits until the node's server takes client connections (routes are checked by warmUp). */
  private async waitForServer(node: string): Promise<void> {
    const until = Date.now() + READY_TIMEOUT_MS;
    let last = "";
    while (Date.now() < until) {
      if (this.servers.get(node)?.child === null) throw new Error(`nats-server of ${node} exited at start: see ${this.logDir()}/nats-${node}.log`);
      try {
        const nc = await natsConnect({ servers: this.serverUrl(node), reconnect: false, timeout: 1_000 });
        await nc.close();
        return;
      } catch (e) {
        last = (e as Error).message;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`nats-server of ${node} not ready in ${READY_TIMEOUT_MS / 1000} s (${last}): see ${this.logDir()}/nats-${node}.log`);
  }

  /**
   * Waits until every node answers `status` through every server: the routes are up and each
   * node's subscriptions have reached every server.
   */
  async warmUp(timeoutMs = READY_TIMEOUT_MS): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (const server of this.members) {
      const nc = await natsConnect({ servers: this.serverUrl(server), timeout: 2_000 });
      try {
        for (const node of this.members) {
          for (;;) {
            try {
              await nc.request(`${this.prefix}.api.${node}`, new TextEncoder().encode(JSON.stringify({ op: "status" })), { timeout: 1_000 });
              break;
            } catch (e) {
              if (Date.now() > until) throw new Error(`node ${node} does not answer through the server of ${server}: ${(e as Error).message}`);
              await new Promise((r) => setTimeout(r, 200));
            }
          }
        }
      } finally {
        await nc.close();
      }
    }
  }

  private async startNode(node: string): Promise<void> {
    if (this.nodes.get(node)?.child) return;
    if (this.stopping) return;
    const argv = [
      process.execPath,
      BIN,
      "node",
      "--node-id",
      node,
      "--cluster",
      this.options.cluster,
      "--members",
      this.members.join(","),
      "--nats",
      `nats://127.0.0.1:${CLIENT_PORT}`,
      "--data-dir",
      this.dataDir(node),
      "--log-level",
      "info",
    ];
    const env: NodeJS.ProcessEnv = { PAXOSSTORE_FAULT_FSYNC_DELAY_FILE: this.fsyncDelayFile(node) };
    if (this.options.breakName !== undefined) env.PAXOSSTORE_BREAK = this.options.breakName;
    const proc = this.spawnIn(node, node, argv, env);
    this.nodes.set(node, proc);
    const ready = new Promise<boolean>((resolve) => {
      let buf = "";
      const onData = (d: Buffer): void => {
        buf = (buf + d.toString()).slice(-4096);
        if (buf.includes(`paxosstore node ${node} ready`)) {
          proc.child?.stdout?.off("data", onData);
          resolve(true);
        }
      };
      proc.child?.stdout?.on("data", onData);
      void proc.exited.then(() => resolve(false));
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), READY_TIMEOUT_MS)));
    const ok = await Promise.race([ready, timeout]);
    clearTimeout(timer);
    if (!ok && !this.stopping) throw new Error(`node ${node} did not become ready: see ${this.logDir()}/${node}.log`);
  }
}

function stopProc(p: Proc, graceMs: number): Promise<void> {
  const child = p.child;
  if (child === null) return Promise.resolve();
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  child.kill("SIGCONT");
  child.kill("SIGTERM");
  return p.exited.then(() => clearTimeout(timer));
}

/** True when the CLI is built (bin/paxosstore.mjs runs dist/). */
export function cliBuilt(): boolean {
  return existsSync(path.join(REPO_ROOT, "dist/cli/main.js"));
}
