// Encoding and decoding of API requests and answers, in JSON or msgpack: pure functions on
// bytes and an encoding name. The NATS side (reading the header, replying) is the api
// handler's; this file only names the header and its values.
//
// The encoding is chosen by the request's `Content-Type` header (JSON when absent) and the
// answer uses the request's encoding. In JSON a value is a `value` string (its UTF-8 bytes) or
// a `valueBase64` string; in msgpack a value is raw bytes (`bin`). See docs/API.md.

import { Packr, Unpackr, type Options as MsgpackOptions } from "msgpackr";

import type {
  ApiOp,
  ApiRequest,
  ApiResponse,
  ApiValue,
  CompareRequest,
  ErrorResponse,
  MembershipStatus,
  ResponseFor,
  TxnWriteRequest,
  ValueEncoding,
} from "./api.js";
import { BadRequestError, InternalError, type PaxosStoreError, TooLargeError, errorFromWire, toWireError } from "./errors.js";
import { DEFAULT_WIRE_LIMITS, type WireLimits } from "./limits.js";
import { base64DecodedLength, isPlainRecord, kindOf, own, validateRequest, type Validation } from "./validate.js";

// ---- Header ---------------------------------------------------------------------------------

export const CONTENT_TYPE_HEADER = "Content-Type";
/** Header a client may set to bound a call on the node, in milliseconds (1..600000). */
export const TIMEOUT_HEADER = "PaxosStore-Timeout-Ms";
/**
 * Header a client sets (any value) on a request to `<prefix>.api.<node>` that this very node
 * must propose, not relay to the group's first live replica: a client that routes and hedges
 * by itself (the TypeScript client does), and every relayed copy (so a copy is never relayed on).
 */
export const DIRECT_HEADER = "PaxosStore-Direct";
/**
 * The `PaxosStore-Direct` value on a client's HEDGED copy (its first target was slow or
 * silent): the node relays it only to a replica it heard from just now, else proposes it.
 */
export const DIRECT_HEDGE = "hedge";
export const CONTENT_TYPE_JSON = "application/json";
export const CONTENT_TYPE_MSGPACK = "application/msgpack";

export type Encoding = "json" | "msgpack";
export const DEFAULT_ENCODING: Encoding = "json";

const JSON_TYPES = new Set(["application/json", "text/json"]);
const MSGPACK_TYPES = new Set(["application/msgpack", "application/x-msgpack", "application/vnd.msgpack"]);

/**
 * The encoding a Content-Type header value asks for: JSON when absent or empty. Parameters
 * (`; charset=utf-8`) and case are ignored; the common msgpack aliases are accepted. Anything
 * else is a bad_request on the field `Content-Type` (answer it in JSON).
 */
export function encodingFromContentType(
  value: string | null | undefined,
): { readonly ok: true; readonly encoding: Encoding } | { readonly ok: false; readonly error: PaxosStoreError } {
  if (value === null || value === undefined) return { ok: true, encoding: DEFAULT_ENCODING };
  const media = (value.split(";")[0] ?? "").trim().toLowerCase();
  if (media === "") return { ok: true, encoding: DEFAULT_ENCODING };
  if (JSON_TYPES.has(media)) return { ok: true, encoding: "json" };
  if (MSGPACK_TYPES.has(media)) return { ok: true, encoding: "msgpack" };
  return {
    ok: false,
    error: new BadRequestError(CONTENT_TYPE_HEADER, `unsupported ${JSON.stringify(value.slice(0, 100))}; use ${CONTENT_TYPE_JSON} or ${CONTENT_TYPE_MSGPACK}`),
  };
}

export function contentTypeOf(encoding: Encoding): string {
  return encoding === "json" ? CONTENT_TYPE_JSON : CONTENT_TYPE_MSGPACK;
}

// ---- msgpack --------------------------------------------------------------------------------

