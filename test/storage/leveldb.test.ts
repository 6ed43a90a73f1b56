import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Level } from "level";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { StorageCorruptError, StorageLockedError, isStorageError } from "../../src/storage/errors.js";
import { dataKey, FORMAT_KEY, groupPrefix, metaKey, requestKey, writtenMarkKey } from "../../src/storage/layout.js";
import { LevelStorage } from "../../src/storage/leveldb.js";
import { encodeRecord } from "../../src/storage/record.js";
import type { Storage } from "../../src/storage/storage.js";
import { StorageWriter } from "../../src/storage/writer.js";
import { storageConformance } from "./conformance.js";
import { ALL_BYTES, bytes, entry, meta, persist, request, sortedEntries } from "./records.js";

async function tempDir(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), "paxosstore-storage-"));
}

storageConformance("LevelStorage", async () => {
  const dir = await tempDir();
  let current = new LevelStorage(dir);
  await current.open();
  return {
    storage: current,
    reopen: async () => {
      current = new LevelStorage(dir);
      await current.open();
      return current;
    },
    cleanup: async () => {
      await current.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

/** Opens the directory with plain `level`, as a disk fault would see it: raw keys and values. */
async function withRawDb(dir: string, fn: (db: Level<Uint8Array, Uint8Array>) => Promise<void>): Promise<void> {
  const db = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: "view", valueEncoding: "view" });
  await db.open();
  try {
    await fn(db);
  } finally {
    await db.close();
  }
}

describe("LevelStorage on disk", () => {
  let dir: string;
  let storage: LevelStorage;

  beforeEach(async () => {
    dir = await tempDir();
    storage = new LevelStorage(dir);
    await storage.open();
  });

  afterEach(async () => {
    await storage.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function restart(): Promise<void> {
    await storage.close();
    storage = new LevelStorage(dir);
    await storage.open();
  }

  describe("checksums: a corrupt record is never served", () => {
    const prefix = groupPrefix("g");
    const records = {
      meta: metaKey(prefix),
      data: dataKey(prefix, "k"),
      request: requestKey(prefix, "r1"),
    };

    beforeEach(async () => {
      await storage.commit([
        persist("g", { meta: meta(4, "accepted"), keys: [["k", entry(4, ALL_BYTES)], ["k2", entry(2)]], requests: [request("r1", 1)] }),
        persist("neighbour", { keys: [["k", entry(1)]] }),
      ]);
      await storage.close();
    });

    for (const [kind, key] of Object.entries(records)) {
      for (const where of ["payload", "checksum"] as const) {
        it(`fails the load on a flipped bit in a ${kind} record's ${where}`, async () => {
          await withRawDb(dir, async (db) => {
            const value = (await db.get(key))!;
            expect(value).toBeDefined();
            const damaged = Uint8Array.from(value);
            damaged[where === "payload" ? damaged.length - 1 : 2]! ^= 0x04;
            await db.put(key, damaged);
          });
          storage = new LevelStorage(dir);
          await storage.open();
          const err = await storage.loadGroup("g").catch((e: unknown) => e);
          expect(err).toBeInstanceOf(StorageCorruptError);
          const corrupt = err as StorageCorruptError;
          expect(corrupt.code).toBe("STORAGE_CORRUPT");
          expect(corrupt.group).toBe("g");
          expect(Array.from(corrupt.key)).toEqual(Array.from(key));
          // The damage stays in its group.
          expect(sortedEntries((await storage.loadGroup("neighbour"))!)).toEqual([["k", entry(1)]]);
        });
      }
    }

    it("fails the load on a record moved under another key (the checksum covers the key)", async () => {
      await withRawDb(dir, async (db) => {
        await db.put(dataKey(prefix, "k2"), (await db.get(records.data))!);
      });
      storage = new LevelStorage(dir);
      await storage.open();
      await expect(storage.loadGroup("g")).rejects.toMatchObject({ code: "STORAGE_CORRUPT", reason: "checksum mismatch" });
    });

    it("fails the load on a well-checksummed record of the wrong shape, or a truncated one", async () => {
      await withRawDb(dir, async (db) => {
        await db.put(records.data, encodeRecord(records.data, { value: "text, not bytes", version: 1 }));
      });
      storage = new LevelStorage(dir);
      await storage.open();
      await expect(storage.loadGroup("g")).rejects.toMatchObject({ code: "STORAGE_CORRUPT", reason: "not a data entry" });
      await storage.close();

      await withRawDb(dir, async (db) => {
        await db.put(records.data, bytes(1, 2));
      });
      storage = new LevelStorage(dir);
      await storage.open();
      await expect(storage.loadGroup("g")).rejects.toBeInstanceOf(StorageCorruptError);
    });

    it("fails the load of a group whose meta record is missing", async () => {
      await withRawDb(dir, (db) => db.del(records.meta));
      storage = new LevelStorage(dir);
      await storage.open();
      await expect(storage.loadGroup("g")).rejects.toMatchObject({ code: "STORAGE_CORRUPT", group: "g" });
    });

    it("recovers a corrupt group with a reset (data catch-up) without reading the bad values", async () => {
      await withRawDb(dir, async (db) => {
        const value = Uint8Array.from((await db.get(records.data))!);
        value[value.length - 1]! ^= 0xff;
        await db.put(records.data, value);
      });
      storage = new LevelStorage(dir);
      await storage.open();
      await expect(storage.loadGroup("g")).rejects.toBeInstanceOf(StorageCorruptError);
      await storage.commit([persist("g", { meta: meta(9), reset: true, keys: [["fresh", entry(9)]] })]);
      const loaded = (await storage.loadGroup("g"))!;
      expect(sortedEntries(loaded)).toEqual([["fresh", entry(9)]]);
      expect(loaded.requests).toEqual([]);
    });
  });

  describe("the written mark (layout 2): a never-written group is told by point reads", () => {
    it("marks a group with its first commit, keeps the mark through a reset and removes it with a drop", async () => {
      const mark = writtenMarkKey(groupPrefix("g"));
      expect(await storage.loadGroup("g")).toBeNull();
      await storage.commit([persist("g", { keys: [["k", entry(1)]] })]);
      await storage.commit([persist("g", { meta: meta(2), reset: true, keys: [["k2", entry(2)]] })]);
      await storage.dropGroup("g");
      await storage.close();
      await withRawDb(dir, async (db) => {
        expect(await db.get(mark)).toBeUndefined();
      });
      storage = new LevelStorage(dir);
      await storage.open();
      // Dropped: never written as far as this node knows, not corrupt.
      expect(await storage.loadGroup("g")).toBeNull();
      await storage.commit([persist("g", { keys: [["k", entry(3)]] })]);
      await storage.close();
      await withRawDb(dir, async (db) => {
        expect(await db.get(mark)).toBeDefined();
      });
      storage = new LevelStorage(dir);
      await storage.open();
      expect(sortedEntries((await storage.loadGroup("g"))!)).toEqual([["k", entry(3)]]);
    });

    it("writes the mark again after a drop in the same process (a group's mark is written once per life)", async () => {
      const mark = writtenMarkKey(groupPrefix("g"));
      await storage.commit([persist("g", { keys: [["k", entry(1)]] })]);
      expect(await storage.loadGroup("g")).not.toBeNull();
      // Known marked now: these commits skip the mark.
      await storage.commit([persist("g", { meta: meta(2), keys: [["k", entry(2)]] })]);
      await storage.dropGroup("g");
      await storage.commit([persist("g", { meta: meta(3), keys: [["k", entry(3)]] })]);
      await storage.close();
      await withRawDb(dir, async (db) => {
        expect(await db.get(mark)).toBeDefined();
        // A lost meta record must still be found by the mark.
        await db.del(metaKey(groupPrefix("g")));
      });
      storage = new LevelStorage(dir);
      await storage.open();
      await expect(storage.loadGroup("g")).rejects.toThrow(/no meta record/);
    });

    it("lists groups without the marks", async () => {
      await storage.commit([persist("a", { keys: [["k", entry(1)]] }), persist("b", { keys: [["k", entry(1)]] })]);
      const listed: string[] = [];
      for await (const g of storage.listGroups()) listed.push(g);
      expect(listed.sort()).toEqual(["a", "b"]);
    });

    it("upgrades a layout-1 directory in place: every group gets its mark, so a lost meta record is still found", async () => {
      await storage.commit([persist("g", { meta: meta(4, "accepted"), keys: [["k", entry(4)]], requests: [request("r1", 1)] }), persist("h", { keys: [["k", entry(1)]] })]);
      await storage.close();
      // What layout 1 wrote: no marks, format version 1.
      await withRawDb(dir, async (db) => {
        await db.del(writtenMarkKey(groupPrefix("g")));
        await db.del(writtenMarkKey(groupPrefix("h")));
        await db.put(FORMAT_KEY, encodeRecord(FORMAT_KEY, { version: 1 }));
      });
      storage = new LevelStorage(dir);
      await storage.open();
      expect(sortedEntries((await storage.loadGroup("g"))!)).toEqual([["k", entry(4)]]);
      await storage.close();
      await withRawDb(dir, async (db) => {
        expect(await db.get(writtenMarkKey(groupPrefix("g")))).toBeDefined();
        expect(await db.get(writtenMarkKey(groupPrefix("h")))).toBeDefined();
        await db.del(metaKey(groupPrefix("h")));
      });
      storage = new LevelStorage(dir);
      await storage.open();
      await expect(storage.loadGroup("h")).rejects.toMatchObject({ code: "STORAGE_CORRUPT", group: "h" });
      expect((await storage.loadGroup("g"))!.meta).toEqual(meta(4, "accepted"));
    });
  });

  describe("opening", () => {
    it("refuses a directory another engine holds with STORAGE_LOCKED", async () => {
      const second = new LevelStorage(dir);
      const err = await second.open().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StorageLockedError);
      expect(isStorageError(err, "STORAGE_LOCKED")).toBe(true);
    });

    it("refuses a directory written with another layout version", async () => {
      await storage.close();
      await withRawDb(dir, (db) => db.put(FORMAT_KEY, encodeRecord(FORMAT_KEY, { version: 99 })));
      storage = new LevelStorage(dir);
      await expect(storage.open()).rejects.toMatchObject({ code: "STORAGE_FORMAT" });
      // The failed open released the directory.
      await withRawDb(dir, async () => undefined);
    });

    it("reopens the same engine object after close", async () => {
      await storage.commit([persist("g", { keys: [["k", entry(1)]] })]);
      await storage.close();
      await storage.open();
      expect(sortedEntries((await storage.loadGroup("g"))!)).toEqual([["k", entry(1)]]);
    });
  });

  describe("commits", () => {
    it("lets commits issued together land in order, and close wait for them", async () => {
      const commits = Array.from({ length: 20 }, (_, i) =>
        storage.commit([persist("g", { meta: meta(i + 1), reset: i % 5 === 0, keys: [[`k${i}`, entry(i + 1)]] })]),
      );
      const closing = storage.close();
      await Promise.all(commits);
      await closing;
      storage = new LevelStorage(dir);
      await storage.open();
      const loaded = (await storage.loadGroup("g"))!;
      expect(loaded.meta).toEqual(meta(20));
      // The last reset was commit 15: it dropped k0..k14.
      expect([...loaded.keys.keys()].sort()).toEqual(["k15", "k16", "k17", "k18", "k19"]);
    });

    it("a load after a commit sees it, though loads of groups never stored share one probe iterator", async () => {
      for (let round = 1; round <= 20; round++) {
        expect(await storage.loadGroup(`never-${round}`)).toBeNull(); // the probe iterator is made or reused
        await storage.commit([persist(`g-${round}`, { meta: meta(round), keys: [["k", entry(round)]] })]);
        const loaded = await storage.loadGroup(`g-${round}`);
        expect(loaded?.meta).toEqual(meta(round));
        expect(loaded?.keys.get("k")?.version).toBe(round);
        expect(await storage.loadGroup(`never-${round}`)).toBeNull();
      }
    });

    it("writes one batch per commit, atomically (a reader never sees half of one)", async () => {
      const groups = Array.from({ length: 10 }, (_, i) => `atomic-${i}`);
      const writes: Promise<void>[] = [];
      const seen: number[][] = [];
      for (let round = 1; round <= 15; round++) {
        writes.push(storage.commit(groups.map((g) => persist(g, { meta: meta(round), keys: [["k", entry(round)]] }))));
        // A load between commits sees each group at some complete round.
        const loads = await Promise.all(groups.map((g) => storage.loadGroup(g)));
        seen.push(loads.map((l) => (l === null ? 0 : l.keys.get("k")!.version)));
        for (const l of loads) if (l !== null) expect(l.keys.get("k")!.version).toBe(l.meta.chosen?.index ?? 0);
      }
      await Promise.all(writes);
      await restart();
      for (const g of groups) expect((await storage.loadGroup(g))!.meta).toEqual(meta(15));
      expect(seen.length).toBe(15);
    });
  });

  describe("group commit over LevelDB", () => {
    it("batches 200 concurrent writers into few synced commits, and every persist resolves", async () => {
      let commits = 0;
      let inFlight = 0;
      let maxInFlight = 0;
      const counted: Pick<Storage, "commit"> = {
        commit: async (batch) => {
          commits++;
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          try {
            await storage.commit(batch);
          } finally {
            inFlight--;
          }
        },
      };
      const writer = new StorageWriter(counted);
      const writers = 200;
      const rounds = 5;
      // Each writer is a key-group stepping `rounds` times, waiting for its own fsync each time;
      // uneven pauses make records arrive while a commit is in flight.
      await Promise.all(
        Array.from({ length: writers }, async (_, w) => {
          for (let r = 1; r <= rounds; r++) {
            for (let pause = (w * 7 + r) % 4; pause > 0; pause--) await new Promise((resolve) => setImmediate(resolve));
            await writer.persist(persist(`group-${w}`, { meta: meta(r), keys: [[`k${r}`, entry(r, bytes(w & 0xff, r))]] }));
          }
        }),
      );
      await writer.close();
      const stats = writer.stats;
      expect(stats.records).toBe(writers * rounds);
      expect(stats.batches).toBe(commits);
      expect(stats.records / stats.batches).toBeGreaterThan(1);
      expect(stats.batches).toBeLessThan(writers * rounds / 10);
      expect(maxInFlight).toBe(1);
      expect(stats.failedBatches).toBe(0);

      await restart();
      for (let w = 0; w < writers; w++) {
        const loaded = (await storage.loadGroup(`group-${w}`))!;
        expect(loaded.meta).toEqual(meta(rounds));
        expect(loaded.keys.size).toBe(rounds);
      }
    });
  });

  describe("kill -9", () => {
    const fixture = fileURLToPath(new URL("./fixtures/crash-writer.mjs", import.meta.url));

    it("loses no acknowledged record when the writing process is killed mid-stream", async () => {
      await storage.close();
      const streams = 8;
      // Kill after a varying number of acknowledgements, so the kill lands at varying points.
      const killAfter = 150 + Math.floor(Math.random() * 150);
      const child = spawn(process.execPath, ["--import", "tsx", fixture, dir, String(streams)], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      let acked = 0;
      const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
        child.on("exit", (code, signal) => resolve(signal ?? code)),
      );
      const killed = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`child acknowledged only ${acked} records; stderr: ${stderr}`)), 15_000);
        child.stdout.setEncoding("utf8");
        child.stdout.on("data", (chunk: string) => {
          stdout += chunk;
          acked = stdout.split("\n").length - 2; // minus "ready" and the unfinished tail
          if (acked >= killAfter && child.exitCode === null && !child.killed) {
            child.kill("SIGKILL");
            clearTimeout(timer);
            resolve();
          }
        });
        child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
        child.on("exit", () => {
          clearTimeout(timer);
          if (acked < killAfter) reject(new Error(`child exited early after ${acked} acks; stderr: ${stderr}`));
        });
      });
      await killed;
      expect(await exited).toBe("SIGKILL");

      // Only complete lines count: a line cut by the kill was not acknowledged.
      const lines = stdout.split("\n");
      lines.pop();
      expect(lines[0]).toBe("ready");
      const acknowledged = lines.slice(1).map(Number);
      expect(acknowledged.length).toBeGreaterThanOrEqual(killAfter);

      storage = new LevelStorage(dir);
      await storage.open();
      const groups = new Map<string, Awaited<ReturnType<LevelStorage["loadGroup"]>>>();
      for (let s = 0; s < streams; s++) groups.set(`crash-${s}`, await storage.loadGroup(`crash-${s}`));
      const missing: number[] = [];
      for (const i of acknowledged) {
        const group = groups.get(`crash-${i % streams}`);
        const found = group?.keys.get(`k${i}`);
        if (found === undefined || found.version !== i || !group!.requests.some((r) => r.requestId === `r${i}`)) {
          missing.push(i);
          continue;
        }
        expect(Array.from(found.value)).toEqual([i & 0xff, (i >> 8) & 0xff, 0xee]);
        expect(group!.meta.chosen!.index).toBeGreaterThanOrEqual(i);
      }
      expect(missing).toEqual([]);
    });
  });
});
