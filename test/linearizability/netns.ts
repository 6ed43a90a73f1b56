// The network of `npm run verify`: one Linux network namespace per node (its nats-server and
// its node process live there), each joined to a host bridge by a veth pair, so that a cut is
// real: DROP rules inside a namespace stop its TCP traffic to a peer's address, and nats-server
// notices the dead route by its pings. The recorder's clients run in the host namespace and
// reach every server over the bridge, so a client of a cut-off server is on the minority side.
//
// Everything here is named with one prefix (`psv-`) and one subnet, and a lock file records
// the run that owns them: a run killed before its cleanup leaves names that the next run finds
// and removes (after checking that the owner is gone), so a stale setup never breaks a run.
// Needs root, `ip` (iproute2) and `iptables` (bash infra/install-iptables.sh).

import { execFile, execFileSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";

const PREFIX = "psv-";
const BRIDGE = `${PREFIX}br`;
const SUBNET = "10.231.77";
const HOST_IP = `${SUBNET}.1`;
const LOCK_FILE = "/run/paxosstore-verify.lock";
const PATH_EXTRA = ":/usr/sbin:/sbin";

export interface NodeNet {
  readonly node: string;
  /** The namespace's name. */
  readonly ns: string;
  /** The node's address on the bridge (its nats-server listens there). */
  readonly ip: string;
}

export interface Network {
  readonly bridge: string;
  readonly hostIp: string;
  readonly nodes: readonly NodeNet[];
}

/** What is missing to run here, or null when the network can be built. */
export function networkProblem(): string | null {
  if (process.getuid?.() !== 0) return "verify needs root: it creates network namespaces, a bridge and iptables rules (run it as root, e.g. sudo npm run verify)";
  for (const [tool, flag] of [["ip", "-V"], ["iptables", "--version"]] as const) {
    try {
      run(tool, [flag]);
    } catch {
      return `\`${tool}\` is not installed: run \`bash infra/install-iptables.sh\` (as root)`;
    }
  }
  return null;
}

export function layout(nodes: readonly string[]): Network {
  if (nodes.length > 200) throw new Error("too many nodes for one /24");
  return {
    bridge: BRIDGE,
    hostIp: HOST_IP,
    nodes: nodes.map((node, i) => ({ node, ns: `${PREFIX}${node}`, ip: `${SUBNET}.${11 + i}` })),
  };
}

/**
 * Takes the lock and builds the network, after removing what a dead earlier run left. Throws
 * when another live run holds the lock (two runs would tear down each other's network).
 */
export function setUpNetwork(net: Network): void {
  takeLock();
  removeStale();
  run("ip", ["link", "add", net.bridge, "type", "bridge"]);
  run("ip", ["addr", "add", `${net.hostIp}/24`, "dev", net.bridge]);
  run("ip", ["link", "set", net.bridge, "up"]);
  // A Docker engine sets FORWARD's policy to DROP, and bridged frames may pass through it.
  run("iptables", ["-w", "-I", "FORWARD", "-i", net.bridge, "-o", net.bridge, "-j", "ACCEPT"]);
  for (const [i, n] of net.nodes.entries()) {
    const hostEnd = `${PREFIX}${i}h`;
    const nsEnd = `${PREFIX}${i}i`;
    run("ip", ["netns", "add", n.ns]);
    run("ip", ["link", "add", hostEnd, "type", "veth", "peer", "name", nsEnd]);
    run("ip", ["link", "set", nsEnd, "netns", n.ns]);
    run("ip", ["link", "set", hostEnd, "master", net.bridge]);
    run("ip", ["link", "set", hostEnd, "up"]);
    run("ip", ["-n", n.ns, "addr", "add", `${n.ip}/24`, "dev", nsEnd]);
    run("ip", ["-n", n.ns, "link", "set", nsEnd, "up"]);
    run("ip", ["-n", n.ns, "link", "set", "lo", "up"]);
  }
}

/**
 * Removes everything (processes in the namespaces included) and releases the lock. Does
 * nothing while another live run holds the lock: that network is not ours. Never throws.
 */
export function tearDownNetwork(): void {
  const owner = lockOwner();
  if (owner !== null && owner !== process.pid && alive(owner)) return;
  removeStale();
  rmSync(LOCK_FILE, { force: true });
}

/** Cuts `node` off from the given peers in both directions (its clients on the host still reach it). */
export async function cut(net: Network, node: string, peers: readonly string[]): Promise<void> {
  const self = nodeNet(net, node);
  for (const peer of peers) {
    const ip = nodeNet(net, peer).ip;
    await runAsync("ip", ["netns", "exec", self.ns, "iptables", "-w", "-A", "INPUT", "-s", ip, "-j", "DROP"]);
    await runAsync("ip", ["netns", "exec", self.ns, "iptables", "-w", "-A", "OUTPUT", "-d", ip, "-j", "DROP"]);
  }
}

/** Removes every cut of every namespace. */
export async function healAll(net: Network): Promise<void> {
  for (const n of net.nodes) {
    await runAsync("ip", ["netns", "exec", n.ns, "iptables", "-w", "-F", "INPUT"]);
    await runAsync("ip", ["netns", "exec", n.ns, "iptables", "-w", "-F", "OUTPUT"]);
  }
}

export function nodeNet(net: Network, node: string): NodeNet {
  const n = net.nodes.find((x) => x.node === node);
  if (n === undefined) throw new Error(`no such node ${node}`);
  return n;
}

/** The command line that runs `argv` inside the node's namespace. */
export function inNamespace(net: Network, node: string, argv: readonly string[]): string[] {
  return ["ip", "netns", "exec", nodeNet(net, node).ns, ...argv];
}

// ------------------------------------------------------------------------------- internals

function removeStale(): void {
  for (const ns of listNamespaces()) {
    // Processes left in a namespace of a dead run (nodes, nats-servers): they hold ports.
    for (const pid of tryRun("ip", ["netns", "pids", ns]).split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), "SIGKILL");
      } catch {
        // gone already
      }
    }
    tryRun("ip", ["netns", "del", ns]);
  }
  // Deleting a namespace deletes its veth ends and so their host ends; the bridge is ours alone.
  for (const link of tryRun("ip", ["-o", "link", "show"]).split("\n")) {
    const name = /^\d+:\s+([^:@\s]+)/.exec(link)?.[1];
    if (name !== undefined && name.startsWith(PREFIX)) tryRun("ip", ["link", "del", name]);
  }
  for (let i = 0; i < 20; i++) {
    try {
      run("iptables", ["-w", "-D", "FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT"]);
    } catch {
      break;
    }
  }
}

