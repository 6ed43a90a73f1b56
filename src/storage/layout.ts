// The LevelDB key layout. Every key is raw bytes:
//
//   group prefix  P(g) = u32be(len) ++ utf8(g)         len = byte length of utf8(g)
//   meta          P(g) ++ 0x01                         -> DurableMeta
//   data key      P(g) ++ 0x02 ++ utf8(key)            -> Entry
//   request       P(g) ++ 0x03 ++ utf8(requestId)      -> RequestRecord
//   written mark  0xFE ++ P(g)                         -> empty (layout 2: see below)
//   format        0xFF ++ "paxosstore-format"          -> { version }
//   node record   0xFF ++ "node/" ++ utf8(name)        -> the node's own records (identity,
//                                                         members seen, lost-disk state)
//
// Why a length prefix: group names are arbitrary strings, so no separator byte is safe
// ("a" and "a\u0000" would both start with "a" ++ 0x00). With the length first, P(g) can be a
// prefix of a key of group h only if len(g) == len(h) and then utf8(g) == utf8(h): one group
// never sees another's keys, and one group's records are one contiguous range, read with one
// iterator. A group's range is [P(g) ++ 0x00, P(g) ++ 0xFF): record kinds stay below 0xFF.
// The format key starts with 0xFF, which no group prefix does below 4 GiB of name, so it sorts
// after every group and listGroups stops before it.
//
// The written mark (layout version 2) makes "this group was never written here" a point read.
// It is written with the group's meta record, in the same atomic batch, by every commit until
// the process knows it is on disk (leveldb.ts, markedGroups), in a key range of its own (0xFE
// sorts after every group and before the format key). A meta record is never stored without it. Loading a group reads the
// mark and the meta record with two synchronous point reads (~5 us) instead of opening an
// iterator over the group's range (~60-180 us of CPU through the engine's worker threads): a
// group with neither was never written; a mark without a meta record is a lost meta record,
// corruption, which the iterator used to find as "records but no meta". The mark sits far
// from the group's own records, so one damaged block or file does not take both.

const utf8 = new TextEncoder();
// fatal: a key whose bytes are not UTF-8 is corruption, not a name to guess at.
const utf8Strict = new TextDecoder("utf-8", { fatal: true });

export const RecordKind = { Meta: 0x01, Data: 0x02, Request: 0x03 } as const;

/** Upper bound of every group range, and the first byte of keys outside any group. */
const RANGE_END = 0xff;

export const FORMAT_KEY: Uint8Array = concat(Uint8Array.of(RANGE_END), utf8.encode("paxosstore-format"));
/** Node-level records (not of any group) sort after every group, like the format key. */
export function nodeRecordKey(name: string): Uint8Array {
  return concat(Uint8Array.of(RANGE_END), utf8.encode(`node/${name}`));
}

/** First byte of the written marks: after every group prefix (names are far below 4 GiB). */
const MARKS_BYTE = 0xfe;

/** Upper bound for listing groups: every group key sorts below it (and the marks after it). */
export const GROUPS_END: Uint8Array = Uint8Array.of(MARKS_BYTE);

/** The range of the written marks, for an iterator. */
export const MARKS_RANGE: { gte: Uint8Array; lt: Uint8Array } = { gte: Uint8Array.of(MARKS_BYTE), lt: Uint8Array.of(RANGE_END) };

/** The written mark of a group (see the top of this file). */
export function writtenMarkKey(prefix: Uint8Array): Uint8Array {
  const key = new Uint8Array(1 + prefix.length);
  key[0] = MARKS_BYTE;
  key.set(prefix, 1);
  return key;
}

// The key builders below run for every record of every commit: each makes its key in one
// allocation, writing the UTF-8 bytes in place (encodeInto) instead of encoding to a buffer of
// their own and copying (a separate buffer per string is a malloc outside V8's heap).

export function groupPrefix(group: string): Uint8Array {
  const length = Buffer.byteLength(group, "utf8");
  const prefix = new Uint8Array(4 + length);
  prefix[0] = length >>> 24;
  prefix[1] = (length >>> 16) & 0xff;
  prefix[2] = (length >>> 8) & 0xff;
  prefix[3] = length & 0xff;
  utf8.encodeInto(group, prefix.subarray(4));
  return prefix;
}

/** P(g) ++ kind ++ utf8(name), in one allocation. */
function kindKey(prefix: Uint8Array, kind: number, name: string): Uint8Array {
  const key = new Uint8Array(prefix.length + 1 + Buffer.byteLength(name, "utf8"));
  key.set(prefix, 0);
  key[prefix.length] = kind;
  utf8.encodeInto(name, key.subarray(prefix.length + 1));
  return key;
}

/** The bounds of one group's records, for an iterator: gte .. lt. */
export function groupRange(prefix: Uint8Array): { gte: Uint8Array; lt: Uint8Array } {
  return { gte: concat(prefix, Uint8Array.of(0x00)), lt: concat(prefix, Uint8Array.of(RANGE_END)) };
}

export function metaKey(prefix: Uint8Array): Uint8Array {
  return kindKey(prefix, RecordKind.Meta, "");
}

export function dataKey(prefix: Uint8Array, key: string): Uint8Array {
  return kindKey(prefix, RecordKind.Data, key);
}

export function requestKey(prefix: Uint8Array, requestId: string): Uint8Array {
  return kindKey(prefix, RecordKind.Request, requestId);
}

/** A key split into its group, its kind and the name after the kind byte (if any). */
export interface ParsedKey {
  readonly group: string;
  /** Byte length of the group prefix P(group). */
  readonly prefixLength: number;
  readonly kind: number;
  readonly name: string;
}

/** Parses a key below GROUPS_END; null when the bytes cannot be a key of this layout. */
export function parseKey(key: Uint8Array): ParsedKey | null {
  if (key.length < 5) return null;
  const length = new DataView(key.buffer, key.byteOffset, key.byteLength).getUint32(0);
  const prefixLength = 4 + length;
  if (key.length < prefixLength + 1) return null;
  try {
    const group = utf8Strict.decode(key.subarray(4, prefixLength));
    const name = utf8Strict.decode(key.subarray(prefixLength + 1));
    return { group, prefixLength, kind: key[prefixLength], name };
  } catch {
    return null;
  }
}

/** The name after a group's kind byte (data key or request id); null if not UTF-8. */
export function nameAfterKind(key: Uint8Array, prefixLength: number): string | null {
  try {
    return utf8Strict.decode(key.subarray(prefixLength + 1));
  } catch {
    return null;
  }
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
