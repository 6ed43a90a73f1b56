// Whether the container tests can run here, checked once per test file, and the images they use.
//
// - A Docker engine answers (testcontainers' getContainerRuntimeClient(), bounded): the tests
//   run. The images are built first (infra/images/build.sh) when missing or stale: the node
//   image's label org.paxosstore.source must equal infra/images/fingerprint.mjs of this tree.
//   PAXOSSTORE_TEST_IMAGES=keep uses whatever images exist; =rebuild always rebuilds.
// - None answers: the tests are skipped with a loud notice, unless REQUIRE_DOCKER=1 (CI), where
//   a test fails saying why.
// - Ryuk (testcontainers' reaper) cannot be pulled without a registry: when its image is not
//   here and TESTCONTAINERS_RYUK_DISABLED is unset, it is disabled (the tests stop everything
//   they start; leftovers carry the label org.testcontainers=true).

import { execFile, execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { getContainerRuntimeClient, ImageName, type ContainerRuntimeClient } from "testcontainers";
import { describe, it } from "vitest";
import { DEFAULT_NATS_IMAGE, DEFAULT_NODE_IMAGE } from "../../src/testcontainers/index.js";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const RYUK_IMAGE = process.env.RYUK_CONTAINER_IMAGE ?? "testcontainers/ryuk:0.14.0";
const CHECK_TIMEOUT_MS = 10_000;

export type DockerCheck = { readonly ok: true; readonly client: ContainerRuntimeClient; readonly version: string } | { readonly ok: false; readonly reason: string };

export const requireDocker = process.env.REQUIRE_DOCKER === "1" || process.env.REQUIRE_DOCKER === "true";

async function checkDocker(): Promise<DockerCheck> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<DockerCheck>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, reason: `no answer from a Docker engine within ${CHECK_TIMEOUT_MS / 1000} s` }), CHECK_TIMEOUT_MS);
    timer.unref();
  });
  const check = (async (): Promise<DockerCheck> => {
    try {
      const client = await getContainerRuntimeClient();
      return { ok: true, client, version: String(client.info.containerRuntime.serverVersion) };
    } catch (e) {
      return { ok: false, reason: (e as Error).message };
    }
  })();
  const result = await Promise.race([check, timeout]);
  clearTimeout(timer);
  if (result.ok && process.env.TESTCONTAINERS_RYUK_DISABLED === undefined && !(await result.client.image.exists(ImageName.fromString(RYUK_IMAGE)))) {
    process.env.TESTCONTAINERS_RYUK_DISABLED = "true";
    console.warn(`container tests: ${RYUK_IMAGE} is not here: testcontainers' reaper is disabled (TESTCONTAINERS_RYUK_DISABLED=true); the tests remove what they start`);
  }
  return result;
}

/** Checked once when this module loads (each test file loads it once). */
export const docker: DockerCheck = await checkDocker();

let bannerShown = false;

function banner(reason: string): void {
  if (bannerShown) return;
  bannerShown = true;
  const line = "!".repeat(100);
  console.warn(
    [
      "",
      line,
      "!!! CONTAINER TESTS SKIPPED: no Docker engine answers.",
      `!!! ${reason}`,
      "!!! Start one (Debian: bash infra/install-docker.sh && bash infra/dockerd.sh start) to run test/containers,",
      "!!! or set REQUIRE_DOCKER=1 to make a missing engine a failure (CI does).",
      line,
      "",
    ].join("\n"),
  );
}

/**
 * `describe` for container tests: runs them when Docker answers; else skips them loudly, or,
 * with REQUIRE_DOCKER=1, replaces them with one failing test that says why.
 */
export function describeWithDocker(name: string, fn: () => void): void {
  if (docker.ok) {
    describe(name, fn);
    return;
  }
  const reason = docker.reason;
  if (requireDocker) {
    describe(name, () => {
      it("needs a Docker engine (REQUIRE_DOCKER=1)", () => {
        throw new Error(`REQUIRE_DOCKER=1 but no Docker engine answers: ${reason}. Start one: bash infra/install-docker.sh && bash infra/dockerd.sh start`);
      });
    });
    return;
  }
  banner(reason);
  describe.skip(name, fn);
}

