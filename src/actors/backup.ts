// Backup and restore of one node's data directory.
//
// Backup: every record of the node's LevelDB, read through ONE iterator (a LevelDB snapshot:
// writes that land meanwhile are wholly out of it), streamed while the node serves (the health
// endpoint's GET /backup, loopback only; `paxosstore backup` fetches it into a file).
//
// Restore (`paxosstore restore`, node stopped, into an empty directory): the records are
// written back, and the node is put in LOST-DISK mode (lostDisk.ts) with every restored group
// marked recovering (DurableMeta.recovering). Why: the backup holds the promises and accepts of
// its moment; since then the node may have promised higher ballots or accepted values that the
// copy does not have. Voting with the older state could let two values be chosen at one index,
// exactly like a lost disk. So a restored node takes the lost-disk path: each group it holds a
// copy of is a learner until it has caught up past anything it could have voted in, and the
// groups created after the backup recover before it votes in them too. The copy's value is
// speed: catch-up starts from the backed-up data instead of from nothing.
//
// File format (version 1):
//   "paxosstore-backup 1\n" + JSON header + "\n"
//   records: u32be key length, key, u32be value length, value (the stored, checksummed bytes)
//   trailer: u32be 0xFFFFFFFF, u32be record count, sha256 of every byte before the trailer

import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { LevelStorage } from "../storage/leveldb.js";
import { IDENTITY_RECORD } from "./identity.js";
import { LOST_DISK_RECORD, type LostDiskState } from "./lostDisk.js";

const MAGIC = "paxosstore-backup 1\n";
const END = 0xffffffff;
const CHUNK_BYTES = 256 * 1024;

export interface BackupHeader {
  readonly nodeId: string;
  readonly cluster: string;
  readonly identityId: string | null;
  readonly createdAt: string;
  readonly version: string;
}

export class BackupError extends Error {
  readonly code = "BACKUP_INVALID";
}

/** The backup as a stream of chunks: header, records of one snapshot, trailer. */
export async function* backupStream(storage: LevelStorage, header: Omit<BackupHeader, "identityId">): AsyncGenerator<Uint8Array> {
  const identity = (await storage.getNodeRecord(IDENTITY_RECORD)) as { identityId?: string } | undefined;
  const full: BackupHeader = { ...header, identityId: identity?.identityId ?? null };
  const hash = createHash("sha256");
  const emit = (b: Uint8Array): Uint8Array => {
    hash.update(b);
    return b;
  };
  yield emit(new TextEncoder().encode(MAGIC + JSON.stringify(full) + "\n"));
  let parts: Buffer[] = [];
  let size = 0;
  let count = 0;
  for await (const [key, value] of storage.exportRecords()) {
    const head = Buffer.alloc(4);
    head.writeUInt32BE(key.length);
    const mid = Buffer.alloc(4);
    mid.writeUInt32BE(value.length);
    parts.push(head, Buffer.from(key), mid, Buffer.from(value));
    size += 8 + key.length + value.length;
    count++;
    if (size >= CHUNK_BYTES) {
      yield emit(Buffer.concat(parts));
      parts = [];
      size = 0;
    }
  }
  if (parts.length > 0) yield emit(Buffer.concat(parts));
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32BE(END, 0);
  trailer.writeUInt32BE(count, 4);
  yield Buffer.concat([trailer, hash.digest()]);
}

export interface ReadBackup {
  readonly header: BackupHeader;
  readonly records: [Uint8Array, Uint8Array][];
}

/** Reads and checks a backup file (magic, framing, count, sha256). */
export async function readBackup(path: string): Promise<ReadBackup> {
  const bytes = await readFile(path);
  if (bytes.subarray(0, MAGIC.length).toString() !== MAGIC) throw new BackupError(`${path} is not a paxosstore backup (version 1)`);
  const nl = bytes.indexOf(0x0a, MAGIC.length);
  if (nl < 0) throw new BackupError(`${path}: the header is cut off`);
  let header: BackupHeader;
  try {
    header = JSON.parse(bytes.subarray(MAGIC.length, nl).toString()) as BackupHeader;
  } catch {
    throw new BackupError(`${path}: the header is not JSON`);
  }
  const records: [Uint8Array, Uint8Array][] = [];
  let at = nl + 1;
  for (;;) {
    if (at + 4 > bytes.length) throw new BackupError(`${path} is cut off after ${records.length} records (no trailer): an incomplete backup`);
    const klen = bytes.readUInt32BE(at);
    if (klen === END) break;
    const vat = at + 4 + klen;
    if (vat + 4 > bytes.length) throw new BackupError(`${path} is cut off inside record ${records.length}`);
    const vlen = bytes.readUInt32BE(vat);
    if (vat + 4 + vlen > bytes.length) throw new BackupError(`${path} is cut off inside record ${records.length}`);
    records.push([new Uint8Array(bytes.subarray(at + 4, vat)), new Uint8Array(bytes.subarray(vat + 4, vat + 4 + vlen))]);
    at = vat + 4 + vlen;
  }
  if (at + 8 + 32 !== bytes.length) throw new BackupError(`${path}: the trailer is malformed`);
  const count = bytes.readUInt32BE(at + 4);
  if (count !== records.length) throw new BackupError(`${path}: the trailer says ${count} records, the file holds ${records.length}`);
  const digest = createHash("sha256").update(bytes.subarray(0, at)).digest();
  if (!digest.equals(bytes.subarray(at + 8))) throw new BackupError(`${path}: the checksum does not match: the file is damaged`);
  return { header, records };
}

export interface RestoreResult {
  readonly header: BackupHeader;
  readonly records: number;
  readonly groups: number;
}

/**
 * Seeds an EMPTY data directory of node `nodeId` from a backup of that node, and puts it in
 * lost-disk mode with every restored group recovering (see the top of this file).
 */
export async function restoreBackup(path: string, dataDir: string, nodeId: string, cluster: string): Promise<RestoreResult> {
  const { header, records } = await readBackup(path);
  if (header.nodeId !== nodeId || header.cluster !== cluster)
    throw new BackupError(`${path} is a backup of node ${header.nodeId} of cluster ${header.cluster}, not of ${nodeId} of ${cluster}: a node's data restores only into the same node`);
  if (header.identityId === null) throw new BackupError(`${path} holds no node identity (made before identities existed): it cannot be restored safely`);
  const existing = await readdir(dataDir).catch((e: NodeJS.ErrnoException) => (e.code === "ENOENT" ? [] : Promise.reject(e)));
  if (existing.length > 0) throw new BackupError(`${dataDir} is not empty: restore only into an empty (or new) data directory; move the old one away first`);
  const storage = new LevelStorage(dataDir);
  await storage.open();
  try {
    for (let i = 0; i < records.length; i += 10_000) await storage.importRecords(records.slice(i, i + 10_000));
    let groups = 0;
    for await (const group of storage.listGroups()) {
      const durable = await storage.loadGroup(group);
      if (durable === null) continue;
      await storage.commit([{ group, meta: { ...durable.meta, recovering: true }, reset: false, keys: [], requests: [], forgetRequests: [] }]);
      groups++;
    }
    const lost: LostDiskState = { phase: "listing", detectedAt: Date.now() };
    await storage.putNodeRecords([[LOST_DISK_RECORD, lost]]);
    return { header, records: records.length, groups };
  } finally {
    await storage.close();
  }
}
