// Collects what one step must do: durable changes (turned into one Persist record), messages
// to peers, answers to clients. Messages a replica sends to itself (its proposer talking to
// its own acceptor) are handled inside the same step through `inbox`, never sent, EXCEPT its
// acceptor's votes (Promise, Accepted) to its own proposer: those go out in `send` addressed to
// self and come back as a message once the step's persist is durable, exactly like a peer's
// vote. So the proposer never counts a vote of its own that a crash could forget, and its
// proposals (Accept, Chosen) may leave before its own persist (`sendNow`, DESIGN.md "The
// proposer's Accept does not wait for its own accept").

import type { NodeId } from "./ballot.js";
import type { Persist } from "./durable.js";
import type { Answer, ErrorCode, CallId } from "./io.js";
import type { Accept, Outbound, PeerMessage, RequestRecord } from "./messages.js";
import type { Configuration, Entry, ReadResult, WriteResult } from "./ops.js";
import type { DurableMeta } from "./durable.js";
import type { GroupState } from "./state.js";

export class Effects {
  metaChanged = false;
  reset = false;
  readonly keys = new Map<string, Entry | null>();
  /**
   * Request-id records added and ids forgotten this step, kept DISJOINT so the Persist says
   * what the disk must end up holding whatever order an engine writes them in: an id evicted
   * and applied again within one step (a retry past the memory window) is an add, not both
   * (the simulation's late retries found the old "adds then forgets" losing it on disk).
   */
  readonly requests = new Map<string, RequestRecord>();
  readonly forgetRequests = new Set<string>();
  readonly send: Outbound[] = [];
  /** Proposals and facts that depend on nothing this step persists (see Ready.sendNow). */
  readonly sendNow: Outbound[] = [];
  readonly answers: Answer[] = [];
  /** Answers that depend on nothing this step persists (see Ready.answersNow). */
  readonly answersNow: Answer[] = [];
  /**
   * Set while learning a value whose quorum a PEER's Accepted completed: every vote counted
   * is durable by then, so the answers it produces may leave before this step's persist.
   */
  chosenByDurableVotes = false;
  readonly inbox: { from: NodeId; msg: PeerMessage }[] = [];
  /** The Accept this step proposed (`propose`), not a spare peer's late copy (see Ready.proposed). */
  proposed: Accept | null = null;

  constructor(private readonly self: NodeId) {}

  /**
   * To one replica; to self means the local inbox, but a vote to self (Promise, Accepted) is
   * sent like a peer's: it is counted only once the persist that made it is durable.
   */
  sendTo(to: NodeId, msg: PeerMessage): void {
    if (to === this.self && msg.type !== "promise" && msg.type !== "accepted") this.inbox.push({ from: this.self, msg });
    else this.send.push({ to, msg });
  }

  /**
   * A proposal (Accept) to every replica: our own acceptor takes it in this step (inbox); the
   * peers get it at once, before this step's persist (its safety: fastRound.ts, proposer.ts).
   */
  propose(replicas: readonly NodeId[], msg: Accept): void {
    this.proposed = msg;
    for (const to of replicas) {
      if (to === this.self) this.inbox.push({ from: this.self, msg });
      else this.sendNow.push({ to, msg });
    }
  }

  /** A proposal (Accept) to peers only, at once, like `propose` (the spare peers of proposer.ts). */
  proposeTo(peers: readonly NodeId[], msg: PeerMessage): void {
    for (const to of peers) {
      if (to === this.self) throw new Error("effects: proposeTo self");
      this.sendNow.push({ to, msg });
    }
  }

  /** A fact every counted vote of which is durable (a Chosen): to one peer, at once. */
  tellNow(to: NodeId, msg: PeerMessage): void {
    if (to === this.self) throw new Error("effects: tellNow to self");
    this.sendNow.push({ to, msg });
  }

  /** To every replica of the group, self included. */
  broadcast(replicas: readonly NodeId[], msg: PeerMessage): void {
    for (const to of replicas) this.sendTo(to, msg);
  }

  /** To every replica but self. */
  sendToPeers(replicas: readonly NodeId[], msg: PeerMessage): void {
    for (const to of replicas) if (to !== this.self) this.send.push({ to, msg });
  }

  rememberRequest(record: RequestRecord): void {
    this.forgetRequests.delete(record.requestId);
    this.requests.delete(record.requestId);
    this.requests.set(record.requestId, record);
  }

  /** Forgets an id; the disk may hold an older record of it even if it was added this step. */
  forgetRequest(requestId: string): void {
    this.requests.delete(requestId);
    this.forgetRequests.add(requestId);
  }

  /** Every record is replaced (a data catch-up installs a peer's records after a reset). */
  replaceRequests(records: readonly RequestRecord[]): void {
    this.requests.clear();
    this.forgetRequests.clear();
    for (const r of records) this.requests.set(r.requestId, r);
  }

  keyChanged = (key: string, entry: Entry | null): void => {
    // Map.delete + set keeps the persist order equal to the order of change.
    this.keys.delete(key);
    this.keys.set(key, entry);
  };

  answerWrite(call: CallId, result: WriteResult): void {
    (this.chosenByDurableVotes ? this.answersNow : this.answers).push({ call, outcome: { kind: "write", result } });
  }

  answerRead(call: CallId, result: ReadResult): void {
    this.answers.push({ call, outcome: { kind: "read", result } });
  }

  answerError(call: CallId, code: ErrorCode, message: string, config?: Configuration): void {
    this.answers.push({ call, outcome: config === undefined ? { kind: "error", code, message } : { kind: "error", code, message, config } });
  }

  answerReconfigured(call: CallId, config: Configuration, index: number): void {
    this.answers.push({ call, outcome: { kind: "reconfigured", config, index } });
  }

  persist(state: GroupState): Persist | null {
    const dirty =
      this.metaChanged || this.reset || this.keys.size > 0 || this.requests.size > 0 || this.forgetRequests.size > 0;
    if (!dirty) return null;
    return {
      group: state.config.group,
      meta: durableMeta(state),
      reset: this.reset,
      keys: [...this.keys],
      requests: [...this.requests.values()],
      forgetRequests: [...this.forgetRequests],
    };
  }
}

/** The meta record of `state`; the membership fields only when they are not the defaults. */
export function durableMeta(state: GroupState): DurableMeta {
  const meta: { -readonly [K in keyof DurableMeta]: DurableMeta[K] } = { chosen: state.chosen, promised: state.promised, accepted: state.accepted };
  if (state.recovering !== null) meta.recovering = true;
  if (state.membersStored) meta.config = state.members;
  if (state.joining !== null) meta.joining = state.joining;
  return meta;
}
