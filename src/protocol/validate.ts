// Turns whatever a client sent (decoded JSON or msgpack, so `unknown`) into a fully typed
// request or a `bad_request` / `too_large` error that names the field and says why.
//
// It never throws, whatever it is given: the decoders hand it any shape (objects with a
// `__proto__` key, Dates, Maps, BigInts, huge arrays, deep nesting), and a bad request must be
// answered, not crash the api handler. Safety by construction:
//   - fields are read as own properties only, and a request is rebuilt field by field, so
//     nothing from the input's prototype chain, and no unknown field, ever reaches the core;
//   - unknown fields are refused (a typo like `vaule` gets an answer, not silent ignoring);
//   - array lengths are checked against the limits before any element is looked at, and
//     nothing recurses on the input's own depth;
//   - strings must be well-formed Unicode (a lone surrogate cannot be stored as UTF-8).
// Internally a refusal is thrown as a PaxosStoreError and caught once at the top.

import type { ApiOp, ValidRequest, ValueEncoding } from "./api.js";
import { API_OPS, utf8Length } from "./api.js";
import { BadRequestError, InternalError, PaxosStoreError, TooLargeError } from "./errors.js";
import type { Consistency } from "./io.js";
import { DEFAULT_WIRE_LIMITS, type LimitName, type WireLimits } from "./limits.js";
import type { Compare, CompareOp, TxnWrite, WriteOp } from "./ops.js";

export type Validation = { readonly ok: true; readonly request: ValidRequest } | { readonly ok: false; readonly error: PaxosStoreError };

export function validateRequest(decoded: unknown, limits: WireLimits = DEFAULT_WIRE_LIMITS): Validation {
  try {
    return { ok: true, request: requestOf(decoded, limits) };
  } catch (err) {
    if (err instanceof PaxosStoreError) return { ok: false, error: err };
    // Only a bug lands here; say so rather than blame the client.
    const why = err instanceof Error ? err.message : String(err);
    return { ok: false, error: new InternalError(`internal error while validating the request: ${why}`) };
  }
}

const FIELDS: { readonly [O in ApiOp]: readonly string[] } = {
  get: ["op", "group", "key", "consistency", "valueEncoding"],
  put: ["op", "group", "key", "value", "valueBase64", "requestId"],
  delete: ["op", "group", "key", "requestId"],
  cas: ["op", "group", "key", "version", "value", "valueBase64", "requestId"],
  txn: ["op", "group", "compares", "success", "failure", "requestId"],
  scan: ["op", "group", "prefix", "after", "limit", "consistency", "valueEncoding"],
  status: ["op"],
};

const COMPARE_FIELDS = ["key", "target", "cmp", "version", "value", "valueBase64", "exists"] as const;
const TXN_PUT_FIELDS = ["op", "key", "value", "valueBase64"] as const;
const TXN_DELETE_FIELDS = ["op", "key"] as const;
const VERSION_CMPS: readonly CompareOp[] = ["=", "!=", "<", ">"];