// ---------------------------------------------------------------------------------- images

const LOCK_DIR = path.join(os.tmpdir(), "paxosstore-images.lock");
const LOCK_STALE_MS = 15 * 60_000;

function expectedFingerprint(): string {
  return execFileSync(process.execPath, [path.join(ROOT, "infra/images/fingerprint.mjs"), ROOT], { encoding: "utf8" }).trim();
}

async function imagesState(client: ContainerRuntimeClient): Promise<"fresh" | "missing" | "stale"> {
  const dockerode = client.container.dockerode;
  const inspect = async (name: string) => dockerode.getImage(name).inspect().catch(() => null);
  const [node, nats] = await Promise.all([inspect(DEFAULT_NODE_IMAGE), inspect(DEFAULT_NATS_IMAGE)]);
  if (node === null || nats === null) return "missing";
  // Images named by the user (PAXOSSTORE_NODE_IMAGE) are theirs: not ours to call stale.
  if (process.env.PAXOSSTORE_NODE_IMAGE !== undefined) return "fresh";
  const label = node.Config?.Labels?.["org.paxosstore.source"];
  return label === expectedFingerprint() ? "fresh" : "stale";
}

/** Takes a lock across processes (two test files, or two test runs, may want to build at once). */
async function withLock<T>(fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    try {
      mkdirSync(LOCK_DIR);
      writeFileSync(path.join(LOCK_DIR, "pid"), String(process.pid));
      break;
    } catch {
      let stale = false;
      try {
        const pid = Number(readFileSync(path.join(LOCK_DIR, "pid"), "utf8"));
        stale = Date.now() - statSync(LOCK_DIR).mtimeMs > LOCK_STALE_MS || !alive(pid);
      } catch {
        stale = Date.now() - (statSafe(LOCK_DIR) ?? Date.now()) > 5_000; // no pid file yet: give its maker a moment
      }
      if (stale) rmSync(LOCK_DIR, { recursive: true, force: true });
      else if (Date.now() > deadline) throw new Error(`waited 10 min for ${LOCK_DIR} (another image build); remove it if no build runs`);
      else await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(LOCK_DIR, { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

function statSafe(p: string): number | null {
  try {
    return statSync(p).mtimeMs;
  } catch {
    return null;
  }
}

let images: Promise<void> | null = null;

/** Makes sure the images exist and match this tree, building them (infra/images/build.sh) if not. */
export function ensureImages(): Promise<void> {
  return (images ??= (async () => {
    if (!docker.ok) throw new Error("no Docker engine");
    const mode = process.env.PAXOSSTORE_TEST_IMAGES ?? "auto";
    const client = docker.client;
    if (mode === "keep" && (await imagesState(client)) !== "missing") return;
    if (mode !== "rebuild" && (await imagesState(client)) === "fresh") return;
    await withLock(async () => {
      const state = await imagesState(client); // another process may have built them meanwhile
      if (mode !== "rebuild" && state === "fresh") return;
      console.warn(`container tests: images ${state === "missing" ? "missing" : mode === "rebuild" ? "rebuilt on request" : "stale (the tree changed since they were built)"}: running infra/images/build.sh`);
      const t0 = Date.now();
      await new Promise<void>((resolve, reject) => {
        execFile(
          "bash",
          [path.join(ROOT, "infra/images/build.sh")],
          { cwd: ROOT, env: { ...process.env, IMAGES_REQUIRE_APP: "1" }, maxBuffer: 64 * 1024 * 1024 },
          (error, stdout, stderr) => {
            if (error) reject(new Error(`infra/images/build.sh failed (${error.message}):\n${stdout}\n${stderr}`));
            else resolve();
          },
        );
      });
      console.warn(`container tests: images built in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    });
  })());
}