/**
 * msgpackr options for everything on the wire: plain msgpack only. No records (msgpackr's
 * structure extension, which no other client speaks), no structured clone (references and
 * cycles), no typed-array extensions: a Uint8Array is `bin`, and decodes as a Uint8Array
 * copied out of the message (`copyBuffers`), so a stored value never pins a whole frame.
 * 64-bit integers decode as numbers when safe (`auto`), else as BigInt, which the validators
 * refuse. Decoders still understand msgpackr's built-in extensions (Date, Set, ...) when a
 * peer sends them: the validators refuse every such non-plain value.
 */
export const MSGPACK_OPTIONS: MsgpackOptions = {
  useRecords: false,
  structuredClone: false,
  moreTypes: false,
  mapsAsObjects: true,
  copyBuffers: true,
  encodeUndefinedAsNil: true,
  variableMapSize: true,
  bundleStrings: false,
  // "auto" is implemented by msgpackr 2.x but missing from its type declarations.
  int64AsType: "auto" as MsgpackOptions["int64AsType"],
};

export function newPackr(): Packr {
  return new Packr({ ...MSGPACK_OPTIONS });
}

export function newUnpackr(): Unpackr {
  return new Unpackr({ ...MSGPACK_OPTIONS });
}

const packr = newPackr();
const unpackr = newUnpackr();

/** msgpackr reads a Buffer's bins as Buffers; a plain view makes them plain Uint8Arrays. */
export function plainView(bytes: Uint8Array): Uint8Array {
  return bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

// ---- Text -----------------------------------------------------------------------------------

const bodyDecoder = new TextDecoder("utf-8", { fatal: true }); // strips a leading BOM
const valueDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }); // keeps every byte
const encoder = new TextEncoder();

/**
 * The value as a JSON `value` string, or null when it must travel as `valueBase64`: bytes are
 * text when they are valid UTF-8 with no control characters but tab, newline and carriage
 * return. Decoding then encoding text gives back the same bytes; and JSON escapes such text at
 * most 2x, which limits.ts relies on.
 */
export function valueAsText(value: Uint8Array): string | null {
  for (let i = 0; i < value.length; i++) {
    const b = value[i]!;
    if (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) return null;
  }
  try {
    return valueDecoder.decode(value);
  } catch {
    return null;
  }
}

function toBase64(value: Uint8Array): string {
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64");
}

// ---- Requests -------------------------------------------------------------------------------

export type Decoded = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: PaxosStoreError };

/**
 * Bytes to a decoded but unvalidated body. Never throws: garbage, a truncated message, bad
 * UTF-8 or JSON, or a body over `frameBytesMax` give an error to answer with.
 */
export function decodeBody(bytes: Uint8Array, encoding: Encoding, limits: WireLimits = DEFAULT_WIRE_LIMITS): Decoded {
  if (bytes.length > limits.frameBytesMax) {
    return { ok: false, error: new TooLargeError("(body)", "frameBytesMax", limits.frameBytesMax, bytes.length) };
  }
  if (bytes.length === 0) {
    return { ok: false, error: new BadRequestError("(body)", `empty; send a ${encoding === "json" ? "JSON" : "msgpack"} object like {"op":"status"}`) };
  }
  if (encoding === "json") {
    let text: string;
    try {
      text = bodyDecoder.decode(bytes);
    } catch {
      return { ok: false, error: new BadRequestError("(body)", "is not valid UTF-8; JSON must be UTF-8 (send bytes as valueBase64, or use msgpack)") };
    }
    try {
      return { ok: true, value: JSON.parse(text) as unknown };
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      return { ok: false, error: new BadRequestError("(body)", `is not valid JSON (${why.slice(0, 200)})`) };
    }
  }
  try {
    return { ok: true, value: unpackr.unpack(plainView(bytes)) as unknown };
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    return { ok: false, error: new BadRequestError("(body)", `is not valid msgpack (${why.slice(0, 200)})`) };
  }
}

/** The same as decodeBody: a request's bytes, decoded, before validateRequest. */
export const decodeRequest = decodeBody;