function requestOf(decoded: unknown, limits: WireLimits): ValidRequest {
  const body = recordAt(decoded, "(body)", "must be an object like {\"op\":\"get\",\"key\":\"k\"}");
  const opRaw = own(body, "op");
  if (opRaw === undefined) throw new BadRequestError("op", `missing; expected one of ${API_OPS.join(", ")}`);
  if (typeof opRaw !== "string") throw new BadRequestError("op", `must be a string, one of ${API_OPS.join(", ")}`);
  if (!(API_OPS as readonly string[]).includes(opRaw)) {
    throw new BadRequestError("op", `unknown op ${quote(opRaw)}; expected one of ${API_OPS.join(", ")}`);
  }
  const op = opRaw as ApiOp;
  onlyFields(body, FIELDS[op], "");

  switch (op) {
    case "status":
      return { kind: "status" };
    case "get": {
      const key = keyAt(body, "key", "", limits);
      const group = groupAt(body, limits) ?? key;
      return {
        kind: "read",
        group,
        query: { kind: "get", key },
        consistency: consistencyAt(body),
        valueEncoding: valueEncodingAt(body),
      };
    }
    case "scan": {
      const group = groupAt(body, limits);
      if (group === undefined) throw new BadRequestError("group", "missing; a scan reads one group");
      const prefix = optionalString(body, "prefix", "", limits.keyBytesMax, "keyBytesMax") ?? "";
      const after = optionalString(body, "after", "", limits.keyBytesMax, "keyBytesMax");
      const limitRaw = optional(body, "limit");
      let limit = limits.scanLimitDefault;
      if (limitRaw !== undefined) {
        limit = integerAt(limitRaw, "limit");
        if (limit < 1) throw new BadRequestError("limit", "must be at least 1");
        if (limit > limits.scanLimitMax) throw new TooLargeError("limit", "scanLimitMax", limits.scanLimitMax, limit);
      }
      return {
        kind: "read",
        group,
        query: after === undefined ? { kind: "scan", prefix, limit } : { kind: "scan", prefix, after, limit },
        consistency: consistencyAt(body),
        valueEncoding: valueEncodingAt(body),
      };
    }
    case "put": {
      const key = keyAt(body, "key", "", limits);
      const value = valueAt(body, "", limits);
      return write(body, limits, key, { op: "put", key, value });
    }
    case "delete": {
      const key = keyAt(body, "key", "", limits);
      return write(body, limits, key, { op: "delete", key });
    }
    case "cas": {
      const key = keyAt(body, "key", "", limits);
      const versionRaw = own(body, "version");
      if (versionRaw === undefined || versionRaw === null) {
        throw new BadRequestError("version", "missing; the version the key must be at (0: must not exist)");
      }
      const version = integerAt(versionRaw, "version");
      const value = valueAt(body, "", limits);
      return write(body, limits, key, { op: "cas", key, version, value });
    }
    case "txn": {
      const group = groupAt(body, limits);
      if (group === undefined) throw new BadRequestError("group", "missing; a txn runs inside one group");
      return write(body, limits, group, txnOf(body, limits));
    }
  }
}

function write(body: Record<string, unknown>, limits: WireLimits, defaultGroup: string, op: WriteOp): ValidRequest {
  const group = groupAt(body, limits) ?? defaultGroup;
  const requestId = optionalString(body, "requestId", "", limits.requestIdBytesMax, "requestIdBytesMax");
  if (requestId !== undefined) {
    if (requestId.length === 0) throw new BadRequestError("requestId", "must not be empty; leave it out to let the node make one");
    if (/[\u0000-\u001f\u007f]/.test(requestId)) throw new BadRequestError("requestId", "must not contain control characters");
  }
  const size = writeBytes(op);
  if (size > limits.writeBytesMax) throw new TooLargeError(op.op, "writeBytesMax", limits.writeBytesMax, size);
  return { kind: "write", group, op, requestId: requestId ?? null };
}

function txnOf(body: Record<string, unknown>, limits: WireLimits): WriteOp {
  const comparesRaw = arrayAt(body, "compares", limits.txnComparesMax, "txnComparesMax");
  const compares: Compare[] = [];
  for (let i = 0; i < comparesRaw.length; i++) compares.push(compareOf(comparesRaw[i], `compares[${i}]`, limits));
  const success = txnWritesAt(body, "success", limits);
  const failure = txnWritesAt(body, "failure", limits);
  return { op: "txn", compares, success, failure };
}

