// What clients did and were told, in virtual time: the input of the linearizability and
// durability checkers. A write is one logical operation (one request id) with one or more
// attempts (a client that timed out may retry the same request id at another replica).

import type { NodeId } from "../../src/protocol/ballot.js";
import type { Consistency, ErrorCode } from "../../src/protocol/io.js";
import type { ReadQuery, ReadResult, WriteOp, WriteResult } from "../../src/protocol/ops.js";

/**
 * How an attempt ended: the core's answer, or "lost" when the client gave up without one
 * (the replica crashed holding the call): outcome unknown, like a timeout.
 */
export type AttemptOutcome<R> =
  | { readonly kind: "ok"; readonly result: R }
  | { readonly kind: "error"; readonly code: ErrorCode }
  | { readonly kind: "lost" };

export interface WriteAttempt {
  readonly node: NodeId;
  readonly invokedAt: number;
  completedAt: number | null;
  outcome: AttemptOutcome<WriteResult> | null;
}

export interface WriteRecord {
  readonly group: string;
  readonly client: string;
  readonly requestId: string;
  readonly op: WriteOp;
  /**
   * Sent without a client request id (the replica makes one: `fresh`), as a raw client that
   * does not retry would: the one attempt is all there is, and "unavailable" is possible.
   */
  readonly fresh: boolean;
  readonly attempts: WriteAttempt[];
}

export interface ReadRecord {
  readonly group: string;
  readonly client: string;
  readonly node: NodeId;
  readonly query: ReadQuery;
  readonly consistency: Consistency;
  readonly invokedAt: number;
  completedAt: number | null;
  outcome: AttemptOutcome<ReadResult> | null;
}

export interface History {
  /** By request id, in first-invocation order. */
  readonly writes: Map<string, WriteRecord>;
  readonly reads: ReadRecord[];
}

export function emptyHistory(): History {
  return { writes: new Map(), reads: [] };
}

/** The first attempt answered with a result, if any. */
export function firstOk(w: WriteRecord): (WriteAttempt & { outcome: { kind: "ok"; result: WriteResult } }) | null {
  for (const a of w.attempts) {
    if (a.outcome?.kind === "ok") return a as WriteAttempt & { outcome: { kind: "ok"; result: WriteResult } };
  }
  return null;
}

/** The index a write result reports, when it reports one (a failed cas reports none). */
export function resultIndex(result: WriteResult): number | null {
  if (result.type === "cas" && !result.ok) return null;
  return result.version;
}