function listNamespaces(): string[] {
  return tryRun("ip", ["netns", "list"])
    .split("\n")
    .map((line) => line.split(/\s+/)[0] ?? "")
    .filter((ns) => ns.startsWith(PREFIX));
}

function takeLock(): void {
  const owner = lockOwner();
  if (owner !== null && owner !== process.pid && alive(owner))
    throw new Error(`another verify run (pid ${owner}) is using the test network (${LOCK_FILE}); wait for it or stop it`);
  writeFileSync(LOCK_FILE, String(process.pid));
}

function lockOwner(): number | null {
  try {
    const pid = Number(readFileSync(LOCK_FILE, "utf8").trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

const env = (): NodeJS.ProcessEnv => ({ ...process.env, PATH: `${process.env.PATH ?? ""}${PATH_EXTRA}` });

function run(cmd: string, args: readonly string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: "utf8", env: env(), stdio: ["ignore", "pipe", "pipe"], timeout: 30_000 });
  } catch (e) {
    const err = e as Error & { stderr?: string };
    throw new Error(`${cmd} ${args.join(" ")} failed: ${(err.stderr ?? err.message).trim()}`);
  }
}

function tryRun(cmd: string, args: readonly string[]): string {
  try {
    return run(cmd, args);
  } catch {
    return "";
  }
}

function runAsync(cmd: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { encoding: "utf8", env: env(), timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(" ")} failed: ${(stderr || err.message).trim()}`));
      else resolve(stdout);
    });
  });
}