/** decodeBody then validateRequest: what the api handler does with each message. Never throws. */
export function readRequest(bytes: Uint8Array, encoding: Encoding, limits: WireLimits = DEFAULT_WIRE_LIMITS): Validation {
  const decoded = decodeBody(bytes, encoding, limits);
  return decoded.ok ? validateRequest(decoded.value, limits) : decoded;
}

/** A client's request as bytes. Values go as text when they are text, else as base64 (JSON). */
export function encodeRequest(request: ApiRequest, encoding: Encoding): Uint8Array {
  const wire = requestToWire(request, encoding);
  return encoding === "json" ? encoder.encode(JSON.stringify(wire)) : packr.pack(wire);
}

type Wire = Record<string, unknown>;

function requestToWire(r: ApiRequest, encoding: Encoding): Wire {
  const w: Wire = { op: r.op };
  switch (r.op) {
    case "status":
      return w;
    case "get":
      set(w, "group", r.group);
      w["key"] = r.key;
      set(w, "consistency", r.consistency);
      set(w, "valueEncoding", r.valueEncoding);
      return w;
    case "put":
      set(w, "group", r.group);
      w["key"] = r.key;
      putValue(w, r.value, encoding);
      set(w, "requestId", r.requestId);
      return w;
    case "delete":
      set(w, "group", r.group);
      w["key"] = r.key;
      set(w, "requestId", r.requestId);
      return w;
    case "cas":
      set(w, "group", r.group);
      w["key"] = r.key;
      w["version"] = r.version;
      putValue(w, r.value, encoding);
      set(w, "requestId", r.requestId);
      return w;
    case "txn":
      w["group"] = r.group;
      if (r.compares !== undefined) w["compares"] = r.compares.map((c) => compareToWire(c, encoding));
      if (r.success !== undefined) w["success"] = r.success.map((t) => txnWriteToWire(t, encoding));
      if (r.failure !== undefined) w["failure"] = r.failure.map((t) => txnWriteToWire(t, encoding));
      set(w, "requestId", r.requestId);
      return w;
    case "scan":
      w["group"] = r.group;
      set(w, "prefix", r.prefix);
      set(w, "after", r.after);
      set(w, "limit", r.limit);
      set(w, "consistency", r.consistency);
      set(w, "valueEncoding", r.valueEncoding);
      return w;
  }
}

function compareToWire(c: CompareRequest, encoding: Encoding): Wire {
  const w: Wire = { key: c.key };
  set(w, "target", c.target);
  if ("exists" in c) {
    w["exists"] = c.exists;
    return w;
  }
  set(w, "cmp", c.cmp);
  if ("version" in c) w["version"] = c.version;
  else putValue(w, c.value, encoding);
  return w;
}

function txnWriteToWire(t: TxnWriteRequest, encoding: Encoding): Wire {
  const w: Wire = { op: t.op, key: t.key };
  if (t.op === "put") putValue(w, t.value, encoding);
  return w;
}

function set(w: Wire, name: string, v: unknown): void {
  if (v !== undefined) w[name] = v;
}

function putValue(w: Wire, value: ApiValue, encoding: Encoding): void {
  if (encoding === "msgpack") {
    w["value"] = typeof value === "string" ? encoder.encode(value) : value;
    return;
  }
  if (typeof value === "string") {
    w["value"] = value;
    return;
  }
  const text = valueAsText(value);
  if (text === null) w["valueBase64"] = toBase64(value);
  else w["value"] = text;
}

// ---- Answers --------------------------------------------------------------------------------

/**
 * An answer as bytes, in the request's encoding; `valueEncoding` is the request's (JSON only:
 * `auto` sends text values as `value` and the rest as `valueBase64`, `base64` always base64).
 */
export function encodeResponse(response: ApiResponse, encoding: Encoding, valueEncoding: ValueEncoding = "auto"): Uint8Array {
  if (encoding === "msgpack") return packr.pack(response.ok ? response : { ok: false, error: wireErrorObject(response) });
  return encoder.encode(JSON.stringify(responseToJson(response, valueEncoding)));
}

