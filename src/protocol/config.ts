// What a key-group replica needs to know that is not protocol state: who it is, who its
// fellow replicas are, and the timings and limits it runs with. Time itself is never read
// here: it comes in with every step.

import type { NodeId } from "./ballot.js";

/**
 * Deliberate protocol bugs, switched on only by the deterministic simulation to prove that
 * its checkers object (a test asserts each is caught). A real node never sets them.
 */
export type BreakName =
  /** Any node may use the fast round (skip Prepare), not only the owner of the instance. */
  | "fast-round-any-node"
  /**
   * A restarted process uses round 0 where an earlier process of its node may have sent an
   * Accept that never reached its disk (fastRound.ts: the fence is ignored).
   */
  | "fast-round-after-restart"
  /** An acceptor's Promise/Accepted leaves before its promise/accept is durable (driver-level). */
  | "reply-before-persist"
  /** A linearizable read answers from the local replica without the ReadProbe round. */
  | "read-without-probe"
  /**
   * A linearizable read sets its target from one reply fewer than a majority (self included):
   * the unsafe variant of probing only as many peers as a majority needs (read.ts).
   */
  | "read-short-quorum"
  /**
   * A proposer takes a value as chosen from one Accepted short of a majority: the unsafe
   * variant of sending the Accept only to as many peers as a majority needs (proposer.ts).
   */
  | "accept-short-quorum"
  /** A replica that lost a group votes (and answers read probes) while it recovers it. */
  | "vote-while-recovering"
  /**
   * Storage (simulation only): a record nothing waits on (a learn, releaseQueue.ts `mayWait`)
   * is written without sync instead of riding the next synced commit, so a crash can lose it
   * while the synced records after it survive (LevelDB does not sync a log it rotates away from).
   */
  | "learn-without-sync"
  /**
   * The core's wakeAt leaves out queued writes' deadlines: a group with nothing else to wait
   * for is not woken to answer them (only a message would step it). Nodes tick only at wakeAt.
   */
  | "wake-ignores-write-deadlines"
  /**
   * A replica joining a group (membership.ts) votes and proposes at once, from its own empty
   * copy, instead of waiting until it installed the group's data.
   */
  | "reconfig-joiner-votes-early";

export const BREAK_NAMES: readonly BreakName[] = [
  "fast-round-any-node",
  "fast-round-after-restart",
  "reply-before-persist",
  "read-without-probe",
  "read-short-quorum",
  "accept-short-quorum",
  "vote-while-recovering",
  "learn-without-sync",
  "wake-ignores-write-deadlines",
  "reconfig-joiner-votes-early",
];

export interface Timing {
  /** A Prepare or Accept round that has no quorum by then is abandoned and retried. */
  readonly phaseTimeoutMs: number;
  /** Retry backoff after a lost round: jittered in [base, 2*base) doubling up to max. */
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  /**
   * After promising another proposer's higher ballot, our proposer stands back about this long
   * (jittered, and never longer than a phase timeout) before it may prepare again: longer than
   * the other's next round trip (its Accept and Chosen), so a live one finishes undisturbed;
   * short, because the other may have died right after its Prepare, and every write and read
   * of the group would wait out the whole stand-back.
   */
  readonly yieldMs: number;
  /** A read waiting on an accepted-but-undecided instance drives it after this long. */
  readonly readResolveMs: number;
  /** A catch-up whose copy stopped coming is asked again (of another peer) after this long. */
  readonly catchUpRetryMs: number;
  /**
   * A catch-up request that got nothing yet is asked of the next peer after this long (at
   * most catchUpRetryMs): the peer asked first may be the one that just died or was cut off
   * (it sent the message that showed us behind), and a live one answers within a round trip.
   */
  readonly catchUpSpareMs: number;
  /** ReadProbes with no majority are sent again after this long. */
  readonly probeRetryMs: number;
  /**
   * A linearizable read probes only as many peers as a majority needs (read.ts); the other
   * replicas are probed too when no majority answered within this long. 0: probe every
   * replica at once.
   */
  readonly probeSpareMs: number;
  /**
   * An Accept goes first only to as many peers as a majority needs (proposer.ts); the other
   * replicas get it when no majority accepted within this long (at most half a phase timeout).
   * 0: every replica at once.
   */
  readonly acceptSpareMs: number;
}

export interface Limits {
  /** Commands per Paxos value (per-group batching); the rest wait for the next instance. */
  readonly maxBatchCommands: number;
  /** Approximate bytes of keys and values per Paxos value; a value always takes one command. */
  readonly maxBatchBytes: number;
  /**
   * Prepare/Accept carry the previous chosen entry (so a replica one behind learns it on the
   * spot) only up to this size; a larger one would crowd the frame, and catch-up fetches it.
   */
  readonly prevInlineBytes: number;
  /** Approximate bytes of keys and values per data catch-up chunk. */
  readonly snapshotChunkBytes: number;
  /** Request ids remembered per group for dedupe; the oldest are forgotten first. */
  readonly requestMemory: number;
}

export interface GroupConfig {
  readonly group: string;
  readonly self: NodeId;
  /**
   * The group's BIRTH configuration: the replicas of instance 1 (3 or 5 in practice), in an
   * order every replica shares; the first one owns the fast round of instance 1 (fastRound.ts).
   * Later instances use the configuration the group's log chose (membership.ts), which a
   * replica keeps in its durable meta.
   */
  readonly replicas: readonly NodeId[];
  /** The membership epoch of the birth configuration (0 when absent). */
  readonly epoch?: number;
  /**
   * Unique per process start: keeps value ids unique across restarts. Also per replica within
   * a process: a node that drops a group and later joins it again needs a new one (membership.ts).
   */
  readonly incarnation: string;
  /**
   * Absent in the first process ever to run on this node's data directory. In every later one
   * (a restart, after a crash or not): the start of every value id this process makes
   * (`self/incarnation...`). Round 0 at instance i is then used only when the value chosen at
   * i-1 carries it (fastRound.ts: an earlier process may have sent an unpersisted Accept).
   */
  readonly fastRoundFence?: string;
  /** Seeds the jitter of retries, so a run is replayable. */
  readonly seed: number;
  readonly timing: Timing;
  readonly limits: Limits;
  readonly breaks?: ReadonlySet<BreakName>;
}

export const DEFAULT_TIMING: Timing = {
  phaseTimeoutMs: 500,
  backoffBaseMs: 5,
  backoffMaxMs: 1000,
  yieldMs: 100,
  readResolveMs: 50,
  catchUpRetryMs: 500,
  catchUpSpareMs: 50,
  probeRetryMs: 250,
  probeSpareMs: 20,
  acceptSpareMs: 20,
};

export const DEFAULT_LIMITS: Limits = {
  maxBatchCommands: 256,
  maxBatchBytes: 256 * 1024,
  prevInlineBytes: 64 * 1024,
  snapshotChunkBytes: 192 * 1024,
  requestMemory: 1024,
};