function compareOf(x: unknown, path: string, limits: WireLimits): Compare {
  const c = recordAt(x, path, "must be an object like {\"key\":\"k\",\"version\":3}");
  onlyFields(c, COMPARE_FIELDS, `${path}.`);
  const key = keyAt(c, "key", `${path}.`, limits);
  const present: ("version" | "value" | "exists")[] = [];
  if (optional(c, "version") !== undefined) present.push("version");
  if (optional(c, "value") !== undefined || optional(c, "valueBase64") !== undefined) present.push("value");
  if (optional(c, "exists") !== undefined) present.push("exists");
  const targetRaw = optional(c, "target");
  if (targetRaw !== undefined && targetRaw !== "version" && targetRaw !== "value" && targetRaw !== "exists") {
    throw new BadRequestError(`${path}.target`, "must be version, value or exists");
  }
  if (present.length !== 1) {
    throw new BadRequestError(path, "give exactly one of version, value (or valueBase64) or exists to compare");
  }
  const target = present[0]!;
  if (targetRaw !== undefined && targetRaw !== target) {
    throw new BadRequestError(`${path}.target`, `says ${targetRaw} but the compare gives ${target}`);
  }
  const cmpRaw = optional(c, "cmp");
  if (target === "exists") {
    if (cmpRaw !== undefined) throw new BadRequestError(`${path}.cmp`, "an exists compare takes no cmp");
    const exists = own(c, "exists");
    if (typeof exists !== "boolean") throw new BadRequestError(`${path}.exists`, "must be true or false");
    return { key, target: "exists", exists };
  }
  if (target === "version") {
    const cmp = cmpRaw === undefined ? "=" : cmpRaw;
    if (typeof cmp !== "string" || !(VERSION_CMPS as readonly string[]).includes(cmp)) {
      throw new BadRequestError(`${path}.cmp`, "must be one of =, !=, <, > for a version compare");
    }
    const version = integerAt(own(c, "version"), `${path}.version`);
    return { key, target: "version", cmp: cmp as CompareOp, version };
  }
  const cmp = cmpRaw === undefined ? "=" : cmpRaw;
  if (cmp !== "=" && cmp !== "!=") throw new BadRequestError(`${path}.cmp`, "must be = or != for a value compare");
  return { key, target: "value", cmp, value: valueAt(c, `${path}.`, limits) };
}

function txnWritesAt(body: Record<string, unknown>, field: "success" | "failure", limits: WireLimits): TxnWrite[] {
  const raw = arrayAt(body, field, limits.txnWritesMax, "txnWritesMax");
  const writes: TxnWrite[] = [];
  for (let i = 0; i < raw.length; i++) {
    const path = `${field}[${i}]`;
    const w = recordAt(raw[i], path, "must be an object like {\"op\":\"put\",\"key\":\"k\",\"value\":\"v\"}");
    const op = own(w, "op");
    if (op === "put") {
      onlyFields(w, TXN_PUT_FIELDS, `${path}.`);
      const key = keyAt(w, "key", `${path}.`, limits);
      writes.push({ op: "put", key, value: valueAt(w, `${path}.`, limits) });
    } else if (op === "delete") {
      onlyFields(w, TXN_DELETE_FIELDS, `${path}.`);
      writes.push({ op: "delete", key: keyAt(w, "key", `${path}.`, limits) });
    } else {
      throw new BadRequestError(`${path}.op`, op === undefined ? "missing; put or delete" : "must be put or delete");
    }
  }
  return writes;
}

/** Keys and values of one write, as they will travel in a Paxos value. */
function writeBytes(op: WriteOp): number {
  switch (op.op) {
    case "put":
    case "cas":
      return utf8Length(op.key) + op.value.length;
    case "delete":
      return utf8Length(op.key);
    case "txn": {
      let n = 0;
      for (const c of op.compares) n += utf8Length(c.key) + (c.target === "value" ? c.value.length : 0);
      for (const w of [...op.success, ...op.failure]) n += utf8Length(w.key) + (w.op === "put" ? w.value.length : 0);
      return n;
    }
  }
}

// ---- Field readers (exported for codec.ts and peerCodec.ts) -----------------------------------

