// Runs many seeds: shared by the CLI (`npm run sim`) and the test suite, so the test needs no
// child processes. Without a fixed replica count, seeds alternate 3 and 5 replicas (odd seeds
// 3, even seeds 5), so a seed number alone names a run.

import type { BreakName } from "../../src/protocol/config.js";
import type { SeedResult } from "./simulation.js";
import { runSeed } from "./simulation.js";

export interface RunOptions {
  readonly start: number;
  readonly count: number;
  readonly replicas?: 3 | 5;
  readonly breaks?: readonly BreakName[];
  /** Stop at the first failing seed (the default: one failure is enough to replay). */
  readonly stopOnFailure?: boolean;
  /** Called about every `progressMs` of wall time. */
  readonly onProgress?: (p: RunProgress) => void;
  readonly progressMs?: number;
  readonly trace?: (line: string) => void;
  readonly membershipStress?: boolean;
}

export interface RunProgress {
  readonly done: number;
  readonly failed: number;
  readonly seedsPerSecond: number;
}

export interface RunSummary {
  readonly done: number;
  readonly passed: number;
  readonly failures: SeedResult[];
  readonly seconds: number;
  readonly steps: number;
  /** Notes (see SeedStats.notes) by kind: in how many seeds, and the first example. */
  readonly notes: Map<string, { seeds: number; firstSeed: number; first: string }>;
}

export function replicasForSeed(seed: number, fixed?: 3 | 5): 3 | 5 {
  return fixed ?? (seed % 2 === 1 ? 3 : 5);
}

export function runSeeds(options: RunOptions): RunSummary {
  const breaks = new Set(options.breaks ?? []);
  const stopOnFailure = options.stopOnFailure ?? true;
  const progressMs = options.progressMs ?? 2000;
  const startedAt = performance.now();
  let lastProgress = startedAt;
  const failures: SeedResult[] = [];
  let done = 0;
  let steps = 0;
  const notes = new Map<string, { seeds: number; firstSeed: number; first: string }>();
  for (let seed = options.start; seed < options.start + options.count; seed++) {
    const result = runSeed({ seed, replicas: replicasForSeed(seed, options.replicas), breaks, trace: options.trace, membershipStress: options.membershipStress });
    done++;
    steps += result.stats.steps;
    for (const [kind, detail] of Object.entries(result.stats.notes)) {
      const n = notes.get(kind);
      if (n === undefined) notes.set(kind, { seeds: 1, firstSeed: seed, first: detail });
      else n.seeds++;
    }
    if (result.failure !== null) {
      failures.push(result);
      if (stopOnFailure) break;
    }
    const now = performance.now();
    if (options.onProgress !== undefined && now - lastProgress >= progressMs) {
      lastProgress = now;
      options.onProgress({ done, failed: failures.length, seedsPerSecond: (done * 1000) / (now - startedAt) });
    }
  }
  const seconds = (performance.now() - startedAt) / 1000;
  return { done, passed: done - failures.length, failures, seconds, steps, notes };
}

export function replayCommand(seed: number, replicas: 3 | 5, breaks: readonly BreakName[], membershipStress = false): string {
  const b = breaks.map((name) => ` --break ${name}`).join("");
  return `npm run sim -- --seeds 1 --start ${seed} --replicas ${replicas}${b}${membershipStress ? " --membership-stress" : ""} --verbose`;
}
