// `paxosstore dev`: a local 3-node cluster in the foreground, with its own nats-server.
// Data lives in ./.data/dev (kept across runs); Ctrl-C stops the nodes gracefully, then NATS.
// It starts the parts, waits until each node is ready, shows a write and a linearizable read
// going through two different nodes, and prints how to use the cluster.

import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, accessSync, constants } from "node:fs";
import { createConnection } from "node:net";
import { join, resolve, delimiter } from "node:path";
import { fileURLToPath } from "node:url";
import { connect } from "@nats-io/transport-node";
import type { Command } from "commander";

const BIN = fileURLToPath(new URL("../../bin/paxosstore.mjs", import.meta.url));

export function findNatsServer(): string | null {
  const fromEnv = process.env.NATS_SERVER_BIN;
  if (fromEnv && existsSync(fromEnv)) return fromEnv;
  for (const dir of [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/usr/local/sbin"]) {
    const candidate = join(dir, "nats-server");
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

function portInUse(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = createConnection({ port, host: "127.0.0.1" });
    s.once("connect", () => (s.destroy(), res(true)));
    s.once("error", () => res(false));
  });
}

async function waitForPort(port: number, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await portInUse(port)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

function prefixed(child: ChildProcess, tag: string, onLine?: (line: string) => void): void {
  for (const stream of [child.stdout, child.stderr]) {
    let buf = "";
    stream?.on("data", (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        onLine?.(line);
        process.stdout.write(`${tag} ${line}\n`);
      }
    });
  }
}

export function registerDevCommand(program: Command): void {
  program
    .command("dev")
    .description("run a local 3-node cluster with its own nats-server in the foreground (Ctrl-C stops it)")
    .option("--nodes <n>", "number of nodes", "3")
    .option("--nats-port <port>", "port of the cluster's nats-server", "4222")
    .option("--data-dir <dir>", "where the nodes keep their data", ".data/dev")
    .option("--cluster <name>", "cluster name", "dev")
    .action(async (opts: { nodes: string; natsPort: string; dataDir: string; cluster: string }) => {
      const n = Number(opts.nodes);
      const port = Number(opts.natsPort);
      if (!Number.isInteger(n) || n < 1 || n > 9) fail("--nodes must be 1..9");
      if (!Number.isInteger(port) || port < 1 || port > 65535) fail("--nats-port must be a port number");
      const natsBin = findNatsServer();
      if (natsBin === null) fail("nats-server is not installed: run `bash infra/install-nats-server.sh` (or set NATS_SERVER_BIN)");
      if (await portInUse(port)) fail(`port ${port} is taken (another nats-server or cluster?): stop it or pass --nats-port`);
      const dataDir = resolve(opts.dataDir);
      mkdirSync(join(dataDir, "nats"), { recursive: true });
      const url = `nats://127.0.0.1:${port}`;
      const members = Array.from({ length: n }, (_, i) => `n${i + 1}`);
      const children: ChildProcess[] = [];

      console.log(`paxosstore dev: starting nats-server on ${url} (data in ${dataDir})`);
      const nats = spawn(natsBin!, ["-a", "127.0.0.1", "-p", String(port), "-sd", join(dataDir, "nats")], { stdio: ["ignore", "pipe", "pipe"] });
      prefixed(nats, "[nats]");
      if (!(await waitForPort(port, 10_000))) fail("nats-server did not start (see [nats] lines above)");

      const ready = new Set<string>();
      for (const id of members) {
        const child = spawn(
          process.execPath,
          [BIN, "node", "--node-id", id, "--cluster", opts.cluster, "--members", members.join(","), "--nats", url, "--data-dir", join(dataDir, id), "--log-level", "info"],
          { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env } },
        );
        children.push(child);
        prefixed(child, `[${id}]`, (line) => {
          if (line.includes(`paxosstore node ${id} ready`)) ready.add(id);
        });
        child.once("exit", (code, signal) => {
          if (!stopping) console.log(`[${id}] exited (${signal ?? code}); the others keep serving while a majority is up`);
        });
      }

      let stopping = false;
      const stopAll = async (): Promise<void> => {
        if (stopping) return;
        stopping = true;
        console.log("\npaxosstore dev: stopping the nodes (finishing calls in flight, flushing storage)...");
        await Promise.all(children.map((c) => stopChild(c, 15_000)));
        await stopChild(nats, 5_000);
        console.log("paxosstore dev: stopped. Data kept in " + dataDir);
        process.exit(0);
      };
      process.on("SIGINT", () => void stopAll());
      process.on("SIGTERM", () => void stopAll());

      const until = Date.now() + 30_000;
      while (ready.size < n && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      if (ready.size < n) {
        console.error(`paxosstore dev: only ${[...ready].join(",") || "no nodes"} became ready in 30 s`);
        await stopAll();
        return;
      }
      await demo(url, opts.cluster, members);
      console.log(`
paxosstore dev: a ${n}-node cluster "${opts.cluster}" is running.
  NATS:        ${url}
  nodes:       ${members.join(", ")}  (data in ${dataDir})
  API subject: paxosstore.${opts.cluster}.api   (JSON or msgpack request/reply, see docs/API.md)

Try, in another terminal:
  npx paxosstore put greeting hello
  npx paxosstore get greeting
  npx paxosstore status
or with any NATS client:
  nats req paxosstore.${opts.cluster}.api '{"op":"get","key":"greeting"}'

Press Ctrl-C to stop everything.`);
    });
}

/** Shows the cluster working: a write through the first node, a linearizable read through the last. */
async function demo(url: string, cluster: string, members: string[]): Promise<void> {
  const nc = await connect({ servers: url });
  try {
    const enc = (o: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(o));
    const dec = (d: Uint8Array): Record<string, unknown> => JSON.parse(new TextDecoder().decode(d)) as Record<string, unknown>;
    const first = members[0]!;
    const last = members[members.length - 1]!;
    const value = `hello from the dev cluster at ${new Date().toISOString()}`;
    const put = dec((await nc.request(`paxosstore.${cluster}.api.${first}`, enc({ op: "put", key: "dev:hello", value }), { timeout: 10_000 })).data);
    const get = dec((await nc.request(`paxosstore.${cluster}.api.${last}`, enc({ op: "get", key: "dev:hello" }), { timeout: 10_000 })).data);
    console.log(`paxosstore dev: put dev:hello through ${first} -> ${JSON.stringify(put)}`);
    console.log(`paxosstore dev: linearizable get dev:hello through ${last} -> ${JSON.stringify(get)}`);
  } catch (e) {
    console.log(`paxosstore dev: the demo write/read failed: ${(e as Error).message}`);
  } finally {
    await nc.close();
  }
}

function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  return new Promise((res) => {
    if (child.exitCode !== null || child.signalCode !== null) return res();
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    child.once("exit", () => {
      clearTimeout(timer);
      res();
    });
    child.kill("SIGTERM");
  });
}

function fail(message: string): never {
  console.error(`paxosstore dev: ${message}`);
  process.exit(2);
}
