// `npm run verify`: a Jepsen-style check of a real local cluster (docs/VERIFY.md).
//
// It builds a network of namespaces (netns.ts), starts 3 nodes with their own nats-servers in
// a NATS cluster (cluster.ts), runs many clients (recorder.ts, workload.ts) while faults come
// and go (nemesis.ts), tears everything down, checks the history with the linearizability
// checker (checker.ts), and writes a report folder (report.ts). It prints progress and ends
// with one verdict line:
//   verify: linearizable (N ops, F faults)                   exit 0
//   verify: NOT linearizable (N ops, F faults): group G: ...  exit 1
//   verify: undecided (N ops, F faults): search budget ...     exit 3
// and exits 2 when it cannot run (not root, no iptables, CLI not built, ...), saying why.

import { mkdirSync, rmSync } from "node:fs";
import path from "node:path";
import { Command, InvalidArgumentError } from "commander";
import { findNatsServer } from "../../src/cli/devCommand.js";
import { BREAK_NAMES } from "../../src/protocol/config.js";
import { checkHistory } from "./checker.js";
import { cliBuilt, VerifyCluster } from "./cluster.js";
import type { HistoryOp } from "./history.js";
import { ALL_NEMESES, DEFAULT_NEMESES, Nemesis, type NemesisName } from "./nemesis.js";
import { layout, networkProblem, setUpNetwork, tearDownNetwork } from "./netns.js";
import { Recorder } from "./recorder.js";
import { writeFaults, writeHistory, writeReport, type Verdict } from "./report.js";
import { rngOf } from "./rng.js";
import { Workload } from "./workload.js";

const MEMBERS = ["n1", "n2", "n3"];

interface Options {
  duration: number;
  clients: number;
  registers: number;
  groups: number;
  nemesis: NemesisName[];
  seed: number;
  reportDir: string;
  keep: boolean;
  break?: string;
  faultMs: [number, number];
  calmMs: [number, number];
  thinkMs: number;
  searchBudget: number;
}

class SetupError extends Error {}

const say = (line: string): void => void process.stdout.write(`verify: ${line}\n`);

