// Peer frames: all the Paxos messages one node sends another in one tick, for any number of
// groups, as one msgpack NATS message on `<prefix>.peer.<node>`:
//
//   { from: NodeId, cluster: string, messages: PeerMessage[] }
//
// A frame from the network is never trusted: `decodePeerFrame` checks every field of every
// message variant of messages.ts and rebuilds each message from its known fields only, so
// what reaches the core is exactly the declared types (ballots, indexes and versions
// non-negative safe integers, values Uint8Arrays, strings well-formed and within the wire
// limits). Unknown fields are ignored, not refused, so that a newer node may add one. It never
// throws: a bad frame is an `{ ok: false, reason }` for the transport to drop and count.
//
// Every node of a cluster must run the same wire limits: a node with smaller ones drops the
// frames that carry what it would not have accepted from a client.

import type { Packr, Unpackr } from "msgpackr";

import type { Ballot, NodeId } from "./ballot.js";
import { newPackr, newUnpackr, plainView } from "./codec.js";
import { DEFAULT_WIRE_LIMITS, type WireLimits } from "./limits.js";
import type {
  AcceptedValue,
  ChosenEntry,
  PeerMessage,
  PeerMessageType,
  RequestRecord,
} from "./messages.js";
import type { Command, Compare, CompareOp, Configuration, Entry, TxnWrite, Value, WriteOp, WriteResult } from "./ops.js";
import { isValidClusterName, isValidNodeId } from "./subjects.js";
import { isPlainRecord, isWellFormed, kindOf } from "./validate.js";

export interface PeerFrame {
  readonly from: NodeId;
  readonly cluster: string;
  readonly messages: readonly PeerMessage[];
}

export type PeerFrameDecoding = { readonly ok: true; readonly frame: PeerFrame } | { readonly ok: false; readonly reason: string };

/** Value ids are made by proposers (node, incarnation, counter): short, but bounded anyway. */
export const VALUE_ID_BYTES_MAX = 256;

/** Replicas per group configuration on the wire (3 or 5 in practice). */
export const CONFIG_REPLICAS_MAX = 15;

const packr: Packr = newPackr();
const unpackr: Unpackr = newUnpackr();

// ---- Encoding -------------------------------------------------------------------------------

export function encodePeerFrame(frame: PeerFrame): Uint8Array {
  return packr.pack({ from: frame.from, cluster: frame.cluster, messages: frame.messages });
}

/**
 * The messages to one peer as as few frames as fit in `frameBytesMax` each, in order. When they
 * do not fit in one, each message is encoded once and the frames are assembled around the
 * encoded bytes (a msgpack array is its header followed by its elements). A message
 * that alone cannot fit is returned in `oversized`, not sent: the protocol treats it as lost.
 */
export function encodePeerFrames(
  from: NodeId,
  cluster: string,
  messages: readonly PeerMessage[],
  frameBytesMax: number = DEFAULT_WIRE_LIMITS.frameBytesMax,
): { readonly frames: Uint8Array[]; readonly oversized: PeerMessage[] } {
  // The common case: everything fits in one frame, encoded in one pass.
  const whole = encodePeerFrame({ from, cluster, messages });
  if (whole.length <= frameBytesMax) return { frames: messages.length === 0 ? [] : [whole], oversized: [] };
  // { from, cluster } is a 2-entry fixmap; the frame is the same map with a third entry.
  const head = packr.pack({ from, cluster });
  const messagesKey = packr.pack("messages");
  const fixed = head.length + messagesKey.length + 5; // 5: the largest array header
  const frames: Uint8Array[] = [];
  const oversized: PeerMessage[] = [];
  let batch: Uint8Array[] = [];
  let batchBytes = 0;
  const flush = (): void => {
    if (batch.length === 0) return;
    frames.push(assemble(head, messagesKey, batch, batchBytes));
    batch = [];
    batchBytes = 0;
  };
  for (const msg of messages) {
    // A copy: the packr's buffer is reused by the next pack.
    const bytes = Uint8Array.prototype.slice.call(packr.pack(msg));
    if (fixed + bytes.length > frameBytesMax) {
      oversized.push(msg);
      continue;
    }
    if (fixed + batchBytes + bytes.length > frameBytesMax) flush();
    batch.push(bytes);
    batchBytes += bytes.length;
  }
  flush();
  return { frames, oversized };
}

