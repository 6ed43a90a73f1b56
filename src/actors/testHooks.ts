// TEST-ONLY switches of a node, read from its environment, for `npm run verify`
// (test/linearizability, docs/VERIFY.md). Nothing here is on unless its variable is set; a
// production node never sets them.
//
//   PAXOSSTORE_BREAK=read-without-probe        deliberate protocol bugs (protocol/config.ts
//                                              BreakName), comma-separated: prove that verify
//                                              catches them. An unknown name is refused.
//   PAXOSSTORE_FAULT_FSYNC_DELAY_FILE=PATH     a slow disk: every storage commit waits the
//                                              number of milliseconds written in PATH (absent,
//                                              empty or 0: no delay) before it starts, i.e.
//                                              before its fsync. The file is re-read at most
//                                              every 100 ms, so a test turns the fault on and
//                                              off while the node runs.

import { readFileSync } from "node:fs";
import { BREAK_NAMES, type BreakName } from "../protocol/config.js";
import { ConfigError } from "./nodeConfig.js";

/** The breaks PAXOSSTORE_BREAK asks for; undefined when unset. Throws ConfigError on an unknown name. */
export function breaksFromEnv(env: NodeJS.ProcessEnv): ReadonlySet<BreakName> | undefined {
  const raw = env.PAXOSSTORE_BREAK;
  if (raw === undefined || raw.trim() === "") return undefined;
  const names = raw.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
  for (const name of names)
    if (!(BREAK_NAMES as readonly string[]).includes(name))
      throw new ConfigError(`PAXOSSTORE_BREAK: unknown break "${name}" (test-only; known: ${BREAK_NAMES.join(", ")})`);
  return new Set(names as BreakName[]);
}

const FSYNC_DELAY_REREAD_MS = 100;

/** The slow-disk hook PAXOSSTORE_FAULT_FSYNC_DELAY_FILE asks for: the delay in ms now; undefined when unset. */
export function fsyncDelayFromEnv(env: NodeJS.ProcessEnv): (() => number) | undefined {
  const file = env.PAXOSSTORE_FAULT_FSYNC_DELAY_FILE;
  if (file === undefined || file === "") return undefined;
  let readAt = -Infinity;
  let delayMs = 0;
  return () => {
    const now = performance.now();
    if (now - readAt >= FSYNC_DELAY_REREAD_MS) {
      readAt = now;
      try {
        const n = Number(readFileSync(file, "utf8").trim() || "0");
        delayMs = Number.isFinite(n) && n > 0 ? Math.min(n, 60_000) : 0;
      } catch {
        delayMs = 0; // no file: no fault
      }
    }
    return delayMs;
  };
}
