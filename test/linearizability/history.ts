// The history of a black-box run against a real cluster, as `npm run verify` records it and
// the linearizability checker (checker.ts) reads it. One line of history.jsonl per operation.
//
// An operation is one LOGICAL client call: a write keeps its request id across retries (a
// retry after `timeout` reuses it), so its invocation is the first attempt's and its
// completion the last attempt's. Times are monotonic milliseconds (performance.now() of the
// recording process, which runs every client), so they order across clients.
//
// Outcomes, as Jepsen has them:
//   ok       the call was answered with a result (a txn whose compares failed is ok too,
//            with succeeded: false; a cas that failed its version check is ok, with ok: false);
//   fail     the call definitely had no effect: a write answered `unavailable` (docs/API.md:
//            the request id is never applied), or refused before it could be proposed
//            (bad_request, not_replica, too_large...); a read that failed is always `fail`;
//   unknown  no answer, or `timeout`: the write may or may not be applied, now or later.
// Values are unique per write (the recorder makes them so), which lets a read name the write
// it saw.

/** A compare of a txn, as the wire API has it (values as UTF-8 text). */
export type HistoryCompare =
  | { readonly key: string; readonly target: "version"; readonly cmp: "=" | "!=" | "<" | ">"; readonly version: number }
  | { readonly key: string; readonly target: "value"; readonly cmp: "=" | "!="; readonly value: string }
  | { readonly key: string; readonly target: "exists"; readonly exists: boolean };

export type HistoryTxnWrite = { readonly op: "put"; readonly key: string; readonly value: string } | { readonly op: "delete"; readonly key: string };

/** What the client asked. */
export type HistoryCall =
  | { readonly f: "get"; readonly key: string; readonly consistency: "linearizable" | "stale" }
  | { readonly f: "put"; readonly key: string; readonly value: string }
  | { readonly f: "delete"; readonly key: string }
  | { readonly f: "cas"; readonly key: string; readonly version: number; readonly value: string }
  | {
      readonly f: "txn";
      readonly compares: readonly HistoryCompare[];
      readonly success: readonly HistoryTxnWrite[];
      readonly failure: readonly HistoryTxnWrite[];
    };

/**
 * What an `ok` answer said. Versions and indexes are Paxos indexes of the group's log: they
 * grow with the log, several writes batched into one value share one index, and no-op values
 * (used to settle an instance) take an index without writing anything, so the model cannot
 * predict them, only check that they are consistent.
 */
export type HistoryResult =
  | { readonly f: "get"; readonly found: boolean; readonly value?: string; readonly version?: number; readonly index: number }
  | { readonly f: "put"; readonly version: number }
  | { readonly f: "delete"; readonly version: number; readonly existed: boolean }
  | { readonly f: "cas"; readonly ok: true; readonly version: number }
  | { readonly f: "cas"; readonly ok: false; readonly current: number }
  | {
      readonly f: "txn";
      readonly succeeded: boolean;
      readonly version: number;
      /** The version of each compared key when the txn was applied, in compare order (0: absent). */
      readonly currentVersions: readonly number[];
    };

export type HistoryOutcome = "ok" | "fail" | "unknown";

export interface HistoryOp {
  /** Unique in the history, in invocation order. */
  readonly id: number;
  /** The client process that ran it: one process has at most one operation outstanding. */
  readonly process: string;
  /** Where it was sent: a node id (its own subject `<prefix>.api.<node>`), "queue" (`<prefix>.api`), or "client" (the TypeScript client). */
  readonly via: string;
  /** The key-group; linearizability is checked per group (groups are independent). */
  readonly group: string;
  /** Writes only: the request id every attempt carried. */
  readonly requestId?: string;
  readonly call: HistoryCall;
  readonly invokedAt: number;
  /** null: never answered (the run ended first); treated as unknown. */
  readonly completedAt: number | null;
  readonly outcome: HistoryOutcome;
  /** Present exactly when outcome is "ok". */
  readonly result?: HistoryResult;
  /** For people: the error code or message of a failed or unknown call, attempts made. */
  readonly note?: string;
}
