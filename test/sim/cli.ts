// `npm run sim -- --seeds N [--replicas 3|5] [--start S] [--break NAME] [--verbose]`
//
// Runs seeds start..start+N-1 of the deterministic simulation. On the first failing seed it
// prints the checker's message, the seed and the command that replays it, and exits 1. When
// every seed passes, the last line is exactly `sim: N seeds passed`. `--break NAME` switches a
// deliberate protocol bug on for every seed: the run is then expected to fail. `--verbose`
// prints the whole trace of the run (meant for one seed).

import { BREAK_NAMES, type BreakName } from "../../src/protocol/config.js";
import { replayCommand, runSeeds } from "./run.js";

interface CliOptions {
  seeds: number;
  start: number;
  replicas: 3 | 5 | undefined;
  breaks: BreakName[];
  verbose: boolean;
  membershipStress: boolean;
}

function usage(problem: string): never {
  process.stderr.write(
    `sim: ${problem}\nusage: npm run sim -- --seeds N [--replicas 3|5] [--start S] [--break ${BREAK_NAMES.join("|")}] [--membership-stress] [--verbose]\n`,
  );
  process.exit(2);
}

function parseArgs(argv: readonly string[]): CliOptions {
  const options: CliOptions = { seeds: 1000, start: 1, replicas: undefined, breaks: [], verbose: false, membershipStress: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) usage(`${arg} needs a value`);
      return v;
    };
    const integer = (min: number): number => {
      const raw = value();
      const n = Number(raw);
      if (!Number.isSafeInteger(n) || n < min) usage(`${arg} needs an integer >= ${min}, got ${raw}`);
      return n;
    };
    switch (arg) {
      case "--seeds":
        options.seeds = integer(1);
        break;
      case "--start":
        options.start = integer(0);
        break;
      case "--replicas": {
        const n = integer(3);
        if (n !== 3 && n !== 5) usage(`--replicas must be 3 or 5, got ${n}`);
        options.replicas = n;
        break;
      }
      case "--break": {
        const name = value();
        if (!(BREAK_NAMES as readonly string[]).includes(name)) usage(`unknown break ${name}; one of ${BREAK_NAMES.join(", ")}`);
        options.breaks.push(name as BreakName);
        break;
      }
      case "--verbose":
        options.verbose = true;
        break;
      case "--membership-stress":
        options.membershipStress = true;
        break;
      case "--help":
      case "-h":
        usage("help");
        break;
      default:
        usage(`unknown argument ${arg}`);
    }
  }
  return options;
}

function main(): void {
  // `npm run sim -- ... --verbose | head` closes the pipe early: that is not a failure.
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(0);
    throw e;
  });
  const options = parseArgs(process.argv.slice(2));
  const what = `${options.replicas ?? "3/5"} replicas${options.breaks.length > 0 ? `, break ${options.breaks.join(",")}` : ""}`;
  process.stdout.write(`sim: seeds ${options.start}..${options.start + options.seeds - 1}, ${what}\n`);
  const summary = runSeeds({
    start: options.start,
    count: options.seeds,
    replicas: options.replicas,
    breaks: options.breaks,
    membershipStress: options.membershipStress,
    trace: options.verbose ? (line) => process.stdout.write(`${line}\n`) : undefined,
    onProgress: (p) =>
      process.stdout.write(`sim: ${p.done}/${options.seeds} seeds, ${p.failed} failed, ${p.seedsPerSecond.toFixed(0)} seeds/s\n`),
  });
  for (const [kind, n] of summary.notes) {
    process.stdout.write(`sim: note ${kind} in ${n.seeds} of ${summary.done} seeds; first, seed ${n.firstSeed}: ${n.first}\n`);
  }
  const failure = summary.failures[0];
  if (failure !== undefined) {
    process.stdout.write(
      [
        `sim: seed ${failure.seed} FAILED (${failure.replicas} replicas) after ${summary.done} seeds in ${summary.seconds.toFixed(1)} s`,
        `  checker: ${failure.failure!.checker}`,
        `  ${failure.failure!.message.split("\n").join("\n  ")}`,
        `  replay: ${replayCommand(failure.seed, failure.replicas, options.breaks, options.membershipStress)}`,
        "",
      ].join("\n"),
    );
    process.exit(1);
  }
  process.stdout.write(
    `sim: ${summary.done} seeds in ${summary.seconds.toFixed(1)} s (${(summary.done / summary.seconds).toFixed(0)} seeds/s, ${summary.steps} steps)\n`,
  );
  process.stdout.write(`sim: ${summary.done} seeds passed\n`);
}

main();
