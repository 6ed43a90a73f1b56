// The client wire API: what a client sends to `<prefix>.api` and what it gets back.
// docs/API.md is the contract for people; this file is the same contract for the compiler.
//
// Three shapes of one request:
//   - `ApiRequest`: what a client builds (values as bytes or strings); codec.ts encodes it;
//   - on the wire: JSON (a value is a UTF-8 `value` string or a `valueBase64` string) or
//     msgpack (a value is raw bytes, `bin`), see codec.ts;
//   - `ValidRequest`: what validate.ts makes of whatever arrived, with the group resolved and
//     the op in the core's own types (ops.ts), ready for a key-group actor.
// Answers are `{ ok: true, ...result }` or `{ ok: false, error: { code, message, details? } }`;
// in `ApiResponse` every value is bytes, the codec renders it per encoding.

import type { NodeId } from "./ballot.js";
import type { Consistency } from "./io.js";
import type { CompareOp, ReadQuery, ReadResult, WriteOp, WriteResult } from "./ops.js";
import { ConflictError, InternalError, type PaxosStoreError, type WireError, toWireError } from "./errors.js";
import { scanItemBytesEstimate, type WireLimits } from "./limits.js";

export type { Consistency } from "./io.js";

export const API_OPS = ["get", "put", "delete", "cas", "txn", "scan", "status"] as const;
export type ApiOp = (typeof API_OPS)[number];

/**
 * How a JSON answer carries values: `auto` (the default) sends `value` as a string when the
 * bytes are text (valid UTF-8 with no control characters but tab, newline and carriage return)
 * and `valueBase64` otherwise; `base64` always sends `valueBase64`. Msgpack always sends bytes.
 */
export type ValueEncoding = "auto" | "base64";

/** A value as a client gives it: bytes, or a string sent as its UTF-8 bytes. */
export type ApiValue = Uint8Array | string;

// ---- Requests -------------------------------------------------------------------------------

/** A key with no `group` is its own group. */
export interface GetRequest {
  readonly op: "get";
  readonly group?: string;
  readonly key: string;
  /** Default `linearizable`; `stale` reads the answering replica alone. */
  readonly consistency?: Consistency;
  readonly valueEncoding?: ValueEncoding;
}

export interface PutRequest {
  readonly op: "put";
  readonly group?: string;
  readonly key: string;
  readonly value: ApiValue;
  /** Makes retries safe: a request id is applied at most once per group. The node makes one when absent. */
  readonly requestId?: string;
}

export interface DeleteRequest {
  readonly op: "delete";
  readonly group?: string;
  readonly key: string;
  readonly requestId?: string;
}

/** Writes `value` only if the key is at `version` now (0: the key must not exist). */
export interface CasRequest {
  readonly op: "cas";
  readonly group?: string;
  readonly key: string;
  readonly version: number;
  readonly value: ApiValue;
  readonly requestId?: string;
}

/**
 * A txn compare. Which of `version`, `value` or `exists` is present says what is compared
 * (`target` may say it too, and must then agree); `cmp` defaults to `=`.
 */
export type CompareRequest =
  | { readonly key: string; readonly target?: "version"; readonly cmp?: CompareOp; readonly version: number }
  | { readonly key: string; readonly target?: "value"; readonly cmp?: "=" | "!="; readonly value: ApiValue }
  | { readonly key: string; readonly target?: "exists"; readonly exists: boolean };

export type TxnWriteRequest =
  | { readonly op: "put"; readonly key: string; readonly value: ApiValue }
  | { readonly op: "delete"; readonly key: string };

/** All or nothing inside one group: if every compare holds, `success` runs, else `failure`. */
export interface TxnRequest {
  readonly op: "txn";
  readonly group: string;
  /** Default []: always succeeds (an atomic multi-write). */
  readonly compares?: readonly CompareRequest[];
  readonly success?: readonly TxnWriteRequest[];
  readonly failure?: readonly TxnWriteRequest[];
  readonly requestId?: string;
}

/** Keys of one group starting with `prefix`, in key order, after `after` (exclusive). */
export interface ScanRequest {
  readonly op: "scan";
  readonly group: string;
  readonly prefix?: string;
  /** The `next` of the previous page. */
  readonly after?: string;
  readonly limit?: number;
  readonly consistency?: Consistency;
  readonly valueEncoding?: ValueEncoding;
}

export interface StatusRequest {
  readonly op: "status";
}

export type ApiRequest =
  | GetRequest
  | PutRequest
  | DeleteRequest
  | CasRequest
  | TxnRequest
  | ScanRequest
  | StatusRequest;

/** A request after validation: group resolved, values as bytes, ops in the core's types. */
export type ValidRequest =
  | {
      readonly kind: "read";
      readonly group: string;
      readonly query: ReadQuery;
      readonly consistency: Consistency;
      readonly valueEncoding: ValueEncoding;
    }
  | {
      readonly kind: "write";
      readonly group: string;
      readonly op: WriteOp;
      /** Null when the client gave none: the api handler makes one (unique per node and process). */
      readonly requestId: string | null;
    }
  | { readonly kind: "status" };

// ---- Results ----------------------------------------------------------------------------------

/** `index` is the chosen index the read observed: it reflects every write up to it. */
export type GetResult =
  | { readonly found: true; readonly value: Uint8Array; readonly version: number; readonly index: number }
  | { readonly found: false; readonly index: number };

/** `version` is the Paxos index the write was applied at: the key's new version. */
export interface PutResult {
  readonly version: number;
}

export interface DeleteResult {
  readonly version: number;
  /** Whether the key existed; deleting an absent key still takes an index. */
  readonly existed: boolean;
}