/** A plain object: what JSON.parse and msgpack maps give; not an array, Date, Map, Buffer... */
export function isPlainRecord(x: unknown): x is Record<string, unknown> {
  if (typeof x !== "object" || x === null || Array.isArray(x)) return false;
  const proto: unknown = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

/** An own property, never one from the prototype chain; null counts as absent. */
export function optional(rec: Record<string, unknown>, name: string): unknown {
  const v = own(rec, name);
  return v === null ? undefined : v;
}

export function own(rec: Record<string, unknown>, name: string): unknown {
  return Object.hasOwn(rec, name) ? rec[name] : undefined;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Whether a string is well-formed Unicode, i.e. survives UTF-8 encoding unchanged. */
export function isWellFormed(s: string): boolean {
  return !LONE_SURROGATE.test(s);
}

function recordAt(x: unknown, path: string, shape: string): Record<string, unknown> {
  if (isPlainRecord(x)) return x;
  throw new BadRequestError(path, `${shape}; got ${kindOf(x)}`);
}

function onlyFields(rec: Record<string, unknown>, allowed: readonly string[], prefix: string): void {
  for (const name of Object.keys(rec)) {
    if (!allowed.includes(name)) {
      throw new BadRequestError(`${prefix}${clip(name)}`, `unknown field; allowed here: ${allowed.join(", ")}`);
    }
  }
}

function stringAt(x: unknown, path: string, bytesMax: number, limit: LimitName): string {
  if (typeof x !== "string") throw new BadRequestError(path, `must be a string; got ${kindOf(x)}`);
  // Cheap bound first: a UTF-16 unit is at least one UTF-8 byte.
  if (x.length > bytesMax) throw new TooLargeError(path, limit, bytesMax, utf8Length(x));
  const size = utf8Length(x);
  if (size > bytesMax) throw new TooLargeError(path, limit, bytesMax, size);
  if (!isWellFormed(x)) throw new BadRequestError(path, "is not well-formed Unicode (a lone surrogate)");
  return x;
}

function optionalString(
  rec: Record<string, unknown>,
  name: string,
  prefix: string,
  bytesMax: number,
  limit: LimitName,
): string | undefined {
  const x = optional(rec, name);
  return x === undefined ? undefined : stringAt(x, `${prefix}${name}`, bytesMax, limit);
}

function keyAt(rec: Record<string, unknown>, name: string, prefix: string, limits: WireLimits): string {
  const x = own(rec, name);
  if (x === undefined || x === null) throw new BadRequestError(`${prefix}${name}`, "missing");
  const key = stringAt(x, `${prefix}${name}`, limits.keyBytesMax, "keyBytesMax");
  if (key.length === 0) throw new BadRequestError(`${prefix}${name}`, "must not be empty");
  return key;
}

function groupAt(rec: Record<string, unknown>, limits: WireLimits): string | undefined {
  const group = optionalString(rec, "group", "", limits.groupBytesMax, "groupBytesMax");
  if (group !== undefined && group.length === 0) throw new BadRequestError("group", "must not be empty; leave it out to use the key as its group");
  return group;
}

/** A non-negative safe integer (versions, indexes, limits). */
function integerAt(x: unknown, path: string): number {
  if (typeof x !== "number") throw new BadRequestError(path, `must be a non-negative integer; got ${kindOf(x)}`);
  if (Number.isNaN(x)) throw new BadRequestError(path, "must be a non-negative integer; got NaN");
  if (!Number.isFinite(x)) throw new BadRequestError(path, "must be a non-negative integer; got an infinity");
  if (!Number.isInteger(x)) throw new BadRequestError(path, `must be a non-negative integer; got the fraction ${x}`);
  if (x < 0) throw new BadRequestError(path, `must be a non-negative integer; got ${x}`);
  if (!Number.isSafeInteger(x)) throw new BadRequestError(path, `must be at most 2^53-1; got ${x}`);
  return x + 0; // -0 becomes 0
}

function arrayAt(rec: Record<string, unknown>, name: string, max: number, limit: LimitName): readonly unknown[] {
  const x = optional(rec, name);
  if (x === undefined) return [];
  if (!Array.isArray(x)) throw new BadRequestError(name, `must be an array; got ${kindOf(x)}`);
  if (x.length > max) throw new TooLargeError(name, limit, max, x.length);
  return x;
}

function consistencyAt(rec: Record<string, unknown>): Consistency {
  const x = optional(rec, "consistency");
  if (x === undefined) return "linearizable";
  if (x === "linearizable" || x === "stale") return x;
  throw new BadRequestError("consistency", "must be linearizable or stale");
}

function valueEncodingAt(rec: Record<string, unknown>): ValueEncoding {
  const x = optional(rec, "valueEncoding");
  if (x === undefined) return "auto";
  if (x === "auto" || x === "base64") return x;
  throw new BadRequestError("valueEncoding", "must be auto or base64");
}

/** `value` (a UTF-8 string, or bytes in msgpack) or `valueBase64`: exactly one. */
function valueAt(rec: Record<string, unknown>, prefix: string, limits: WireLimits): Uint8Array {
  const text = optional(rec, "value");
  const b64 = optional(rec, "valueBase64");
  if (text !== undefined && b64 !== undefined) {
    throw new BadRequestError(`${prefix}value`, "give value or valueBase64, not both");
  }
  const max = limits.valueBytesMax;
  if (b64 !== undefined) {
    const path = `${prefix}valueBase64`;
    if (typeof b64 !== "string") throw new BadRequestError(path, `must be a base64 string; got ${kindOf(b64)}`);
    const size = base64DecodedLength(b64);
    if (size === null) throw new BadRequestError(path, "is not valid base64 (RFC 4648: A-Z a-z 0-9 + /, = padding)");
    if (size > max) throw new TooLargeError(path, "valueBytesMax", max, size);
    return new Uint8Array(Buffer.from(b64, "base64"));
  }
  const path = `${prefix}value`;
  if (text === undefined) throw new BadRequestError(path, "missing; give value (a UTF-8 string) or valueBase64 (bytes)");
  if (typeof text === "string") {
    if (text.length > max) throw new TooLargeError(path, "valueBytesMax", max, utf8Length(text));
    const size = utf8Length(text);
    if (size > max) throw new TooLargeError(path, "valueBytesMax", max, size);
    if (!isWellFormed(text)) {
      throw new BadRequestError(path, "is not well-formed Unicode (a lone surrogate); send bytes as valueBase64");
    }
    return new Uint8Array(Buffer.from(text, "utf8"));
  }
  if (text instanceof Uint8Array) {
    if (text.length > max) throw new TooLargeError(path, "valueBytesMax", max, text.length);
    return new Uint8Array(text); // a copy: never keep a view of the request's buffer
  }
  throw new BadRequestError(path, `must be a string (use valueBase64 for bytes); got ${kindOf(text)}`);
}

const BASE64 = /^[A-Za-z0-9+/]*$/;

/** The decoded length of strict base64 (padding optional), or null when it is not base64. */
export function base64DecodedLength(s: string): number | null {
  let body = s;
  if (s.length % 4 === 0 && s.endsWith("==")) body = s.slice(0, -2);
  else if (s.length % 4 === 0 && s.endsWith("=")) body = s.slice(0, -1);
  if (body.length % 4 === 1 || !BASE64.test(body)) return null;
  return Math.floor((body.length * 3) / 4);
}

/** A short description of what arrived, for error messages (never the value itself). */
export function kindOf(v: unknown): string {
  if (v === null) return "null";
  if (v === undefined) return "nothing";
  if (Array.isArray(v)) return "an array";
  if (v instanceof Uint8Array) return "bytes";
  switch (typeof v) {
    case "string":
      return "a string";
    case "number":
      return Number.isNaN(v) ? "NaN" : "a number";
    case "boolean":
      return "a boolean";
    case "bigint":
      return "a big integer";
    case "object": {
      if (isPlainRecord(v)) return "an object";
      const tag = Object.prototype.toString.call(v).slice(8, -1);
      return `a ${tag}`;
    }
    default:
      return `a ${typeof v}`;
  }
}

function quote(s: string): string {
  return JSON.stringify(clip(s));
}

function clip(s: string): string {
  return s.length > 64 ? `${s.slice(0, 64)}...` : s;
}
