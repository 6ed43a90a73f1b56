// The node's TEST-ONLY hooks that `npm run verify` drives (src/actors/testHooks.ts): off unless
// set, an unknown break refused, the slow-disk delay read from its control file and applied
// before a storage commit starts.

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ConfigError } from "../../src/actors/nodeConfig.js";
import { breaksFromEnv, fsyncDelayFromEnv } from "../../src/actors/testHooks.js";
import type { Persist } from "../../src/protocol/durable.js";
import { StorageWriter } from "../../src/storage/writer.js";
import { meta, persist } from "../storage/records.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("PAXOSSTORE_BREAK", () => {
  it("is off unless set", () => {
    expect(breaksFromEnv({})).toBeUndefined();
    expect(breaksFromEnv({ PAXOSSTORE_BREAK: "" })).toBeUndefined();
  });

  it("names known breaks, and refuses an unknown one", () => {
    expect([...breaksFromEnv({ PAXOSSTORE_BREAK: "read-without-probe" })!]).toEqual(["read-without-probe"]);
    expect(() => breaksFromEnv({ PAXOSSTORE_BREAK: "read-without-probe,no-such-bug" })).toThrow(ConfigError);
  });
});

describe("PAXOSSTORE_FAULT_FSYNC_DELAY_FILE", () => {
  it("is off unless set, and no file means no delay", () => {
    expect(fsyncDelayFromEnv({})).toBeUndefined();
    const dir = mkdtempSync(path.join(os.tmpdir(), "paxosstore-hooks-"));
    dirs.push(dir);
    expect(fsyncDelayFromEnv({ PAXOSSTORE_FAULT_FSYNC_DELAY_FILE: path.join(dir, "absent") })!()).toBe(0);
  });

  it("delays each storage commit by the milliseconds in the file", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "paxosstore-hooks-"));
    dirs.push(dir);
    const file = path.join(dir, "delay");
    writeFileSync(file, "120");
    const delay = fsyncDelayFromEnv({ PAXOSSTORE_FAULT_FSYNC_DELAY_FILE: file })!;
    expect(delay()).toBe(120);
    const committedAt: number[] = [];
    const writer = new StorageWriter({ commit: async (_batch: readonly Persist[]) => void committedAt.push(performance.now()) }, { faultDelayMs: delay });
    const t0 = performance.now();
    await writer.persist(persist("g", { meta: meta(1) }));
    expect(committedAt[0]! - t0).toBeGreaterThanOrEqual(100);
  });
});
