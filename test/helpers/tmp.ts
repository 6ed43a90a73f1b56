// Temporary directories for tests (LevelDB data dirs, nats-server dirs, logs).
//
// Each directory is removed by its cleanup(), and any not yet removed are removed when the
// process exits. Set KEEP_TMP=1 to keep them for a post-mortem (their paths are printed).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export interface TempDir {
  /** Absolute path of the directory (exists until cleanup). */
  readonly path: string;
  /** Remove the directory and everything in it; safe to call more than once. */
  cleanup(): Promise<void>;
}

const live = new Set<string>();
let exitHookInstalled = false;

function keep(): boolean {
  return process.env.KEEP_TMP === "1" || process.env.KEEP_TMP === "true";
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const dir of live) {
      if (keep()) {
        process.stderr.write(`tmp: kept ${dir}\n`);
        continue;
      }
      try {
        fs.rmSync(dir, { recursive: true, force: true });
      } catch {
        // best effort at exit
      }
    }
    live.clear();
  });
}

/** A fresh directory under the OS temp dir, named `paxosstore-<prefix>-XXXXXX`. */
export async function tempDir(prefix = "test"): Promise<TempDir> {
  installExitHook();
  const safe = prefix.replace(/[^A-Za-z0-9._-]/g, "_");
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), `paxosstore-${safe}-`));
  live.add(dir);
  return {
    path: dir,
    async cleanup() {
      if (!live.delete(dir)) return;
      if (keep()) {
        process.stderr.write(`tmp: kept ${dir}\n`);
        return;
      }
      await fs.promises.rm(dir, { recursive: true, force: true, maxRetries: 3 });
    },
  };
}
