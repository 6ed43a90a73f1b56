// The state of one replica of one key-group: the durable slim log (what DurableMeta holds),
// the group's data as of `chosen`, and the volatile proposer, reader and catch-up state
// that a crash forgets (and the protocol tolerates forgetting).

import type { Ballot, NodeId } from "./ballot.js";
import type { GroupConfig } from "./config.js";
import type { CallId, Consistency } from "./io.js";
import type { Accept, AcceptedValue, ChosenEntry, Prepare, RequestRecord } from "./messages.js";
import type { Command, Configuration, Entry, ReadQuery, Value } from "./ops.js";

/** A client write waiting at this replica for its command to be applied. */
export interface PendingWrite {
  readonly call: CallId;
  readonly command: Command;
  readonly deadline: number;
  /** The request id was made for this call alone (Input "propose"): no attempt elsewhere can exist. */
  readonly fresh: boolean;
  /**
   * Went out in an Accept at least once: from then on it may be chosen (adopted by another
   * proposer) even if this replica gives up on it, so its outcome is unknown, never "not applied".
   */
  sent: boolean;
}

/** A linearizable read: probe a majority, wait until `chosen` reaches the target, read locally. */
export interface PendingRead {
  readonly call: CallId;
  readonly query: ReadQuery;
  readonly consistency: Consistency;
  readonly deadline: number;
  probe: number;
  /**
   * The configuration epoch the probe went to: the read answers only if the group's
   * configuration is still at it when the target is reached, else it probes again (membership.ts).
   */
  epoch: number;
  /** Replies so far: node -> (chosen, holds an accepted value above it). */
  replies: Map<NodeId, { chosen: number; accepted: boolean }>;
  /** Set once a majority replied: the index local `chosen` must reach before answering. */
  target: number | null;
  /** When the target became known (to decide when to drive an undecided instance). */
  targetAt: number;
  probeSentAt: number;
  /** Replicas not probed yet: probed once no majority answered within `probeSpareMs` (read.ts). */
  unprobed: readonly NodeId[];
}

export type ProposerPhase = "idle" | "preparing" | "accepting";

export interface Proposer {
  phase: ProposerPhase;
  /** The instance being driven (always chosen + 1 while not idle). */
  index: number;
  ballot: Ballot | null;
  /** Promises at `index` for `ballot`: node -> its accepted value there, if any. */
  promises: Map<NodeId, AcceptedValue | null>;
  /** Nodes that accepted `value` at `ballot`. */
  accepts: Set<NodeId>;
  value: Value | null;
  /** When the current phase is abandoned if it has no quorum. */
  phaseDeadline: number;
  /** No new attempt before this time (jittered backoff after a lost round). */
  backoffUntil: number;
  /** Consecutive lost rounds: grows the backoff. */
  attempts: number;
  /** Highest round seen at the open instance: the next Prepare goes above it. */
  maxRoundSeen: number;
  /** Counts values this incarnation proposed, for unique value ids. */
  valueCounter: number;
  /** Drive the open instance even with nothing queued (a read waits on it). */
  settle: boolean;
  /**
   * Peers the current Accept has not gone to yet (proposer.ts sendAccept: only as many as a
   * majority needs go first), sent at `spareAt` if no majority accepted by then.
   */
  unsent: NodeId[];
  spareAt: number;
  /** The Accept those peers are still owed. */
  pendingAccept: Accept | null;
  /**
   * The peer that accepted first in the last round that reached a majority: the first one the
   * next Accept goes to. A hint for speed, never for safety (any majority will do).
   */
  acceptPeer: NodeId | null;
}

/** Data-level catch-up in progress: chunks of a peer's data as of `at`. */
export interface SnapshotInProgress {
  readonly from: NodeId;
  readonly at: ChosenEntry;
  /** The configuration at at.index + 1, from the first chunk (undefined: the birth one). */
  readonly config: Configuration | undefined;
  readonly items: Map<string, Entry>;
  readonly requests: readonly RequestRecord[];
  /** The `next` cursor of the last chunk received: the next chunk must start after it. */
  expectAfter: string | null;
}

