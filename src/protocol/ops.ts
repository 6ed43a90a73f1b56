// The operations a key-group's Paxos log orders, and what applying them answers.
//
// A Paxos value is an ordered batch of commands. Every replica applies the same batches in
// the same order with the same deterministic rules (apply.ts), so every replica computes the
// same data and the same results; the results are never sent, each replica derives them.

/** Keys are strings; values are bytes. A key's version is the Paxos index that last wrote it. */
export interface Entry {
  readonly value: Uint8Array;
  readonly version: number;
}

export interface PutOp {
  readonly op: "put";
  readonly key: string;
  readonly value: Uint8Array;
}

export interface DeleteOp {
  readonly op: "delete";
  readonly key: string;
}

/** Compare-and-set by version: `version` 0 means "the key must not exist". */
export interface CasOp {
  readonly op: "cas";
  readonly key: string;
  readonly version: number;
  readonly value: Uint8Array;
}

/**
 * A compare in a transaction. `version` compares the key's version (0 when absent), `value`
 * compares bytes (an absent key matches no value), `exists` compares presence.
 */
export type Compare =
  | { readonly key: string; readonly target: "version"; readonly cmp: CompareOp; readonly version: number }
  | { readonly key: string; readonly target: "value"; readonly cmp: "=" | "!="; readonly value: Uint8Array }
  | { readonly key: string; readonly target: "exists"; readonly exists: boolean };

export type CompareOp = "=" | "!=" | "<" | ">";

export type TxnWrite = PutOp | DeleteOp;

/**
 * All or nothing, inside one key-group, like an etcd Txn: if every compare holds, `success`
 * is applied, else `failure` (often empty). Both branches apply atomically at one index.
 */
export interface TxnOp {
  readonly op: "txn";
  readonly compares: readonly Compare[];
  readonly success: readonly TxnWrite[];
  readonly failure: readonly TxnWrite[];
}

export type WriteOp = PutOp | DeleteOp | CasOp | TxnOp;

/** A write as the log carries it: the client's request id makes retries idempotent. */
export interface Command {
  readonly requestId: string;
  readonly op: WriteOp;
}

/**
 * A Paxos value: an ordered batch of commands (per-group batching). `id` is unique per
 * proposal (node, incarnation, counter); an empty batch is a no-op used to settle an instance.
 */
export interface Value {
  readonly id: string;
  readonly commands: readonly Command[];
  /**
   * A reconfiguration (issue 13, membership.ts): chosen at index i, it makes `config` the
   * group's configuration from instance i+1 on, if its epoch is above the current one. Such a
   * value carries no commands. Absent on every ordinary value.
   */
  readonly config?: Configuration;
}

/**
 * A key-group's configuration: the replicas that vote at an instance (preferred first) and the
 * membership epoch it was computed at. Epochs only grow along a group's log.
 */
export interface Configuration {
  readonly epoch: number;
  readonly replicas: readonly string[];
}

/**
 * The node that proposed a value: the first segment of its id (`node/incarnation/counter`,
 * made only by the proposer's buildValue; node ids contain no "/"). Every replica derives the
 * same proposer from the same chosen value, whatever ballot each learned it under.
 */
export function valueProposer(value: Value): string {
  const slash = value.id.indexOf("/");
  return slash < 0 ? value.id : value.id.slice(0, slash);
}

/** What applying one command answered. Every replica computes exactly the same. */
export type WriteResult =
  | { readonly type: "put"; readonly version: number }
  | { readonly type: "delete"; readonly version: number; readonly existed: boolean }
  | { readonly type: "cas"; readonly ok: true; readonly version: number }
  /** cas failed: `current` is the key's version now (0: absent). Nothing was written. */
  | { readonly type: "cas"; readonly ok: false; readonly current: number }
  | {
      readonly type: "txn";
      /** Whether every compare held (the success branch ran). */
      readonly succeeded: boolean;
      readonly version: number;
      /** The version of each compared key at evaluation time, in compare order (0: absent). */
      readonly currentVersions: readonly number[];
      /** One result per write of the branch that ran, in order. */
      readonly results: readonly WriteResult[];
    };

/** Reads are not logged: they are answered from a replica's data (see read.ts). */
export type ReadQuery =
  | { readonly kind: "get"; readonly key: string }
  | {
      readonly kind: "scan";
      readonly prefix: string;
      /** Continue after this key (exclusive); the `next` of the previous page. */
      readonly after?: string;
      readonly limit: number;
    };

/** `index` is the chosen index the read observed: it saw every write up to and including it. */
export type ReadResult =
  | { readonly kind: "get"; readonly index: number; readonly entry: Entry | null }
  | {
      readonly kind: "scan";
      readonly index: number;
      readonly items: readonly { readonly key: string; readonly value: Uint8Array; readonly version: number }[];
      /** Present when more keys may follow: pass it as `after` for the next page. */
      readonly next?: string;
    };

/** Approximate payload bytes of a command (keys and values), for batch and frame budgets. */
export function commandBytes(command: Command): number {
  const op = command.op;
  let n = command.requestId.length + 8;
  switch (op.op) {
    case "put":
    case "cas":
      return n + op.key.length + op.value.length;
    case "delete":
      return n + op.key.length;
    case "txn":
      for (const c of op.compares) n += c.key.length + (c.target === "value" ? c.value.length : 8);
      for (const w of [...op.success, ...op.failure]) n += w.key.length + (w.op === "put" ? w.value.length : 0);
      return n;
  }
}

export function valueBytes(value: Value): number {
  let n = value.id.length;
  for (const c of value.commands) n += commandBytes(c);
  return n;
}