function wireErrorObject(r: ErrorResponse): Wire {
  const e: Wire = { code: r.error.code, message: r.error.message };
  if (r.error.details !== undefined) e["details"] = r.error.details;
  return e;
}

function responseToJson(r: ApiResponse, valueEncoding: ValueEncoding): Wire {
  if (!r.ok) return { ok: false, error: wireErrorObject(r) };
  if ("found" in r) {
    if (!r.found) return { ok: true, found: false, index: r.index };
    const w: Wire = { ok: true, found: true };
    jsonValue(w, r.value, valueEncoding);
    w["version"] = r.version;
    w["index"] = r.index;
    return w;
  }
  if ("items" in r) {
    const items = r.items.map((it) => {
      const w: Wire = { key: it.key };
      jsonValue(w, it.value, valueEncoding);
      w["version"] = it.version;
      return w;
    });
    const w: Wire = { ok: true, items };
    if (r.next !== undefined) w["next"] = r.next;
    w["index"] = r.index;
    return w;
  }
  return r as unknown as Wire;
}

function jsonValue(w: Wire, value: Uint8Array, valueEncoding: ValueEncoding): void {
  const text = valueEncoding === "auto" ? valueAsText(value) : null;
  if (text === null) w["valueBase64"] = toBase64(value);
  else w["value"] = text;
}

/**
 * An answer's bytes as the typed answer to `op` (the client knows what it asked). Never
 * throws: an answer that cannot be decoded, or has the wrong shape, becomes an `internal`
 * error answer saying what was wrong. Error answers come back as they were sent, with an
 * unknown code turned into `internal` (see errorFromWire).
 */
export function decodeResponse<O extends ApiOp>(bytes: Uint8Array, encoding: Encoding, op: O): ResponseFor<O> {
  const decoded = decodeBody(bytes, encoding, { ...DEFAULT_WIRE_LIMITS, frameBytesMax: Number.MAX_SAFE_INTEGER });
  if (!decoded.ok) return malformed(`undecodable answer: ${decoded.error.message}`);
  try {
    return responseOf(decoded.value, op) as ResponseFor<O>;
  } catch (err) {
    return malformed(err instanceof Malformed ? err.message : `malformed answer: ${String(err)}`);
  }
}

class Malformed extends Error {}

function malformed<O extends ApiOp>(message: string): ResponseFor<O> {
  return { ok: false, error: toWireError(new InternalError(message)) };
}

