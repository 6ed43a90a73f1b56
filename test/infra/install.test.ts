// Installing a node on a machine outside the checkout, as docs/OPERATIONS.md says: `npm pack`
// makes the package tarball (its prepare script builds dist/), `npm install -g` puts it into a
// fresh prefix, and the installed `paxosstore` runs from another directory: --help, a
// one-node cluster that starts and answers the installed CLI, a graceful stop. Also: the
// example systemd unit's config file uses only known settings.

import { execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadNodeConfig } from "../../src/actors/nodeConfig.js";
import { REPO_ROOT, startNatsServer, type NatsServer } from "../helpers/natsServer.js";
import { tempDir, type TempDir } from "../helpers/tmp.js";

const dirs: TempDir[] = [];
const servers: NatsServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  await Promise.all(dirs.map((d) => d.cleanup()));
});

describe("installing a node from the package tarball", () => {
  it("npm pack + npm install -g into a fresh prefix: paxosstore node --help, a node that serves the installed CLI, a clean stop", async () => {
    const work = await tempDir("install");
    dirs.push(work);
    const npm = (args: string[], cwd: string): string => execFileSync("npm", args, { cwd, encoding: "utf8", env: { ...process.env, npm_config_loglevel: "error" } });
    const tarball = npm(["pack", REPO_ROOT, "--pack-destination", work.path], work.path).trim().split("\n").pop()!;
    const prefix = path.join(work.path, "prefix");
    npm(["install", "-g", path.join(work.path, tarball), "--prefix", prefix, "--prefer-offline", "--no-audit", "--no-fund"], work.path);
    const bin = path.join(prefix, "bin", "paxosstore");
    const cleanEnv: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("PAXOSSTORE_") && v !== undefined) cleanEnv[k] = v;

    const help = execFileSync(bin, ["node", "--help"], { cwd: work.path, encoding: "utf8", env: cleanEnv });
    expect(help).toContain("PAXOSSTORE_NODE_ID");
    expect(help).toContain("PAXOSSTORE_NODE_NATS_PASS_FILE");

    const nats = await startNatsServer();
    servers.push(nats);
    const node = spawn(bin, ["node", "--node-id", "n1", "--members", "n1", "--cluster", "inst", "--nats", nats.url, "--data-dir", path.join(work.path, "data")], { cwd: work.path, env: cleanEnv, stdio: ["ignore", "pipe", "pipe"] });
    const exited = new Promise<number | null>((resolve) => node.once("exit", (code) => resolve(code)));
    try {
      let out = "";
      node.stdout!.on("data", (d: Buffer) => (out += d.toString()));
      const end = Date.now() + 60_000;
      while (!out.includes('"event":"ready"')) {
        if (Date.now() > end || node.exitCode !== null) throw new Error(`the installed node did not become ready:\n${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const cli = (...args: string[]): string => execFileSync(bin, [...args, "--servers", nats.url, "--cluster", "inst"], { cwd: work.path, encoding: "utf8", env: cleanEnv });
      expect(cli("put", "installed", "yes")).toMatch(/^OK version 1/);
      expect(cli("get", "installed")).toBe("yes\n");
    } finally {
      node.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
  }, 300_000);

  it("the systemd example's node.json uses only known settings", () => {
    const file = path.join(REPO_ROOT, "infra/systemd/node.json");
    JSON.parse(readFileSync(file, "utf8"));
    // Everything is known and valid; only the password file is missing on this machine.
    expect(() => loadNodeConfig(file, {})).toThrow(/nats\.passFile .*cannot read \/etc\/paxosstore\/nats\.pass/);
    const unit = readFileSync(path.join(REPO_ROOT, "infra/systemd/paxosstore.service"), "utf8");
    expect(unit).toMatch(/^ExecStart=\/usr\/local\/bin\/paxosstore node --config \/etc\/paxosstore\/node.json$/m);
    expect(unit).toMatch(/^RestartPreventExitStatus=2 6$/m);
  });
});