function parse(argv: string[]): Options {
  const int = (name: string, min: number, max: number) => (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer in [${min}, ${max}]`);
    return n;
  };
  const range = (v: string): [number, number] => {
    const m = /^(\d+)-(\d+)$/.exec(v);
    if (m === null || Number(m[1]) > Number(m[2])) throw new InvalidArgumentError("give MIN-MAX in ms, e.g. 3000-8000");
    return [Number(m[1]), Number(m[2])];
  };
  const nemeses = (v: string): NemesisName[] => {
    if (v === "none") return [];
    if (v === "all") return [...ALL_NEMESES];
    if (v === "default") return [...DEFAULT_NEMESES];
    const names = v.split(",").map((s) => s.trim());
    for (const n of names) if (!(ALL_NEMESES as readonly string[]).includes(n)) throw new InvalidArgumentError(`unknown nemesis "${n}"; known: ${ALL_NEMESES.join(", ")} (or default, all, none)`);
    return names as NemesisName[];
  };
  const program = new Command("verify")
    .description("check a real local 3-node cluster for linearizability under faults (as root; docs/VERIFY.md)")
    .option("--duration <s>", "seconds of client operations", int("--duration", 1, 86_400), 60)
    .option("--clients <n>", "logical client processes", int("--clients", 1, 500), 15)
    .option("--registers <n>", "single-key registers (each its own group)", int("--registers", 0, 1000), 4)
    .option("--groups <n>", "multi-key groups (txns)", int("--groups", 0, 1000), 4)
    .option("--nemesis <list>", `faults, comma-separated: ${ALL_NEMESES.join(", ")}; or default (${DEFAULT_NEMESES.join(",")}), all, none`, nemeses, [...DEFAULT_NEMESES])
    .option("--seed <n>", "seed of the schedule and workload (default: random, printed)", int("--seed", 0, 0xffffffff), Math.floor(Math.random() * 0x7fffffff))
    .option("--report-dir <dir>", "where the report folder <timestamp>/ goes", "verify-report")
    .option("--keep", "keep the nodes' data directories in the report folder", false)
    .option("--break <name>", `TEST-ONLY: run every node with this deliberate bug (${BREAK_NAMES.join(", ")}); verify should then fail`)
    .option("--fault-ms <min-max>", "how long each fault lasts", range, [4000, 10000] as [number, number])
    .option("--calm-ms <min-max>", "calm between faults", range, [2000, 5000] as [number, number])
    .option("--think-ms <n>", "each client waits up to this long between operations", int("--think-ms", 0, 10_000), 20)
    // Above the checker's own default (2M, a few seconds): groups of a 10-minute run with many
    // unknown outcomes after faults have needed tens of millions of steps to decide.
    .option("--search-budget <steps>", "the checker's search budget per group", int("--search-budget", 1_000, 1_000_000_000), 30_000_000)
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
    .parse(argv, { from: "user" });
  const o = program.opts<Options>();
  if (o.break !== undefined && !(BREAK_NAMES as readonly string[]).includes(o.break)) {
    console.error(`verify: --break must be one of ${BREAK_NAMES.join(", ")}`);
    process.exit(2);
  }
  if (o.registers + o.groups === 0) {
    console.error("verify: --registers and --groups cannot both be 0");
    process.exit(2);
  }
  return o;
}

async function main(): Promise<number> {
  const o = parse(process.argv.slice(2));
  const problem = networkProblem();
  if (problem !== null) throw new SetupError(problem);
  const natsBin = findNatsServer();
  if (natsBin === null) throw new SetupError("nats-server is not installed: run `bash infra/install-nats-server.sh`");
  if (!cliBuilt()) throw new SetupError("the CLI is not built: run `npm run build` (npm run verify does)");

  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const dir = path.resolve(o.reportDir, stamp);
  mkdirSync(dir, { recursive: true });
  const rng = rngOf(o.seed);
  say(`seed ${o.seed}, ${o.duration} s, ${o.clients} clients, ${o.registers} registers + ${o.groups} groups, nemeses: ${o.nemesis.join(",") || "none"}${o.break ? `, BREAK ${o.break} (test-only)` : ""}`);
  say(`report folder ${dir}`);

  const net = layout(MEMBERS);
  const cluster = new VerifyCluster({ net, dir, cluster: "verify", natsServerBin: natsBin, breakName: o.break, log: say });
  const workload = new Workload(rng.fork(), { registers: o.registers, groups: o.groups });
  const attemptTimeoutMs = 1_500;
  const recorder = new Recorder({
    prefix: cluster.prefix,
    cluster: "verify",
    members: MEMBERS,
    serverUrl: (n) => cluster.serverUrl(n),
    clients: o.clients,
    workload,
    rng: rng.fork(),
    attemptTimeoutMs,
    attemptsMax: 3,
    thinkMsMax: o.thinkMs,
  });
  const nemesis = new Nemesis({ cluster, net, rng: rng.fork(), names: o.nemesis, faultMs: o.faultMs, calmMs: o.calmMs, log: say });

  // Ctrl-C: stop the clients and faults, then clean up as usual; another one a second later
  // kills at once. The same Ctrl-C often arrives twice (from the terminal, and relayed by npm
  // or tsx): a repeat within a second is that one.
  let interrupted = 0;
  let firstSignalAt = 0;
  const onSignal = (signal: string): void => {
    if (interrupted > 0 && Date.now() - firstSignalAt < 1_000) return;
    interrupted++;
    if (interrupted === 1) {
      firstSignalAt = Date.now();
      say(`${signal}: stopping and cleaning up (again to kill at once)`);
      recorder.stop();
      nemesis.stop();
    } else {
      say(`${signal}: killing the cluster and removing the network now`);
      cluster.killAllNow();
      tearDownNetwork();
      process.exit(130);
    }
  };
  process.on("SIGINT", () => onSignal("SIGINT"));
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  process.on("SIGHUP", () => onSignal("SIGHUP"));

  let ops: HistoryOp[];
  const startedAt = Date.now();
  try {
    say("setting up network namespaces and the cluster");
    setUpNetwork(net);
    await cluster.start();
    await cluster.warmUp();
    await recorder.connect();
    say(`cluster up in ${((Date.now() - startedAt) / 1000).toFixed(1)} s; running clients for ${o.duration} s`);
    const t0 = performance.now();
    const deadline = t0 + o.duration * 1000;
    let lastCount = 0;
    let lastAt = t0;
    const progress = setInterval(() => {
      const now = performance.now();
      const c = recorder.counts;
      const rate = ((c.invoked - lastCount) * 1000) / (now - lastAt);
      lastCount = c.invoked;
      lastAt = now;
      const active = nemesis.active();
      say(
        `${((now - t0) / 1000).toFixed(0)}/${o.duration} s: ${c.invoked} ops (ok ${c.ok}, fail ${c.fail}, unknown ${c.unknown}), ${rate.toFixed(0)}/s, ` +
          `${nemesis.faults.length} faults${active ? ` [now: ${active.kind} ${active.nodes.join(",")}]` : ""}`,
      );
    }, 5_000);
    try {
      await Promise.all([recorder.run(deadline), nemesis.run(deadline)]);
    } finally {
      clearInterval(progress);
      // Either may have failed (a node that did not restart): stop the other one too.
      recorder.stop();
      nemesis.stop();
      await nemesis.healEverything();
    }
    ops = recorder.history();
  } finally {
    await recorder.close().catch(() => undefined);
    await cluster.stop();
    tearDownNetwork();
    if (!o.keep) rmSync(path.join(dir, "data"), { recursive: true, force: true });
  }
  writeHistory(dir, ops);
  writeFaults(dir, nemesis.faults);
  const faults = nemesis.faults.length;
  if (interrupted > 0) {
    say(`interrupted: ${ops.length} ops and ${faults} faults written to ${dir}, not checked`);
    return 130;
  }
  say(`recorded ${ops.length} ops and ${faults} faults; checking (${new Set(ops.map((x) => x.group)).size} groups)`);

  const checkStarted = Date.now();
  const result = checkHistory(ops, { onProgress: (line) => say(`checker: ${line}`), searchBudget: o.searchBudget });
  const checkS = ((Date.now() - checkStarted) / 1000).toFixed(1);
  const counts = `(${ops.length} ops, ${faults} faults)`;
  // The verdict is one line; the checker's explanation may go on over more lines after it.
  const [firstLine, ...moreLines] = result.ok === true ? [""] : result.message.split("\n");
  const verdict: Verdict =
    result.ok === true
      ? { ok: true, line: `verify: linearizable ${counts}` }
      : {
          ok: false,
          line: `verify: ${result.ok === false ? "NOT linearizable" : "undecided"} ${counts}: ${firstLine}`,
          group: result.group,
          message: result.message,
          window: result.window,
        };
  const picture = writeReport({
    dir,
    ops,
    faults: nemesis.faults,
    members: MEMBERS,
    clientServers: recorder.clientServers,
    verdict,
    summary: {
      seed: o.seed,
      // Wall-clock ms of the history's time 0: a history time t is (timeOriginMs + t) in the node logs' "time".
      timeOriginMs: performance.timeOrigin,
      durationS: o.duration,
      clients: o.clients,
      registers: o.registers,
      groups: o.groups,
      nemeses: o.nemesis,
      searchBudget: o.searchBudget,
      break: o.break ?? null,
      ops: ops.length,
      outcomes: recorder.counts,
      faults,
      faultsByKind: Object.fromEntries(o.nemesis.map((k) => [k, nemesis.faults.filter((f) => f.kind === k).length])),
      checkSeconds: Number(checkS),
    },
  });
  say(`checked in ${checkS} s; report: ${dir} (picture: ${path.basename(picture)})`);
  if (result.ok !== true) say(`the ${result.ok === false ? "failing" : "undecided"} window (${result.window.length} ops) is in violation.json and drawn in red in ${path.basename(picture)}`);
  process.stdout.write(verdict.line + "\n");
  for (const line of moreLines) process.stdout.write(`  ${line}\n`);
  // 3: the checker ran out of search budget in a group: neither proof nor violation.
  return result.ok === true ? 0 : result.ok === false ? 1 : 3;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    if (e instanceof SetupError) console.error(`verify: setup error: ${e.message}`);
    else console.error(`verify: setup error: ${(e as Error).stack ?? String(e)}`);
    tearDownNetwork();
    process.exit(2);
  },
);
