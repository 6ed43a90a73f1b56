// How one LevelDB value is framed:
//
//   value = format (1 byte, 0x01) ++ crc32 (u32be) ++ msgpack(payload)
//   crc32 covers key ++ format ++ msgpack(payload)
//
// Covering the key catches a record that turns up under the wrong key (a flipped key byte),
// not only a damaged value. A record that fails any check here is reported as
// StorageCorruptError and never handed to a replica.

import { Packr } from "msgpackr";
import type { Ballot } from "../protocol/ballot.js";
import type { DurableMeta } from "../protocol/durable.js";
import type { RequestRecord } from "../protocol/messages.js";
import type { Entry } from "../protocol/ops.js";
import { crc32 } from "./checksum.js";
import { StorageCorruptError } from "./errors.js";

const RECORD_FORMAT = 0x01;
const HEADER_BYTES = 5;

// useRecords: false writes plain msgpack maps, readable without shared structure state (which
// would have to survive restarts). copyBuffers: decoded byte strings get their own memory
// instead of pinning the whole record buffer.
const packr = new Packr({ useRecords: false, copyBuffers: true });

const FORMAT_BYTE = Uint8Array.of(RECORD_FORMAT);

export function encodeRecord(key: Uint8Array, payload: unknown): Uint8Array {
  const body = packr.pack(payload);
  // allocUnsafe: a slice of Node's shared pool for small records (no malloc of its own); every
  // byte is written below.
  const value = Buffer.allocUnsafe(HEADER_BYTES + body.length);
  value[0] = RECORD_FORMAT;
  value.set(body, HEADER_BYTES);
  const crc = crc32(body, crc32(FORMAT_BYTE, crc32(key)));
  value.writeUInt32BE(crc, 1);
  // A plain Uint8Array view of it: callers and tests compare records as Uint8Array.
  return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
}

/** Checks the frame and decodes the payload; throws StorageCorruptError on any mismatch. */
export function decodeRecord(group: string | null, key: Uint8Array, value: Uint8Array): unknown {
  if (value.length < HEADER_BYTES) throw new StorageCorruptError(group, key, "record shorter than its header");
  if (value[0] !== RECORD_FORMAT) {
    throw new StorageCorruptError(group, key, `unknown record format ${value[0]}`);
  }
  const stored = new DataView(value.buffer, value.byteOffset, value.byteLength).getUint32(1);
  const body = value.subarray(HEADER_BYTES);
  const actual = crc32(body, crc32(value.subarray(0, 1), crc32(key)));
  if (stored !== actual) throw new StorageCorruptError(group, key, "checksum mismatch");
  try {
    // A plain Uint8Array view, so decoded byte strings come back as Uint8Array, not Buffer.
    return packr.unpack(new Uint8Array(body.buffer, body.byteOffset, body.byteLength));
  } catch (err) {
    throw new StorageCorruptError(group, key, `payload does not decode: ${(err as Error).message}`);
  }
}

export function encodeEntry(key: Uint8Array, entry: Entry): Uint8Array {
  // Only the fields of Entry: a caller's extra properties are not part of the durable image.
  return encodeRecord(key, { value: entry.value, version: entry.version });
}

export function decodeEntry(group: string, key: Uint8Array, value: Uint8Array): Entry {
  const entry = decodeRecord(group, key, value);
  if (!isObject(entry) || !(entry.value instanceof Uint8Array) || !isInteger(entry.version)) {
    throw new StorageCorruptError(group, key, "not a data entry");
  }
  return { value: entry.value, version: entry.version };
}

export function decodeMeta(group: string, key: Uint8Array, value: Uint8Array): DurableMeta {
  const meta = decodeRecord(group, key, value);
  if (
    !isObject(meta) ||
    !(meta.promised === null || isBallot(meta.promised)) ||
    !(meta.chosen === null || (isObject(meta.chosen) && isInteger(meta.chosen.index) && isBallot(meta.chosen.ballot) && isValue(meta.chosen.value))) ||
    !(meta.accepted === null || (isObject(meta.accepted) && isBallot(meta.accepted.ballot) && isValue(meta.accepted.value))) ||
    !(meta.config === undefined || isConfiguration(meta.config)) ||
    !(meta.joining === undefined || (Array.isArray(meta.joining) && meta.joining.every((n) => typeof n === "string")))
  ) {
    throw new StorageCorruptError(group, key, "not a meta record");
  }
  return meta as unknown as DurableMeta;
}

export function decodeRequest(group: string, key: Uint8Array, value: Uint8Array, requestId: string): RequestRecord {
  const record = decodeRecord(group, key, value);
  if (
    !isObject(record) ||
    record.requestId !== requestId ||
    !isInteger(record.seq) ||
    !isInteger(record.index) ||
    !isObject(record.result) ||
    typeof record.result.type !== "string"
  ) {
    throw new StorageCorruptError(group, key, "not a request record");
  }
  return record as unknown as RequestRecord;
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x) && !(x instanceof Uint8Array);
}

function isInteger(x: unknown): x is number {
  return typeof x === "number" && Number.isSafeInteger(x);
}

function isBallot(x: unknown): x is Ballot {
  return isObject(x) && isInteger(x.round) && typeof x.node === "string";
}

function isValue(x: unknown): boolean {
  return isObject(x) && typeof x.id === "string" && Array.isArray(x.commands) && (x.config === undefined || isConfiguration(x.config));
}

/** A group configuration (membership.ts): epoch and replica ids. */
function isConfiguration(x: unknown): boolean {
  return isObject(x) && isInteger(x.epoch) && Array.isArray(x.replicas) && x.replicas.every((n) => typeof n === "string");
}
