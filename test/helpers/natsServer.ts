// Real nats-server processes for integration tests.
//
//   const nats = await startNatsServer();                       // infra/nats/plain.conf
//   const nc = await connect({ servers: nats.url });
//   ...
//   await nats.stop();                                           // SIGTERM, SIGKILL after 5 s
//
// Every server gets a free port on 127.0.0.1 (the config's host/port are overridden with
// -a/-p), its own temp dir (cwd, pid file, JetStream store if asked) and a unique server name
// (-n), which is how the helper knows that the server answering on the port is the one it
// started. Servers still running when the test process exits are killed; on Linux they also
// get SIGKILL from the kernel if the process that spawned them dies (setpriv --pdeathsig).
//
// nats-server is looked up as $NATS_SERVER_BIN, then on PATH, then in /usr/sbin (Debian's
// package) and /usr/local/bin. Install it with: bash infra/install-nats-server.sh
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "./ports.js";
import { tempDir, type TempDir } from "./tmp.js";

/** Repository root (this file is test/helpers/natsServer.ts). */
export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
/** The configs shipped in infra/nats. */
export const NATS_CONFIGS = {
  plain: path.join(REPO_ROOT, "infra/nats/plain.conf"),
  secured: path.join(REPO_ROOT, "infra/nats/secured.conf"),
} as const;

export interface NatsServerOptions {
  /** Config file; relative paths are taken from the repository root. Default: infra/nats/plain.conf. */
  config?: string;
  /** Client port. Default: a free port (with retries if another process takes it first). */
  port?: number;
  /** Listen address. Default 127.0.0.1. */
  host?: string;
  /** Extra command-line arguments (they come after -c, so they override the file). */
  args?: string[];
  /** Extra environment for the server, e.g. the passwords secured.conf reads. */
  env?: Record<string, string>;
  /** Enable JetStream with its store in the server's temp dir. */
  jetstream?: boolean;
  /** How long to wait for the server to accept connections. Default 15 s. */
  startTimeoutMs?: number;
}

export interface NatsServer {
  /** nats://host:port */
  readonly url: string;
  readonly port: number;
  readonly host: string;
  readonly pid: number;
  /** The server's own temp dir (removed by stop/kill9). */
  readonly dir: string;
  /** The unique server name given with -n. */
  readonly name: string;
  /** SIGTERM, then SIGKILL after `timeoutMs` (default 5000); resolves once the process is gone. Idempotent. */
  stop(timeoutMs?: number): Promise<void>;
  /** SIGKILL at once (a crash); resolves once the process is gone. Idempotent. */
  kill9(): Promise<void>;
  /** The last part of what the server printed (stdout and stderr), for diagnostics. */
  output(): string;
  /** True while the process runs. */
  running(): boolean;
}

const OUTPUT_KEEP = 64 * 1024;
const live = new Set<ChildProcess>();
let hooksInstalled = false;
let counter = 0;

