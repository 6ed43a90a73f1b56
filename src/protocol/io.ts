// What goes into one step of a key-group replica and what comes out (the Ready, after
// etcd-raft): the caller persists `persist` with fsync, and only then releases `send` and
// `answers`. That order is what makes a promise or accept durable before it is revealed.
//
// Release IN ORDER per replica of a group: a Ready's sends and answers wait until the persists
// of this step AND of every earlier step of the same replica are durable (a step with no
// persist may repeat a Promise/Accepted whose persist is still on its way to disk).

import type { NodeId } from "./ballot.js";
import type { Accept, Outbound, PeerMessage } from "./messages.js";
import type { Persist } from "./durable.js";
import type { Command, Configuration, ReadQuery, ReadResult, WriteResult } from "./ops.js";

/** The caller's handle for one client call; the core echoes it in the answer. */
export type CallId = number;

export type Consistency = "linearizable" | "stale";

export type Input =
  /** A peer's message for this group. */
  | { readonly type: "message"; readonly from: NodeId; readonly msg: PeerMessage }
  /**
   * A client write. Answered once applied, or with an error at `deadline` (ms, caller's clock).
   * `fresh`: the request id was made for this very call by the node that took it (the client
   * sent none), so no other attempt with it exists anywhere: only then can the core know that a
   * write it never proposed is never applied, and answer `unavailable` (see ErrorCode).
   */
  | { readonly type: "propose"; readonly call: CallId; readonly command: Command; readonly deadline: number; readonly fresh?: boolean }
  /** A client read. */
  | {
      readonly type: "read";
      readonly call: CallId;
      readonly query: ReadQuery;
      readonly consistency: Consistency;
      readonly deadline: number;
    }
  /**
   * Move the group to `config` (membership.ts): proposed as a value of its own, chosen by the
   * current configuration. Answered `reconfigured` with the group's configuration once it is at
   * `config.epoch` or later (at once when it already is), or with an error. Idempotent by epoch.
   * Every node of `config` not in the current configuration must hold the group marked joining
   * (durably) before this is submitted.
   */
  | { readonly type: "reconfigure"; readonly call: CallId; readonly config: Configuration; readonly deadline: number }
  /** Time passed: retries, timeouts and deadlines are handled on ticks. */
  | { readonly type: "tick" };

export type ErrorCode =
  /**
   * A promise about the REQUEST ID, not just this attempt: it was not applied and never will be.
   * So it is answered only where that is provable: a write whose id is `fresh` (no other
   * attempt can exist) and that never entered a proposal. Reads use it for "no majority".
   */
  | "unavailable"
  /** The outcome is unknown: the write may or may not be applied (a retry with the same request id tells). */
  | "timeout"
  /**
   * This replica no longer holds the group (it was removed from its configuration) or does not
   * hold it yet (joining): `config` names where it lives. For a write the outcome is unknown
   * (it may have gone out before the move): retry with the same request id at those replicas.
   */
  | "moved";

export type Outcome =
  | { readonly kind: "write"; readonly result: WriteResult }
  | { readonly kind: "read"; readonly result: ReadResult }
  | { readonly kind: "error"; readonly code: ErrorCode; readonly message: string; readonly config?: Configuration }
  /** A reconfigure call: the group's configuration now, and the index it was chosen at (0: birth). */
  | { readonly kind: "reconfigured"; readonly config: Configuration; readonly index: number };

export interface Answer {
  readonly call: CallId;
  readonly outcome: Outcome;
}

export interface Ready {
  /** Must be durable (fsync) before any of `send` or `answers` is released. Null: nothing to persist. */
  readonly persist: Persist | null;
  readonly send: readonly Outbound[];
  /**
   * Messages that may leave at once, before `persist` and before earlier persists: a
   * proposer's Accept (a proposal reveals no vote; the proposer's own vote is counted only once
   * durable, and a restarted proposer never reuses round 0 where its Accept may have gone out
   * unpersisted: fastRound.ts) and the Chosen of a value whose counted votes are all durable.
   * Never to self. Saves a write one fsync: the peers write their accepts while we write ours.
   */
  readonly sendNow: readonly Outbound[];
  readonly answers: readonly Answer[];
  /**
   * Write answers that may be released at once, before `persist` and before earlier persists:
   * their values are chosen by votes that are all durable already (a peer's Accepted completed
   * the quorum, and our own accept was durable before our Accept left). Learning them locally
   * is in `persist`, but a crash before it loses nothing: the instance is still open with the
   * accepted value, and Paxos decides it the same way again. Saves a write one fsync.
   */
  readonly answersNow: readonly Answer[];
  /**
   * The Accept of a proposal this step made (also in `sendNow` unless we are the only replica),
   * or null. Not set by the late copy a spare peer gets (proposer.ts sendSpareAccepts): metrics
   * count proposals, not messages.
   */
  readonly proposed: Accept | null;
  /** When the core next needs a tick (caller's clock), or null when it waits for nothing. */
  readonly wakeAt: number | null;
}
