// `paxosstore node` and the CLI as an operator meets them, as processes: configuration errors
// are one line and exit 2; a node started before NATS waits for it (a log line per attempt)
// and then serves; its log is JSON lines from first to last (config with sources, ready with
// version/node/cluster/NATS URL/user, shutdown phases); the health endpoint answers; NATS
// refusing the credentials is exit 6 for a node and for the CLI (not "unavailable", 4).

import { spawn, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { NATS_CONFIGS, REPO_ROOT, startNatsServer, type NatsServer } from "../helpers/natsServer.js";
import { freePort } from "../helpers/ports.js";
import { tempDir, type TempDir } from "../helpers/tmp.js";

const MAIN = path.join(REPO_ROOT, "src/cli/main.ts");

interface Proc {
  readonly child: ChildProcess;
  readonly out: string[];
  readonly err: string[];
  readonly exited: Promise<number | null>;
}

function run(args: string[], env: Record<string, string> = {}): Proc {
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("PAXOSSTORE_") && v !== undefined) clean[k] = v;
  const child = spawn(process.execPath, ["--import", "tsx", MAIN, ...args], { cwd: REPO_ROOT, env: { ...clean, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const out: string[] = [];
  const err: string[] = [];
  for (const [stream, lines] of [[child.stdout!, out], [child.stderr!, err]] as const) {
    let buf = "";
    stream.on("data", (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        lines.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    });
  }
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  procs.push(child);
  return { child, out, err, exited };
}

const procs: ChildProcess[] = [];
const servers: NatsServer[] = [];
const dirs: TempDir[] = [];
afterAll(async () => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
  await Promise.all(servers.map((s) => s.stop()));
  await Promise.all(dirs.map((d) => d.cleanup()));
});

async function until<T>(what: string, probe: () => T | undefined | null | false | Promise<T | undefined | null | false>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const json = (lines: string[]): Record<string, unknown>[] => lines.map((l) => JSON.parse(l) as Record<string, unknown>);

describe("paxosstore node as a process", () => {
  it("a bad --log-level, a bad value and an unknown config key are one line on stderr and exit 2", async () => {
    const dir = await tempDir("nodecfg");
    dirs.push(dir);
    const bad = run(["node", "--node-id", "n1", "--members", "n1", "--log-level", "loud"]);
    expect(await bad.exited).toBe(2);
    expect(bad.err).toEqual([expect.stringMatching(/^paxosstore node: logLevel \(--log-level\) must be one of fatal\|error/)]);
    expect(bad.out).toEqual([]);

    const conf = path.join(dir.path, "node.json");
    writeFileSync(conf, JSON.stringify({ nodeId: "n1", members: ["n1"], dataDirectory: "/x" }));
    const unknown = run(["node", "--config", conf]);
    expect(await unknown.exited).toBe(2);
    expect(unknown.err).toEqual([expect.stringMatching(/unknown key "dataDirectory"/)]);

    const port = run(["node", "--node-id", "n1", "--members", "n1"], { PAXOSSTORE_HTTP_PORT: "http" });
    expect(await port.exited).toBe(2);
    expect(port.err).toEqual([expect.stringMatching(/httpPort \(PAXOSSTORE_HTTP_PORT\) must be an integer/)]);
  }, 60_000);

  it("started before NATS, it retries with a line per attempt, then serves; health endpoint; JSON log lines only; graceful stop", async () => {
    const dir = await tempDir("nodeorder");
    dirs.push(dir);
    const natsPort = await freePort();
    const httpPort = await freePort();
    const node = run(
      ["node", "--node-id", "n1", "--members", "n1", "--cluster", "ord", "--nats", `nats://127.0.0.1:${natsPort}`, "--data-dir", path.join(dir.path, "n1"), "--http-port", String(httpPort)],
      { PAXOSSTORE_NATS_USER: "someone", PAXOSSTORE_NATS_WAIT_MS: "60000" },
    );
    await until("two retry lines", () => json(node.out).filter((l) => l.event === "nats_connect_retry").length >= 2);
    expect(node.child.exitCode).toBeNull();
    const nats = await startNatsServer({ port: natsPort });
    servers.push(nats);
    const ready = await until("ready", () => json(node.out).find((l) => l.event === "ready"));
    expect(ready).toMatchObject({ node: "n1", cluster: "ord", nats: `127.0.0.1:${natsPort}`, natsUser: null, version: expect.any(String), httpPort });
    const lines = json(node.out); // throws if any line is not JSON
    const config = lines.find((l) => l.event === "config") as { settings: Record<string, { from: string }> };
    expect(config.settings.nodeId).toEqual({ value: "n1", from: "flag" });
    expect(config.settings.natsWaitMs).toEqual({ value: 60000, from: "env" });
    expect(config.settings.replication).toEqual({ value: 3, from: "default" });
    expect(lines.find((l) => l.event === "config_ignored_env")).toMatchObject({ ignored: ["PAXOSSTORE_NATS_USER"] });

    const base = `http://127.0.0.1:${httpPort}`;
    expect((await fetch(`${base}/livez`)).status).toBe(200);
    // One member: a majority is this node alone, so it is ready as soon as it serves.
    const rz = await fetch(`${base}/readyz`);
    expect(rz.status).toBe(200);
    expect(await rz.json()).toEqual({ ok: true, checks: { natsConnected: true, storageOpen: true, peersSeen: true, notStopping: true } });
    const status = (await (await fetch(`${base}/status.json`)).json()) as Record<string, any>;
    expect(status).toMatchObject({ node: "n1", ready: true, nats: { connected: true }, groups: { groupsCatchingUp: 0 }, peerFrames: { badFrames: 0 } });
    expect(status.diskBytes).toBeGreaterThan(0);
    expect((await fetch(`${base}/nope`)).status).toBe(404);

    // NATS goes away and comes back: logged both ways, and /readyz follows.
    await nats.stop();
    await until("nats_disconnect", () => json(node.out).find((l) => l.event === "nats_disconnect"));
    await until("/readyz 503", async () => (await fetch(`${base}/readyz`)).status === 503 || null, 10_000);
    const notReady = (await (await fetch(`${base}/readyz`)).json()) as { checks: { natsConnected: boolean } };
    expect(notReady.checks.natsConnected).toBe(false);
    servers.push(await startNatsServer({ port: natsPort }));
    await until("nats_reconnect", () => json(node.out).find((l) => l.event === "nats_reconnect"));
    expect((await fetch(`${base}/readyz`)).status).toBe(200);

    node.child.kill("SIGTERM");
    expect(await node.exited).toBe(0);
    const phases = json(node.out).filter((l) => l.event === "shutdown").map((l) => l.phase);
    expect(phases).toEqual(["signal", "stop_accepting", "calls_done", "flush_storage", "drain_nats", "stopped"]);
    expect(node.err).toEqual([]);
  }, 90_000);

  it("NATS refusing the credentials: a node exits 6 at once (no retry loop), the CLI exits 6 (not 4)", async () => {
    const dir = await tempDir("nodeauth");
    dirs.push(dir);
    const nats = await startNatsServer({
      config: NATS_CONFIGS.secured,
      env: Object.fromEntries(["N1", "N2", "N3", "ALICE", "BOB"].map((u) => [`PAXOSSTORE_${u}_PASSWORD`, JSON.stringify(`pw-${u}`)])),
    });
    servers.push(nats);
    const pass = path.join(dir.path, "wrong.pass");
    writeFileSync(pass, "not-the-password\n");
    const node = run(["node", "--node-id", "n1", "--members", "n1,n2,n3", "--nats", nats.url, "--user", "n1", "--pass-file", pass, "--data-dir", path.join(dir.path, "n1")]);
    expect(await node.exited).toBe(6);
    const failed = json(node.out).find((l) => l.event === "start_failed");
    expect(String(failed?.err)).toMatch(/Authorization/i);
    expect(json(node.out).filter((l) => l.event === "nats_connect_retry")).toEqual([]);

    const cli = run(["status", "--servers", nats.url, "--user", "alice", "--pass-file", pass, "--inbox-prefix", "_INBOX_alice"]);
    expect(await cli.exited).toBe(6);
    expect(cli.err.join("\n")).toMatch(/refused the credentials/);
  }, 60_000);
});
