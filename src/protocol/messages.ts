// The Paxos messages replicas of one key-group exchange. Each names its group, so the
// transport can batch many groups' messages to one peer in one frame.
//
// Every message is about one instance `index` of the group's log. A replica only ever has
// one open instance, `chosen + 1`; Prepare and Accept carry the chosen entry of `index - 1`
// (`prev`) so a replica one behind learns it and opens `index` on the spot.

import type { Ballot, NodeId } from "./ballot.js";
import type { Configuration, Entry, Value } from "./ops.js";

/** A decided instance: the ballot that chose it and the value. */
export interface ChosenEntry {
  readonly index: number;
  readonly ballot: Ballot;
  readonly value: Value;
}

export interface AcceptedValue {
  readonly ballot: Ballot;
  readonly value: Value;
}

/** A remembered write result, so a retried request id is answered, not applied again. */
export interface RequestRecord {
  readonly requestId: string;
  /** Order of application inside the group; the oldest records are forgotten first. */
  readonly seq: number;
  readonly index: number;
  readonly result: import("./ops.js").WriteResult;
}

export interface Prepare {
  readonly type: "prepare";
  readonly group: string;
  readonly index: number;
  readonly ballot: Ballot;
  readonly prev: ChosenEntry | null;
}

export interface Promise_ {
  readonly type: "promise";
  readonly group: string;
  readonly index: number;
  readonly ballot: Ballot;
  /** The acceptor's accepted ballot and value at `index`, if any: the proposer must adopt the highest. */
  readonly accepted: AcceptedValue | null;
}

export interface Accept {
  readonly type: "accept";
  readonly group: string;
  readonly index: number;
  readonly ballot: Ballot;
  readonly value: Value;
  readonly prev: ChosenEntry | null;
}

export interface Accepted {
  readonly type: "accepted";
  readonly group: string;
  readonly index: number;
  readonly ballot: Ballot;
}

/**
 * An acceptor refused a Prepare or Accept. `promised` is its highest promise at `index` (a hint
 * for the next round); `chosen` is its last chosen index, so a proposer that is behind catches up.
 */
export interface Reject {
  readonly type: "reject";
  readonly group: string;
  readonly index: number;
  readonly ballot: Ballot;
  readonly promised: Ballot | null;
  readonly chosen: number;
}

/** Instance `index` is decided by `ballot`. The value travels only to replicas that lack it. */
export interface Chosen {
  readonly type: "chosen";
  readonly group: string;
  readonly index: number;
  readonly ballot: Ballot;
  readonly valueId: string;
  readonly value: Value | null;
}

/**
 * "My last chosen index is `chosen`": asks a peer for what follows. To continue a data
 * snapshot, `snapshotAt` names the index of the snapshot being copied and `after` the last key
 * received; the peer restarts the snapshot if it has moved past that index.
 */
export interface CatchUpRequest {
  readonly type: "catchupRequest";
  readonly group: string;
  readonly chosen: number;
  readonly snapshotAt: number | null;
  readonly after: string | null;
  /**
   * Data only, never a log entry: sent by a joining replica (membership.ts), which does not
   * know the group's history and can start only from a copy of its data. Absent otherwise.
   */
  readonly snapshot?: true;
}

/** The peer is exactly one ahead: here is its last chosen entry. */
export interface CatchUpEntry {
  readonly type: "catchupEntry";
  readonly group: string;
  readonly entry: ChosenEntry;
}

/**
 * One chunk of a data-level catch-up: the group's keys after `after`, as of `at.index`.
 * The first chunk (after === null) also carries the request-id records. `next` is null on the
 * last chunk; otherwise ask again with after = next.
 */
export interface CatchUpSnapshot {
  readonly type: "catchupSnapshot";
  readonly group: string;
  readonly at: ChosenEntry;
  readonly after: string | null;
  readonly items: readonly (readonly [key: string, entry: Entry])[];
  readonly requests: readonly RequestRecord[];
  readonly next: string | null;
  /**
   * The group's configuration at instance `at.index + 1` (membership.ts); absent while it is
   * the birth configuration (no reconfiguration was ever chosen).
   */
  readonly config?: Configuration;
}

/** A linearizable read asks a majority where they stand; nothing is written for it. */
export interface ReadProbe {
  readonly type: "readProbe";
  readonly group: string;
  readonly probe: number;
  /**
   * From a replica recovering the group (recovery.ts) whose target is set: it waits for
   * instance `settle` to be decided. A voter whose chosen index is below it drives its open
   * instance (with a no-op when nothing is queued), so an idle group still gets there.
   * Absent in every other probe (and ignored by a node that predates it).
   */
  readonly settle?: number;
}

export interface ReadProbeReply {
  readonly type: "readProbeReply";
  readonly group: string;
  readonly probe: number;
  readonly chosen: number;
  /** Whether this replica holds an accepted value at `chosen + 1` (possibly chosen already elsewhere). */
  readonly accepted: boolean;
}

export type PeerMessage =
  | Prepare
  | Promise_
  | Accept
  | Accepted
  | Reject
  | Chosen
  | CatchUpRequest
  | CatchUpEntry
  | CatchUpSnapshot
  | ReadProbe
  | ReadProbeReply;

export type PeerMessageType = PeerMessage["type"];

/** A message leaving a replica. */
export interface Outbound {
  readonly to: NodeId;
  readonly msg: PeerMessage;
}
