// docs/OPERATIONS.md, "Storage layout versions": a backup made by a layout-1 node (no written
// marks, format record 1) restores with this build, and the restored directory is upgraded
// when opened, so a lost meta record is still found afterwards.

import { writeFile } from "node:fs/promises";
import path from "node:path";
import { Level } from "level";
import { afterEach, expect, it } from "vitest";
import { backupStream, restoreBackup } from "../../src/actors/backup.js";
import { IDENTITY_RECORD } from "../../src/actors/identity.js";
import { FORMAT_KEY, groupPrefix, metaKey, writtenMarkKey } from "../../src/storage/layout.js";
import { LevelStorage } from "../../src/storage/leveldb.js";
import { encodeRecord } from "../../src/storage/record.js";
import { tempDir, type TempDir } from "../helpers/tmp.js";
import { entry, persist, sortedEntries } from "./records.js";

let dir: TempDir | undefined;
afterEach(async () => dir?.cleanup());

async function raw(location: string, fn: (db: Level<Uint8Array, Uint8Array>) => Promise<void>): Promise<void> {
  const db = new Level<Uint8Array, Uint8Array>(location, { keyEncoding: "view", valueEncoding: "view" });
  await db.open();
  try {
    await fn(db);
  } finally {
    await db.close();
  }
}

it("restores a backup of a layout-1 directory and upgrades it on open", async () => {
  dir = await tempDir("backup-layout");
  const old = path.join(dir.path, "old");
  const source = new LevelStorage(old);
  await source.open();
  await source.putNodeRecords([[IDENTITY_RECORD, { identityId: "id-1" }]]);
  await source.commit([persist("g", { keys: [["k", entry(1)]] }), persist("h", { keys: [["k", entry(2)]] })]);
  await source.close();
  // What layout 1 wrote: no marks, format version 1.
  await raw(old, async (db) => {
    await db.del(writtenMarkKey(groupPrefix("g")));
    await db.del(writtenMarkKey(groupPrefix("h")));
    await db.put(FORMAT_KEY, encodeRecord(FORMAT_KEY, { version: 1 }));
  });
  // Back it up as a layout-1 node would: every raw record (opening the directory with this
  // build would upgrade it first, so the backup reads it raw).
  const chunks: Uint8Array[] = [];
  await raw(old, async (db) => {
    const fake = {
      getNodeRecord: async () => ({ identityId: "id-1" }),
      async *exportRecords() {
        for await (const [k, v] of db.iterator()) yield [k, v] as [Uint8Array, Uint8Array];
      },
    } as unknown as LevelStorage;
    for await (const c of backupStream(fake, { nodeId: "n1", cluster: "c", createdAt: new Date(0).toISOString(), version: "layout-1" })) chunks.push(c);
  });
  const file = path.join(dir.path, "n1.backup");
  await writeFile(file, Buffer.concat(chunks));

  const restored = path.join(dir.path, "restored");
  const result = await restoreBackup(file, restored, "n1", "c");
  expect(result.groups).toBe(2);
  const s = new LevelStorage(restored);
  await s.open();
  expect(sortedEntries((await s.loadGroup("g"))!)).toEqual([["k", entry(1)]]);
  await s.close();
  await raw(restored, async (db) => {
    expect(await db.get(writtenMarkKey(groupPrefix("g")))).toBeDefined();
    expect(await db.get(writtenMarkKey(groupPrefix("h")))).toBeDefined();
    await db.del(metaKey(groupPrefix("h")));
  });
  const again = new LevelStorage(restored);
  await again.open();
  await expect(again.loadGroup("h")).rejects.toMatchObject({ code: "STORAGE_CORRUPT", group: "h" });
  await again.close();
});