/** A cas that found another version answers a `conflict` error instead. */
export interface CasResult {
  readonly version: number;
}

export type TxnWriteResult =
  | { readonly op: "put"; readonly version: number }
  | { readonly op: "delete"; readonly version: number; readonly existed: boolean };

/**
 * A txn whose compares failed is not an error: its `failure` branch ran (possibly writing),
 * and `succeeded` is false. `currentVersions` are the compared keys' versions, in compare
 * order, as the compares saw them (0: absent).
 */
export interface TxnResult {
  readonly succeeded: boolean;
  readonly version: number;
  readonly currentVersions: readonly number[];
  /** One per write of the branch that ran, in order. */
  readonly results: readonly TxnWriteResult[];
}

export interface ScanItem {
  readonly key: string;
  readonly value: Uint8Array;
  readonly version: number;
}

export interface ScanResult {
  readonly items: readonly ScanItem[];
  /** Present when more keys may follow: send it as `after` for the next page. */
  readonly next?: string;
  readonly index: number;
}

export interface StatusResult {
  /** The node that answered. */
  readonly node: NodeId;
  readonly cluster: string;
  /** The software version. */
  readonly version: string;
  readonly uptimeMs: number;
  /** The configured members, this node included. */
  readonly members: readonly NodeId[];
  /** Members this node has heard from recently (itself included). */
  readonly membersSeen: readonly NodeId[];
  /** Key-group actors in memory on this node. */
  readonly groupsActive: number;
  readonly limits: WireLimits;
  /** This node's view of the membership log and its part in a change (issue 13); absent from older nodes. */
  readonly membership?: MembershipStatus;
}

/** `status`.membership: the node's view of `__members`, and the groups it still has to move. */
export interface MembershipStatus {
  readonly epoch: number;
  readonly members: readonly NodeId[];
  readonly previous: readonly NodeId[];
  readonly phase: "stable" | "migrating" | "sealing" | "sealed";
  /** The version of `__members` this view was read at. */
  readonly version: number;
  /** Groups this node moved since it started. */
  readonly moved: number;
  /** Groups held here still to move (last full sweep). */
  readonly left: number;
  /** The view version the last full sweep began at (-1: none yet). */
  readonly sweptVersion: number;
  /** Voter copies held here, and copies this node was removed from and has not dropped yet. */
  readonly held: number;
  readonly removedHeld: number;
  /** Not a member any more and holds nothing: the node may be stopped. */
  readonly removed: boolean;
}

export interface ResultByOp {
  readonly get: GetResult;
  readonly put: PutResult;
  readonly delete: DeleteResult;
  readonly cas: CasResult;
  readonly txn: TxnResult;
  readonly scan: ScanResult;
  readonly status: StatusResult;
}

export interface ErrorResponse {
  readonly ok: false;
  readonly error: WireError;
}

export type OkResponse<O extends ApiOp> = { readonly ok: true } & ResultByOp[O];

export type ResponseFor<O extends ApiOp> = OkResponse<O> | ErrorResponse;

export type ApiResponse = { [O in ApiOp]: OkResponse<O> }[ApiOp] | ErrorResponse;

// ---- From the core's outcomes to answers ------------------------------------------------------

export function errorResponse(err: PaxosStoreError | unknown): ErrorResponse {
  return { ok: false, error: toWireError(err) };
}

/** The answer to a write, from the result the core computed for it. */
export function answerWrite(op: WriteOp, result: WriteResult): ApiResponse {
  switch (result.type) {
    case "put":
      return { ok: true, version: result.version };
    case "delete":
      return { ok: true, version: result.version, existed: result.existed };
    case "cas":
      if (result.ok) return { ok: true, version: result.version };
      if (op.op !== "cas") return errorResponse(new InternalError(`a ${op.op} answered a cas result`));
      return errorResponse(new ConflictError(op.key, op.version, result.current));
    case "txn": {
      const results: TxnWriteResult[] = [];
      for (const r of result.results) {
        if (r.type === "put") results.push({ op: "put", version: r.version });
        else if (r.type === "delete") results.push({ op: "delete", version: r.version, existed: r.existed });
        else return errorResponse(new InternalError(`a txn write answered a ${r.type} result`));
      }
      return {
        ok: true,
        succeeded: result.succeeded,
        version: result.version,
        currentVersions: [...result.currentVersions],
        results,
      };
    }
  }
}

/**
 * The answer to a read. A scan page is cut short (with a `next` cursor) when its estimated
 * encoded size would pass `limits.scanPageBytesMax`, so that the answer fits in one frame;
 * it always keeps at least one item, so a scan always makes progress.
 */
export function answerRead(result: ReadResult, limits: WireLimits): ApiResponse {
  if (result.kind === "get") {
    return result.entry === null
      ? { ok: true, found: false, index: result.index }
      : { ok: true, found: true, value: result.entry.value, version: result.entry.version, index: result.index };
  }
  const items: ScanItem[] = [];
  let bytes = 0;
  let next = result.next;
  for (const item of result.items) {
    const size = scanItemBytesEstimate(utf8Length(item.key), item.value.length);
    if (items.length > 0 && bytes + size > limits.scanPageBytesMax) {
      next = items[items.length - 1]!.key;
      break;
    }
    bytes += size;
    items.push({ key: item.key, value: item.value, version: item.version });
  }
  return next === undefined ? { ok: true, items, index: result.index } : { ok: true, items, next, index: result.index };
}

/** UTF-8 length of a string without encoding it (lone surrogates count as U+FFFD, 3 bytes). */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}