function assemble(head: Uint8Array, messagesKey: Uint8Array, items: readonly Uint8Array[], itemBytes: number): Uint8Array {
  const n = items.length;
  const arrayHeader = n < 16 ? [0x90 | n] : n < 0x10000 ? [0xdc, n >> 8, n & 0xff] : [0xdd, n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
  const out = new Uint8Array(head.length + messagesKey.length + arrayHeader.length + itemBytes);
  out.set(head, 0);
  out[0] = 0x83; // fixmap of 3 entries instead of 2
  let at = head.length;
  out.set(messagesKey, at);
  at += messagesKey.length;
  out.set(arrayHeader, at);
  at += arrayHeader.length;
  for (const item of items) {
    out.set(item, at);
    at += item.length;
  }
  return out;
}

// ---- Decoding -------------------------------------------------------------------------------

/** A frame's bytes, fully validated. Never throws. */
export function decodePeerFrame(bytes: Uint8Array, limits: WireLimits = DEFAULT_WIRE_LIMITS): PeerFrameDecoding {
  if (!(bytes instanceof Uint8Array)) return { ok: false, reason: "frame is not bytes" };
  if (bytes.length > limits.frameBytesMax) {
    return { ok: false, reason: `frame is ${bytes.length} bytes, over frameBytesMax ${limits.frameBytesMax}` };
  }
  let raw: unknown;
  try {
    raw = unpackr.unpack(plainView(bytes));
  } catch (err) {
    return { ok: false, reason: `frame is not valid msgpack: ${err instanceof Error ? err.message.slice(0, 200) : String(err)}` };
  }
  try {
    return { ok: true, frame: frameOf(raw, limits) };
  } catch (err) {
    if (err instanceof Invalid) return { ok: false, reason: err.path === "" ? err.why : `${err.path}: ${err.why}` };
    return { ok: false, reason: `frame could not be validated: ${err instanceof Error ? err.message : String(err)}` };
  }
}

/**
 * A validation failure. Paths are built on the way out (each level prefixes its own part), so
 * the hot path of a valid frame builds no strings.
 */
class Invalid extends Error {
  constructor(
    readonly path: string,
    readonly why: string,
  ) {
    super(why);
  }
  under(prefix: string): Invalid {
    if (prefix === "") return this;
    return new Invalid(this.path === "" ? prefix : this.path.startsWith("[") ? `${prefix}${this.path}` : `${prefix}.${this.path}`, this.why);
  }
}

function fail(path: string, why: string): never {
  throw new Invalid(path, why);
}

function under(prefix: string, err: unknown): never {
  if (err instanceof Invalid) throw err.under(prefix);
  throw err;
}

type Rec = Record<string, unknown>;

function rec(x: unknown, path: string): Rec {
  if (!isPlainRecord(x)) fail(path, `must be a map, got ${kindOf(x)}`);
  return x;
}

function field(r: Rec, name: string): unknown {
  return Object.hasOwn(r, name) ? r[name] : undefined;
}

function nat(r: Rec, name: string): number {
  const x = field(r, name);
  if (typeof x !== "number" || !Number.isSafeInteger(x) || x < 0) fail(name, `must be a non-negative safe integer, got ${describeNumber(x)}`);
  return x + 0;
}

function natOrNull(r: Rec, name: string): number | null {
  return field(r, name) === null ? null : nat(r, name);
}

function describeNumber(x: unknown): string {
  return typeof x === "number" ? String(x) : kindOf(x);
}

function bool(r: Rec, name: string): boolean {
  const x = field(r, name);
  if (typeof x !== "boolean") fail(name, `must be a boolean, got ${kindOf(x)}`);
  return x;
}

function stringValue(x: unknown, path: string, bytesMax: number, allowEmpty: boolean): string {
  if (typeof x !== "string") fail(path, `must be a string, got ${kindOf(x)}`);
  if (!allowEmpty && x.length === 0) fail(path, "must not be empty");
  // A UTF-16 unit is 1 to 3 UTF-8 bytes: the exact count is needed only near the limit.
  if (x.length * 3 > bytesMax && Buffer.byteLength(x, "utf8") > bytesMax) fail(path, `is over ${bytesMax} bytes`);
  if (!isWellFormed(x)) fail(path, "is not well-formed Unicode");
  return x;
}

function str(r: Rec, name: string, bytesMax: number, allowEmpty = false): string {
  return stringValue(field(r, name), name, bytesMax, allowEmpty);
}

function strOrNull(r: Rec, name: string, bytesMax: number, allowEmpty = false): string | null {
  return field(r, name) === null ? null : str(r, name, bytesMax, allowEmpty);
}

function bytesValue(x: unknown, path: string, max: number): Uint8Array {
  if (!(x instanceof Uint8Array)) fail(path, `must be bytes, got ${kindOf(x)}`);
  if (x.length > max) fail(path, `is ${x.length} bytes, over ${max}`);
  // copyBuffers already gave a fresh Uint8Array; anything else (a Buffer) is copied.
  return x.constructor === Uint8Array ? x : new Uint8Array(x);
}

function arrayValue(x: unknown, path: string): readonly unknown[] {
  if (!Array.isArray(x)) fail(path, `must be an array, got ${kindOf(x)}`);
  return x;
}

function nodeId(x: unknown, path: string): NodeId {
  if (!isValidNodeId(x)) fail(path, `is not a valid node id (${typeof x === "string" ? JSON.stringify(x.slice(0, 64)) : kindOf(x)})`);
  return x;
}

function ballotValue(x: unknown, path: string): Ballot {
  const r = rec(x, path);
  try {
    return { round: nat(r, "round"), node: nodeId(field(r, "node"), "node") };
  } catch (err) {
    return under(path, err);
  }
}

function ballotOrNull(r: Rec, name: string): Ballot | null {
  const x = field(r, name);
  return x === null ? null : ballotValue(x, name);
}

// ---- The frame and its messages -------------------------------------------------------------

function frameOf(raw: unknown, limits: WireLimits): PeerFrame {
  const r = rec(raw, "frame");
  const from = nodeId(field(r, "from"), "from");
  const cluster = field(r, "cluster");
  if (!isValidClusterName(cluster)) fail("cluster", `is not a valid cluster name (${kindOf(cluster)})`);
  const rawMessages = arrayValue(field(r, "messages"), "messages");
  const messages: PeerMessage[] = new Array<PeerMessage>(rawMessages.length);
  for (let i = 0; i < rawMessages.length; i++) {
    try {
      messages[i] = messageOf(rawMessages[i], limits);
    } catch (err) {
      under(`messages[${i}]`, err);
    }
  }
  return { from, cluster, messages };
}

const MESSAGE_TYPES: ReadonlySet<string> = new Set<PeerMessageType>([
  "prepare",
  "promise",
  "accept",
  "accepted",
  "reject",
  "chosen",
  "catchupRequest",
  "catchupEntry",
  "catchupSnapshot",
  "readProbe",
  "readProbeReply",
]);

function messageOf(x: unknown, limits: WireLimits): PeerMessage {
  const r = rec(x, "");
  const type = field(r, "type");
  if (typeof type !== "string" || !MESSAGE_TYPES.has(type)) {
    fail("type", `unknown message type ${typeof type === "string" ? JSON.stringify(type.slice(0, 64)) : kindOf(type)}`);
  }
  const group = str(r, "group", limits.groupBytesMax);
  switch (type as PeerMessageType) {
    case "prepare":
      return {
        type: "prepare",
        group,
        index: nat(r, "index"),
        ballot: ballotValue(field(r, "ballot"), "ballot"),
        prev: chosenEntryOrNull(r, "prev", limits),
      };
    case "promise":
      return {
        type: "promise",
        group,
        index: nat(r, "index"),
        ballot: ballotValue(field(r, "ballot"), "ballot"),
        accepted: acceptedOrNull(r, "accepted", limits),
      };
    case "accept":
      return {
        type: "accept",
        group,
        index: nat(r, "index"),
        ballot: ballotValue(field(r, "ballot"), "ballot"),
        value: valueOf(field(r, "value"), "value", limits),
        prev: chosenEntryOrNull(r, "prev", limits),
      };
    case "accepted":
      return { type: "accepted", group, index: nat(r, "index"), ballot: ballotValue(field(r, "ballot"), "ballot") };
    case "reject":
      return {
        type: "reject",
        group,
        index: nat(r, "index"),
        ballot: ballotValue(field(r, "ballot"), "ballot"),
        promised: ballotOrNull(r, "promised"),
        chosen: nat(r, "chosen"),
      };
    case "chosen": {
      const valueId = str(r, "valueId", VALUE_ID_BYTES_MAX);
      const value = field(r, "value") === null ? null : valueOf(field(r, "value"), "value", limits);
      if (value !== null && value.id !== valueId) fail("value.id", "differs from valueId");
      return { type: "chosen", group, index: nat(r, "index"), ballot: ballotValue(field(r, "ballot"), "ballot"), valueId, value };
    }
    case "catchupRequest": {
      const request = {
        type: "catchupRequest" as const,
        group,
        chosen: nat(r, "chosen"),
        snapshotAt: natOrNull(r, "snapshotAt"),
        after: strOrNull(r, "after", limits.keyBytesMax, true),
      };
      if (field(r, "snapshot") === undefined) return request;
      if (field(r, "snapshot") !== true) fail("snapshot", "must be true when present");
      return { ...request, snapshot: true };
    }
    case "catchupEntry":
      return { type: "catchupEntry", group, entry: chosenEntryOf(field(r, "entry"), "entry", limits) };
    case "catchupSnapshot": {
      const chunk = {
        type: "catchupSnapshot" as const,
        group,
        at: chosenEntryOf(field(r, "at"), "at", limits),
        after: strOrNull(r, "after", limits.keyBytesMax, true),
        items: snapshotItems(field(r, "items"), limits),
        requests: requestRecords(field(r, "requests"), limits),
        next: strOrNull(r, "next", limits.keyBytesMax, true),
      };
      return field(r, "config") === undefined ? chunk : { ...chunk, config: configurationOf(field(r, "config"), "config") };
    }
    case "readProbe": {
      const probe = { type: "readProbe" as const, group, probe: nat(r, "probe") };
      return field(r, "settle") === undefined ? probe : { ...probe, settle: nat(r, "settle") };
    }
    case "readProbeReply":
      return { type: "readProbeReply", group, probe: nat(r, "probe"), chosen: nat(r, "chosen"), accepted: bool(r, "accepted") };
  }
}

function chosenEntryOf(x: unknown, path: string, limits: WireLimits): ChosenEntry {
  const r = rec(x, path);
  try {
    return { index: nat(r, "index"), ballot: ballotValue(field(r, "ballot"), "ballot"), value: valueOf(field(r, "value"), "value", limits) };
  } catch (err) {
    return under(path, err);
  }
}

function chosenEntryOrNull(r: Rec, name: string, limits: WireLimits): ChosenEntry | null {
  const x = field(r, name);
  return x === null ? null : chosenEntryOf(x, name, limits);
}

function acceptedOrNull(r: Rec, name: string, limits: WireLimits): AcceptedValue | null {
  const x = field(r, name);
  if (x === null) return null;
  const a = rec(x, name);
  try {
    return { ballot: ballotValue(field(a, "ballot"), "ballot"), value: valueOf(field(a, "value"), "value", limits) };
  } catch (err) {
    return under(name, err);
  }
}

function valueOf(x: unknown, path: string, limits: WireLimits): Value {
  const r = rec(x, path);
  try {
    const id = str(r, "id", VALUE_ID_BYTES_MAX);
    const raw = arrayValue(field(r, "commands"), "commands");
    const commands: Command[] = new Array<Command>(raw.length);
    for (let i = 0; i < raw.length; i++) {
      try {
        commands[i] = commandOf(raw[i], limits);
      } catch (err) {
        under(`commands[${i}]`, err);
      }
    }
    if (field(r, "config") === undefined) return { id, commands };
    if (commands.length > 0) fail("commands", "must be empty in a reconfiguration");
    return { id, commands, config: configurationOf(field(r, "config"), "config") };
  } catch (err) {
    return under(path, err);
  }
}

/** A group configuration (membership.ts): an epoch and distinct, valid node ids. */
function configurationOf(x: unknown, path: string): Configuration {
  const r = rec(x, path);
  try {
    const epoch = nat(r, "epoch");
    const raw = arrayValue(field(r, "replicas"), "replicas");
    if (raw.length === 0 || raw.length > CONFIG_REPLICAS_MAX) fail("replicas", `must hold 1 to ${CONFIG_REPLICAS_MAX} nodes, got ${raw.length}`);
    const replicas = raw.map((n, i) => nodeId(n, `replicas[${i}]`));
    if (new Set(replicas).size !== replicas.length) fail("replicas", "must be distinct");
    return { epoch, replicas };
  } catch (err) {
    return under(path, err);
  }
}

function commandOf(x: unknown, limits: WireLimits): Command {
  const r = rec(x, "");
  return { requestId: str(r, "requestId", limits.requestIdBytesMax), op: writeOpOf(field(r, "op"), limits) };
}

function writeOpOf(x: unknown, limits: WireLimits): WriteOp {
  const r = rec(x, "op");
  try {
    const op = field(r, "op");
    switch (op) {
      case "put":
      case "delete":
        return txnWriteOf(r, limits);
      case "cas":
        return {
          op: "cas",
          key: str(r, "key", limits.keyBytesMax),
          version: nat(r, "version"),
          value: bytesValue(field(r, "value"), "value", limits.valueBytesMax),
        };
      case "txn": {
        const compares = listOf(field(r, "compares"), "compares", (c) => compareOf(c, limits));
        const success = listOf(field(r, "success"), "success", (w) => txnWriteOf(rec(w, ""), limits));
        const failure = listOf(field(r, "failure"), "failure", (w) => txnWriteOf(rec(w, ""), limits));
        return { op: "txn", compares, success, failure };
      }
      default:
        return fail("op", `unknown write op ${kindOf(op)}${typeof op === "string" ? ` ${JSON.stringify(op.slice(0, 32))}` : ""}`);
    }
  } catch (err) {
    return under("op", err);
  }
}

function txnWriteOf(r: Rec, limits: WireLimits): TxnWrite {
  const op = field(r, "op");
  if (op === "put") {
    return { op: "put", key: str(r, "key", limits.keyBytesMax), value: bytesValue(field(r, "value"), "value", limits.valueBytesMax) };
  }
  if (op === "delete") return { op: "delete", key: str(r, "key", limits.keyBytesMax) };
  return fail("op", "must be put or delete");
}

const VERSION_CMPS: ReadonlySet<unknown> = new Set<CompareOp>(["=", "!=", "<", ">"]);

function compareOf(x: unknown, limits: WireLimits): Compare {
  const r = rec(x, "");
  const key = str(r, "key", limits.keyBytesMax);
  const target = field(r, "target");
  switch (target) {
    case "version": {
      const cmp = field(r, "cmp");
      if (!VERSION_CMPS.has(cmp)) fail("cmp", "must be =, !=, < or >");
      return { key, target, cmp: cmp as CompareOp, version: nat(r, "version") };
    }
    case "value": {
      const cmp = field(r, "cmp");
      if (cmp !== "=" && cmp !== "!=") fail("cmp", "must be = or !=");
      return { key, target, cmp, value: bytesValue(field(r, "value"), "value", limits.valueBytesMax) };
    }
    case "exists":
      return { key, target, exists: bool(r, "exists") };
    default:
      return fail("target", "must be version, value or exists");
  }
}

function listOf<T>(x: unknown, path: string, item: (x: unknown) => T): T[] {
  const raw = arrayValue(x, path);
  const out: T[] = new Array<T>(raw.length);
  for (let i = 0; i < raw.length; i++) {
    try {
      out[i] = item(raw[i]);
    } catch (err) {
      under(`${path}[${i}]`, err);
    }
  }
  return out;
}

function entryOf(x: unknown, limits: WireLimits): Entry {
  const r = rec(x, "");
  return { value: bytesValue(field(r, "value"), "value", limits.valueBytesMax), version: nat(r, "version") };
}

function snapshotItems(x: unknown, limits: WireLimits): (readonly [string, Entry])[] {
  return listOf(x, "items", (pair) => {
    const p = arrayValue(pair, "");
    if (p.length !== 2) fail("", `must be a [key, entry] pair, got ${p.length} elements`);
    let key: string;
    try {
      key = stringValue(p[0], "", limits.keyBytesMax, false);
    } catch (err) {
      return under("[0]", err);
    }
    try {
      return [key, entryOf(p[1], limits)] as const;
    } catch (err) {
      return under("[1]", err);
    }
  });
}

function requestRecords(x: unknown, limits: WireLimits): RequestRecord[] {
  return listOf(x, "requests", (item) => {
    const r = rec(item, "");
    return {
      requestId: str(r, "requestId", limits.requestIdBytesMax),
      seq: nat(r, "seq"),
      index: nat(r, "index"),
      result: writeResultOf(field(r, "result"), "result", true),
    };
  });
}

/** `nested`: a txn's results hold only non-txn results, which bounds the depth. */
function writeResultOf(x: unknown, path: string, nested: boolean): WriteResult {
  const r = rec(x, path);
  try {
    switch (field(r, "type")) {
      case "put":
        return { type: "put", version: nat(r, "version") };
      case "delete":
        return { type: "delete", version: nat(r, "version"), existed: bool(r, "existed") };
      case "cas":
        return bool(r, "ok") ? { type: "cas", ok: true, version: nat(r, "version") } : { type: "cas", ok: false, current: nat(r, "current") };
      case "txn": {
        if (!nested) fail("type", "a txn result cannot hold a txn result");
        const currentVersions = listOf(field(r, "currentVersions"), "currentVersions", (v) => {
          if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) fail("", `must be a non-negative safe integer, got ${describeNumber(v)}`);
          return v + 0;
        });
        const results = listOf(field(r, "results"), "results", (res) => writeResultOf(res, "", false));
        return { type: "txn", succeeded: bool(r, "succeeded"), version: nat(r, "version"), currentVersions, results };
      }
      default:
        return fail("type", "must be put, delete, cas or txn");
    }
  } catch (err) {
    return under(path, err);
  }
}