function killAllNow(): void {
  for (const child of live) {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
  live.clear();
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.once("exit", killAllNow);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const onSignal = () => {
      killAllNow();
      // Keep the default behaviour (terminate) unless someone else handles the signal.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.once(sig, onSignal);
  }
}

function isExecutable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Path of the nats-server binary, or an Error saying how to install it. */
export function findNatsServer(): string {
  const fromEnv = process.env.NATS_SERVER_BIN;
  if (fromEnv) {
    if (isExecutable(fromEnv)) return fromEnv;
    throw new Error(
      `nats-server not found: NATS_SERVER_BIN=${fromEnv} is not an executable file; ` +
        `unset it or run infra/install-nats-server.sh`,
    );
  }
  const dirs = (process.env.PATH ?? "").split(path.delimiter).filter(Boolean);
  for (const d of [...dirs, "/usr/sbin", "/usr/local/bin", "/usr/bin"]) {
    const p = path.join(d, "nats-server");
    if (isExecutable(p)) return p;
  }
  throw new Error(
    "nats-server is not installed (looked on PATH, in /usr/sbin and /usr/local/bin, and " +
      "$NATS_SERVER_BIN): run `bash infra/install-nats-server.sh` (Debian/Ubuntu, as root) " +
      "or install nats-server 2.9+ and put it on PATH",
  );
}

const SETPRIV = "/usr/bin/setpriv";
const useSetpriv = process.platform === "linux" && isExecutable(SETPRIV);

function waitExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

/**
 * Connect to host:port and read the INFO line; resolves with the server_name in it, or
 * null if nothing (or no NATS server) answers within `timeoutMs`.
 */
function probeServerName(host: string, port: number, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    let buf = "";
    let settled = false;
    const done = (v: string | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.removeAllListeners();
      sock.on("error", () => {});
      sock.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(null), timeoutMs);
    sock.on("error", () => done(null));
    sock.on("close", () => done(null));
    sock.on("data", (chunk: Buffer) => {
      buf += chunk.toString("utf8");
      const nl = buf.indexOf("\r\n");
      if (nl < 0) {
        if (buf.length > 64 * 1024) done(null);
        return;
      }
      const line = buf.slice(0, nl);
      if (!line.startsWith("INFO ")) return done(null);
      try {
        const info = JSON.parse(line.slice(5)) as { server_name?: unknown };
        done(typeof info.server_name === "string" ? info.server_name : null);
      } catch {
        done(null);
      }
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class PortTakenError extends Error {}

async function startOnce(
  bin: string,
  config: string,
  host: string,
  port: number,
  opts: NatsServerOptions,
  dir: TempDir,
): Promise<NatsServer> {
  const name = `paxosstore-test-${process.pid}-${++counter}-${port}`;
  const args = ["-c", config, "-a", host, "-p", String(port), "-n", name, "-P", path.join(dir.path, "nats-server.pid")];
  if (opts.jetstream) args.push("-js", "-sd", path.join(dir.path, "jetstream"));
  args.push(...(opts.args ?? []));

  const cmd = useSetpriv ? SETPRIV : bin;
  const cmdArgs = useSetpriv ? ["--pdeathsig", "KILL", "--", bin, ...args] : args;
  const child = spawn(cmd, cmdArgs, {
    cwd: dir.path,
    env: { ...process.env, ...(opts.env ?? {}) },
    stdio: ["ignore", "pipe", "pipe"],
    detached: false,
  });
  installHooks();
  live.add(child);
  // A server must never keep the test process alive: one a test forgot to stop is killed
  // by the exit hook instead of hanging the run.
  child.unref();
  (child.stdout as unknown as { unref?: () => void } | null)?.unref?.();
  (child.stderr as unknown as { unref?: () => void } | null)?.unref?.();

  let out = "";
  const onData = (chunk: Buffer) => {
    out += chunk.toString("utf8");
    if (out.length > OUTPUT_KEEP * 2) out = out.slice(-OUTPUT_KEEP);
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  let spawnError: Error | undefined;
  child.once("error", (err) => {
    spawnError = err;
  });
  const exited = waitExit(child).then(() => live.delete(child));
  const output = () => (out.length > OUTPUT_KEEP ? out.slice(-OUTPUT_KEEP) : out);
  const running = () => child.exitCode === null && child.signalCode === null && !spawnError;

  const describe = () =>
    `nats-server ${[bin, ...args].join(" ")}\n--- output ---\n${output().trim() || "(none)"}`;

  // Wait until our server (by name) answers on the port.
  const deadline = Date.now() + (opts.startTimeoutMs ?? 15_000);
  let foreign = false;
  for (;;) {
    if (spawnError) throw new Error(`failed to spawn ${cmd}: ${spawnError.message}`);
    if (!running()) {
      await exited;
      if (/address already in use/i.test(out)) throw new PortTakenError(describe());
      throw new Error(
        `nats-server exited at start (code ${child.exitCode ?? "-"}, signal ${child.signalCode ?? "-"}):\n${describe()}`,
      );
    }
    const seen = await probeServerName(host, port, 1000);
    if (seen === name && running()) break;
    if (seen !== null && seen !== name) foreign = true;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      await exited;
      if (foreign) throw new PortTakenError(describe());
      throw new Error(`nats-server did not accept connections on ${host}:${port} within ${opts.startTimeoutMs ?? 15_000} ms:\n${describe()}`);
    }
    await sleep(20);
  }

  const pid = child.pid;
  if (pid === undefined) throw new Error(`nats-server has no pid:\n${describe()}`);
  let stopping: Promise<void> | undefined;
  const finish = async (p: Promise<void>) => {
    await p;
    await dir.cleanup().catch(() => {});
  };

  return {
    url: `nats://${host.includes(":") ? `[${host}]` : host}:${port}`,
    port,
    host,
    pid,
    dir: dir.path,
    name,
    output,
    running,
    stop(timeoutMs = 5000) {
      stopping ??= finish(
        (async () => {
          if (!running()) return void (await exited);
          child.kill("SIGTERM");
          const timer = setTimeout(() => {
            if (running()) child.kill("SIGKILL");
          }, timeoutMs);
          await exited;
          clearTimeout(timer);
        })(),
      );
      return stopping;
    },
    kill9() {
      stopping ??= finish(
        (async () => {
          if (running()) child.kill("SIGKILL");
          await exited;
        })(),
      );
      return stopping;
    },
  };
}

/**
 * Start a real nats-server and wait until it accepts client connections.
 * Rejects with a clear message if nats-server is not installed or fails to start.
 */
export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServer> {
  const bin = findNatsServer();
  const configRel = opts.config ?? NATS_CONFIGS.plain;
  const config = path.isAbsolute(configRel) ? configRel : path.join(REPO_ROOT, configRel);
  if (!fs.existsSync(config)) throw new Error(`nats-server config not found: ${config}`);
  const host = opts.host ?? "127.0.0.1";
  const attempts = opts.port === undefined ? 5 : 1;
  let lastErr: unknown;
  for (let i = 0; i < attempts; i++) {
    const port = opts.port ?? (await freePort(host));
    const dir = await tempDir("nats");
    try {
      return await startOnce(bin, config, host, port, opts, dir);
    } catch (err) {
      await dir.cleanup().catch(() => {});
      lastErr = err;
      if (!(err instanceof PortTakenError)) throw err;
    }
  }
  throw new Error(
    `nats-server: port ${opts.port ?? "(free port)"} was taken by another process ` +
      `(${attempts} attempt(s)):\n${lastErr instanceof Error ? lastErr.message : String(lastErr)}`,
  );
}

/** Start `n` servers in parallel (independent, not clustered). */
export async function startNatsServers(n: number, opts: NatsServerOptions = {}): Promise<NatsServer[]> {
  const started = await Promise.allSettled(Array.from({ length: n }, () => startNatsServer(opts)));
  const ok = started.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  const failed = started.find((r) => r.status === "rejected");
  if (failed && failed.status === "rejected") {
    await Promise.all(ok.map((s) => s.stop()));
    throw failed.reason;
  }
  return ok;
}
