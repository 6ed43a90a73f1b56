// Typed storage errors. The codes are API: callers branch on `code`, never on messages.
// A key-group actor that sees STORAGE_CORRUPT treats the group as lost locally and catches it
// up from its peers (DESIGN.md, "Durability and recovery"); every other code is a node-level
// problem (the disk, the directory, or a caller using a closed engine).

export type StorageErrorCode =
  | "STORAGE_CORRUPT"
  | "STORAGE_CLOSED"
  | "STORAGE_LOCKED"
  | "STORAGE_IO"
  | "STORAGE_INVALID"
  | "STORAGE_FORMAT"
  | "STORAGE_WRITER_FAILED";

export abstract class StorageError extends Error {
  abstract readonly code: StorageErrorCode;
}

export function isStorageError(err: unknown, code?: StorageErrorCode): err is StorageError {
  return err instanceof StorageError && (code === undefined || err.code === code);
}

/**
 * A stored record failed its checksum, did not decode, or does not have the shape of its kind.
 * It is never served: the whole group load fails with this error.
 */
export class StorageCorruptError extends StorageError {
  readonly code = "STORAGE_CORRUPT";
  /** The group whose range held the record; null when the key itself is unreadable. */
  readonly group: string | null;
  /** The raw storage key of the record that failed. */
  readonly key: Uint8Array;
  readonly reason: string;

  constructor(group: string | null, key: Uint8Array, reason: string) {
    super(
      `corrupt storage record${group === null ? "" : ` in group ${JSON.stringify(group)}`} ` +
        `at key ${toHex(key)}: ${reason}`,
    );
    this.name = "StorageCorruptError";
    this.group = group;
    this.key = key;
    this.reason = reason;
  }
}

/** The engine is not open: never opened, or closed. */
export class StorageClosedError extends StorageError {
  readonly code = "STORAGE_CLOSED";
  constructor(what = "storage is not open") {
    super(what);
    this.name = "StorageClosedError";
  }
}

/** Another process (or engine instance) holds the directory: two nodes must not share a disk. */
export class StorageLockedError extends StorageError {
  readonly code = "STORAGE_LOCKED";
  readonly location: string;
  constructor(location: string, options?: { cause?: unknown }) {
    super(`storage directory ${location} is locked by another process`, options);
    this.name = "StorageLockedError";
    this.location = location;
  }
}

/** The engine failed to read or write; `cause` holds the engine's own error. */
export class StorageIOError extends StorageError {
  readonly code = "STORAGE_IO";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StorageIOError";
  }
}

/** A batch holds something no engine can store faithfully (an ill-formed UTF-16 name). */
export class StorageInvalidError extends StorageError {
  readonly code = "STORAGE_INVALID";
  constructor(message: string) {
    super(message);
    this.name = "StorageInvalidError";
  }
}

/** The directory was written by an incompatible layout version. */
export class StorageFormatError extends StorageError {
  readonly code = "STORAGE_FORMAT";
  constructor(message: string) {
    super(message);
    this.name = "StorageFormatError";
  }
}

/**
 * An earlier group commit failed, so the writer refuses all later records: writing a later
 * Persist after a lost earlier one would leave a durable image that never existed (a newer meta
 * over missing key changes). The node must restart and reload from disk.
 */
export class StorageWriterFailedError extends StorageError {
  readonly code = "STORAGE_WRITER_FAILED";
  constructor(options?: { cause?: unknown }) {
    super("an earlier storage commit failed; the writer accepts no more records", options);
    this.name = "StorageWriterFailedError";
  }
}

function toHex(bytes: Uint8Array): string {
  const shown = bytes.length > 64 ? bytes.subarray(0, 64) : bytes;
  let s = "";
  for (const b of shown) s += b.toString(16).padStart(2, "0");
  return bytes.length > 64 ? `${s}...(${bytes.length} bytes)` : s;
}