export interface CatchUpState {
  /** Peer asked, and when; null when not catching up. */
  asked: NodeId | null;
  askedAt: number;
  /** The highest index we know some replica has chosen: catching up stops once we reach it. */
  wanted: number;
  snapshot: SnapshotInProgress | null;
  /**
   * A node outside our configuration that told us of a later chosen index: a member of a
   * configuration we have not learned yet. The next retried catch-up asks it first (once): the
   * replicas we know may have dropped the group since (a copy from one of them cut off half-way).
   */
  ahead: NodeId | null;
  /**
   * The last Prepare or Accept that found this replica behind (it can vote only at its open
   * instance): answered once the catch-up brings the replica to that instance. Without it the
   * proposer heard nothing from this replica until its phase timed out (500 ms), which with a
   * third replica down or cut off stalled the group (issue 10). Volatile: a delayed message.
   */
  behind: { readonly from: NodeId; readonly msg: Prepare | Accept } | null;
}

/** A reconfigure call waiting for the group to reach its epoch (membership.ts). */
export interface PendingReconfig {
  readonly call: CallId;
  readonly config: Configuration;
  readonly deadline: number;
}

export interface GroupState {
  readonly config: GroupConfig;

  /**
   * The configuration of the open instance chosen+1 (membership.ts): who votes there. The
   * birth configuration (config.replicas) until a reconfiguration is chosen.
   */
  members: Configuration;
  /** `members` is not the birth configuration: it goes into the durable meta. */
  membersStored: boolean;
  /** Non-null while joining: the nodes to copy the data from; it neither votes nor proposes. */
  joining: readonly NodeId[] | null;

  // Durable (mirrors DurableMeta + the data; every change goes out in a Persist).
  chosen: ChosenEntry | null;
  promised: Ballot | null;
  accepted: AcceptedValue | null;
  readonly data: Map<string, Entry>;
  /** Remembered write results by request id, oldest first (Map keeps insertion order). */
  readonly requests: Map<string, RequestRecord>;
  requestSeq: number;

  // Volatile.
  readonly proposer: Proposer;
  /** Client writes not yet applied, in arrival order (the queue feeds the next value). */
  readonly queue: PendingWrite[];
  readonly reads: PendingRead[];
  /** Reconfigure calls not yet answered (membership.ts). */
  readonly reconfigs: PendingReconfig[];
  readonly catchUp: CatchUpState;
  /**
   * Probe numbers of this incarnation: the recovery probe is `probeBase`, reads count up from
   * it. A random base per incarnation keeps a late reply to a probe of an EARLIER incarnation
   * (delayed or duplicated by the network) from being taken for an answer to a new one: it
   * would carry an old, lower standing and let a read or a recovery aim too low (the
   * simulation found this: seed 129826).
   */
  readonly probeBase: number;
  probeCounter: number;
  /**
   * The peer whose reply completed the last read's majority: the first one the next read
   * probes. Volatile: a hint for speed, never for safety (any majority will do).
   */
  readPeer: NodeId | null;
  /** Non-null while the replica recovers a lost group (recovery.ts); it does not vote meanwhile. */
  recovering: Recovering | null;
  /** The next Persist must drop every stored record of the group first (a lost group is wiped). */
  resetPending: boolean;
  /** The next Persist must write the meta (a new joining replica's mark). */
  metaPending: boolean;
  /** xorshift32 state for jitter. */
  rng: number;
}

export interface Recovering {
  /** Standing of the other replicas (chosen index, holds an accepted value) from probe 0. */
  readonly replies: Map<NodeId, { chosen: number; accepted: boolean }>;
  /** The probe's last send; once the target is set, the last request to settle (recovery.ts). */
  probeSentAt: number;
  /** Once a majority of the OTHER replicas answered: the chosen index to reach before voting. */
  target: number | null;
  /** The bound (recovery.ts) from the first answer; null before it. */
  firstBound: number | null;
  /** The group chose instances while the majority was still missing: ask to settle (recovery.ts). */
  settle: boolean;
  /**
   * Ask to settle in any case, once the target is set (RestoreOptions.settleRecovery): for a
   * group nobody may write to finish it, such as the node's membership log.
   */
  readonly settleAlways: boolean;
  /** Requests to settle sent so far (they rotate over the replicas that answered). */
  nudges: number;
}

export function chosenIndex(state: GroupState): number {
  return state.chosen === null ? 0 : state.chosen.index;
}
