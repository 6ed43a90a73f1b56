// What the client hands back: the wire results of src/protocol/api.ts, with values as bytes
// plus `text()` and `json()` helpers, so callers never juggle TextDecoder themselves.

import type { ApiValue, ScanResult } from "../protocol/api.js";

// Not fatal: `text()` of bytes that are not UTF-8 gives U+FFFD for the bad parts rather than
// throwing; callers who care about the exact bytes read `value`.
const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
const encoder = new TextEncoder();

/** A value as UTF-8 text (invalid sequences become U+FFFD). */
export function textOf(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** A value as the client sends it: strings as their UTF-8 bytes. */
export function bytesOf(value: ApiValue): Uint8Array {
  return typeof value === "string" ? encoder.encode(value) : value;
}

/** A key that exists, as a `get` or a `scan` found it. */
export interface Entry {
  readonly key: string;
  /** The stored bytes. */
  readonly value: Uint8Array;
  /** The Paxos index of the write that last changed the key. */
  readonly version: number;
  /** The value as UTF-8 text. */
  text(): string;
  /** The value parsed as JSON (throws a SyntaxError when it is not JSON). */
  json<T = unknown>(): T;
}

/** `get` of a key that exists. `index` is the group's chosen index the read observed. */
export interface Found extends Entry {
  readonly found: true;
  readonly index: number;
}

/** `get` of a key that does not exist: `value` is null and `version` 0. */
export interface NotFound {
  readonly found: false;
  readonly key: string;
  readonly value: null;
  readonly version: 0;
  readonly index: number;
  text(): null;
  json(): null;
}

export type GetResponse = Found | NotFound;

/** One page of a scan: send `next` as `after` to get the following page. */
export interface ScanPage {
  readonly items: readonly Entry[];
  /** Present when more keys may follow. */
  readonly next?: string;
  /** The group's chosen index this page was read at. */
  readonly index: number;
}

export function entry(key: string, value: Uint8Array, version: number): Entry {
  return {
    key,
    value,
    version,
    text: () => textOf(value),
    json: <T>() => JSON.parse(textOf(value)) as T,
  };
}

export function found(key: string, value: Uint8Array, version: number, index: number): Found {
  return { ...entry(key, value, version), found: true, index };
}

export function notFound(key: string, index: number): NotFound {
  return { found: false, key, value: null, version: 0, index, text: () => null, json: () => null };
}

export function scanPage(result: ScanResult): ScanPage {
  const items = result.items.map((it) => entry(it.key, it.value, it.version));
  return result.next === undefined ? { items, index: result.index } : { items, next: result.next, index: result.index };
}