function responseOf(x: unknown, op: ApiOp): ApiResponse {
  const r = rec(x, "(answer)");
  const ok = own(r, "ok");
  if (ok === false) return { ok: false, error: toWireError(errorFromWire(own(r, "error"))) };
  if (ok !== true) throw new Malformed(`malformed answer: ok is ${kindOf(ok)}`);
  switch (op) {
    case "get": {
      const found = bool(r, "found");
      const index = int(r, "index");
      if (!found) return { ok: true, found: false, index };
      return { ok: true, found: true, value: bytesOf(r, "(answer)"), version: int(r, "version"), index };
    }
    case "put":
    case "cas":
      return { ok: true, version: int(r, "version") };
    case "delete":
      return { ok: true, version: int(r, "version"), existed: bool(r, "existed") };
    case "txn": {
      const currentVersions = arr(r, "currentVersions").map((v, i) => intValue(v, `currentVersions[${i}]`));
      const results = arr(r, "results").map((x, i) => {
        const w = rec(x, `results[${i}]`);
        const wop = own(w, "op");
        if (wop === "put") return { op: "put" as const, version: int(w, "version") };
        if (wop === "delete") return { op: "delete" as const, version: int(w, "version"), existed: bool(w, "existed") };
        throw new Malformed(`malformed answer: results[${i}].op is ${kindOf(wop)}`);
      });
      return { ok: true, succeeded: bool(r, "succeeded"), version: int(r, "version"), currentVersions, results };
    }
    case "scan": {
      const items = arr(r, "items").map((x, i) => {
        const it = rec(x, `items[${i}]`);
        return { key: str(it, "key"), value: bytesOf(it, `items[${i}]`), version: int(it, "version") };
      });
      const nextRaw = own(r, "next");
      const index = int(r, "index");
      if (nextRaw === undefined || nextRaw === null) return { ok: true, items, index };
      if (typeof nextRaw !== "string") throw new Malformed(`malformed answer: next is ${kindOf(nextRaw)}`);
      return { ok: true, items, next: nextRaw, index };
    }
    case "status": {
      const limitsRaw = rec(own(r, "limits"), "limits");
      const limits: Record<string, number> = {};
      for (const [k, v] of Object.entries(limitsRaw)) if (typeof v === "number") limits[k] = v;
      return {
        ok: true,
        node: str(r, "node"),
        cluster: str(r, "cluster"),
        version: str(r, "version"),
        uptimeMs: num(r, "uptimeMs"),
        members: arr(r, "members").map((m, i) => strValue(m, `members[${i}]`)),
        membersSeen: arr(r, "membersSeen").map((m, i) => strValue(m, `membersSeen[${i}]`)),
        groupsActive: int(r, "groupsActive"),
        limits: { ...DEFAULT_WIRE_LIMITS, ...limits },
        // Passed on as the node sent it (issue 13); an older node sends none.
        ...(isPlainRecord(r["membership"]) ? { membership: r["membership"] as unknown as MembershipStatus } : {}),
      };
    }
  }
}

function rec(x: unknown, path: string): Record<string, unknown> {
  if (!isPlainRecord(x)) throw new Malformed(`malformed answer: ${path} is ${kindOf(x)}, not an object`);
  return x;
}
function arr(r: Record<string, unknown>, name: string): readonly unknown[] {
  const x = own(r, name);
  if (!Array.isArray(x)) throw new Malformed(`malformed answer: ${name} is ${kindOf(x)}, not an array`);
  return x;
}
function bool(r: Record<string, unknown>, name: string): boolean {
  const x = own(r, name);
  if (typeof x !== "boolean") throw new Malformed(`malformed answer: ${name} is ${kindOf(x)}, not a boolean`);
  return x;
}
function num(r: Record<string, unknown>, name: string): number {
  const x = own(r, name);
  if (typeof x !== "number" || !Number.isFinite(x)) throw new Malformed(`malformed answer: ${name} is ${kindOf(x)}, not a number`);
  return x;
}
function int(r: Record<string, unknown>, name: string): number {
  return intValue(own(r, name), name);
}
function intValue(x: unknown, path: string): number {
  if (typeof x !== "number" || !Number.isSafeInteger(x) || x < 0) {
    throw new Malformed(`malformed answer: ${path} is ${kindOf(x)}, not a non-negative integer`);
  }
  return x;
}
function str(r: Record<string, unknown>, name: string): string {
  return strValue(own(r, name), name);
}
function strValue(x: unknown, path: string): string {
  if (typeof x !== "string") throw new Malformed(`malformed answer: ${path} is ${kindOf(x)}, not a string`);
  return x;
}
function bytesOf(r: Record<string, unknown>, path: string): Uint8Array {
  const b64 = own(r, "valueBase64");
  if (typeof b64 === "string") {
    if (base64DecodedLength(b64) === null) throw new Malformed(`malformed answer: ${path}.valueBase64 is not base64`);
    return new Uint8Array(Buffer.from(b64, "base64"));
  }
  const v = own(r, "value");
  if (typeof v === "string") return encoder.encode(v);
  if (v instanceof Uint8Array) return v.constructor === Uint8Array ? v : new Uint8Array(v);
  throw new Malformed(`malformed answer: ${path} has no value or valueBase64`);
}
