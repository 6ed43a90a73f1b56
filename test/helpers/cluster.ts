// A real local cluster for integration tests: one nats-server (test/helpers/natsServer.ts) and
// N node PROCESSES (`paxosstore node`, run from source with tsx), each with its own LevelDB
// directory. Nodes can be killed with SIGKILL, stopped with SIGTERM and started again on the
// same data, which is what the durability tests need.
//
//   const c = await startCluster({ nodes: 3 });
//   const r = await c.request({ op: "put", key: "k", value: "v" }, "n1");
//   await c.kill9("n1"); await c.start("n1");
//   await c.close();

import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { connect, headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import { REPO_ROOT, startNatsServer, type NatsServer } from "./natsServer.js";
import { tempDir, type TempDir } from "./tmp.js";

export interface ClusterOptions {
  nodes?: number;
  cluster?: string;
  /** Extra environment for every node (PAXOSSTORE_* settings). */
  env?: Record<string, string>;
  /** Extra command-line arguments for one node (e.g. its own --http-port). */
  nodeArgs?: (id: string) => string[];
  /** Print the nodes' output (debugging). */
  verbose?: boolean;
  /**
   * Nodes beyond the founding members (n<nodes+1>...), not started: `start(id)` runs them with
   * `--join`, for `paxosstore members add` (issue 13).
   */
  spares?: number;
}

export interface NodeProcess {
  readonly id: string;
  readonly dataDir: string;
  child: ChildProcess | null;
  /** Output lines so far (stdout and stderr). */
  readonly lines: string[];
}

export interface TestCluster {
  readonly nats: NatsServer;
  readonly url: string;
  readonly cluster: string;
  readonly members: readonly string[];
  readonly nodes: ReadonlyMap<string, NodeProcess>;
  /** A client connection the test may use (closed by close()). */
  readonly nc: NatsConnection;
  start(id: string): Promise<void>;
  /** SIGTERM and wait for a clean exit; returns the exit code. */
  stop(id: string): Promise<number | null>;
  kill9(id: string): Promise<void>;
  /**
   * A JSON request to `<prefix>.api.<node>` (or the queue subject when node is omitted).
   * `direct`: the node proposes a write itself, never relays it (PaxosStore-Direct).
   */
  request(body: Record<string, unknown>, node?: string, timeoutMs?: number, direct?: boolean): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

const MAIN = path.join(REPO_ROOT, "src/cli/main.ts");

export async function startCluster(options: ClusterOptions = {}): Promise<TestCluster> {
  const n = options.nodes ?? 3;
  const cluster = options.cluster ?? "t";
  const members = Array.from({ length: n }, (_, i) => `n${i + 1}`);
  const spares = Array.from({ length: options.spares ?? 0 }, (_, i) => `n${n + i + 1}`);
  const nats = await startNatsServer();
  const dir: TempDir = await tempDir("cluster");
  const nodes = new Map<string, NodeProcess>();
  for (const id of [...members, ...spares]) nodes.set(id, { id, dataDir: path.join(dir.path, id), child: null, lines: [] });

  const start = async (id: string): Promise<void> => {
    const node = nodes.get(id)!;
    if (node.child !== null) throw new Error(`${id} is running`);
    const child = spawn(
      process.execPath,
      ["--import", "tsx", MAIN, "node", "--node-id", id, "--cluster", cluster, "--members", members.join(","), "--nats", nats.url, "--data-dir", node.dataDir, ...(spares.includes(id) ? ["--join"] : []), ...(options.nodeArgs?.(id) ?? [])],
      { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, PAXOSSTORE_LOG_LEVEL: "info", ...options.env } },
    );
    node.child = child;
    const ready = new Promise<void>((resolve, reject) => {
      const onLine = (line: string): void => {
        node.lines.push(line);
        if (options.verbose) console.log(`[${id}] ${line}`);
        if (line.includes(`paxosstore node ${id} ready`)) resolve();
      };
      for (const stream of [child.stdout!, child.stderr!]) {
        let buf = "";
        stream.on("data", (d: Buffer) => {
          buf += d.toString();
          let i;
          while ((i = buf.indexOf("\n")) >= 0) {
            onLine(buf.slice(0, i));
            buf = buf.slice(i + 1);
          }
        });
      }
      child.once("exit", (code, signal) => {
        if (node.child === child) node.child = null;
        reject(new Error(`${id} exited before ready (${signal ?? code}):\n${node.lines.slice(-20).join("\n")}`));
      });
    });
    await withTimeout(ready, 30_000, `${id} did not become ready`);
  };

  const exited = (child: ChildProcess): Promise<number | null> =>
    child.exitCode !== null || child.signalCode !== null ? Promise.resolve(child.exitCode) : new Promise((r) => child.once("exit", (code) => r(code)));

  const stop = async (id: string): Promise<number | null> => {
    const node = nodes.get(id)!;
    const child = node.child;
    if (child === null) return null;
    const done = exited(child);
    child.kill("SIGTERM");
    const code = await withTimeout(done, 20_000, `${id} did not stop on SIGTERM`);
    node.child = null;
    return code;
  };

  const kill9 = async (id: string): Promise<void> => {
    const node = nodes.get(id)!;
    const child = node.child;
    if (child === null) return;
    const done = exited(child);
    child.kill("SIGKILL");
    await done;
    node.child = null;
  };

  try {
    await Promise.all(members.map(start));
  } catch (e) {
    for (const id of members) await kill9(id);
    await nats.stop();
    await dir.cleanup();
    throw e;
  }
  const nc = await connect({ servers: nats.url, noAsyncTraces: true });
  const prefix = `paxosstore.${cluster}`;

  return {
    nats,
    url: nats.url,
    cluster,
    members,
    nodes,
    nc,
    start,
    stop,
    kill9,
    async request(body, node, timeoutMs = 10_000, direct = false) {
      const subject = node === undefined ? `${prefix}.api` : `${prefix}.api.${node}`;
      const h = natsHeaders();
      if (direct) h.set("PaxosStore-Direct", "1");
      const m = await nc.request(subject, new TextEncoder().encode(JSON.stringify(body)), { timeout: timeoutMs, headers: h });
      return JSON.parse(new TextDecoder().decode(m.data)) as Record<string, unknown>;
    },
    async close() {
      await nc.close().catch(() => undefined);
      await Promise.all([...nodes.keys()].map((id) => stop(id).catch(() => kill9(id))));
      await nats.stop();
      await dir.cleanup();
    },
  };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(what)), ms)))]).finally(() => clearTimeout(timer));
}
