// The client API on NATS: `<prefix>.api` (queue group: any node answers) and
// `<prefix>.api.<node>` (this node). Each request is decoded and validated (a bad one is
// answered with a typed error, never a crash), then handed to its key-group actor with a call
// id from our own counter (never nact's query, whose random ids collide under load); the
// answer goes back in the request's encoding.
//
// A request for a group this node holds no replica of (clusters larger than the replication
// factor) is forwarded to the group's preferred replica when it came through the queue
// subject, and refused with `not_replica` when it was addressed to this node.
//
// A write that came through the queue subject, or through this node's own subject without the
// `PaxosStore-Direct` header (issue 11: clients writing one hot group through every node's own
// subject made the replicas duel for each instance), is relayed to the first replica, in the group's
// preference order, that is alive (transport.ts: heard from lately and not seen down), so that
// every node sends a group's writes to ONE proposer, which keeps its fast round and duels with
// no one, also while the preferred replica is dead. The relay is hedged: when the target
// answers "no responders" (it died) the next replica is tried at once, and when it stays silent
// (paused, cut off) for `hedgeAfterMs`, a second copy goes to the next replica (often this
// node). Both copies carry the same request id, so the write is applied at most once
// (learner.ts dedupes at apply time, on every replica alike); the first decided answer is the
// client's. `unavailable` is answered only when every copy provably never entered a proposal.

import { headers as natsHeaders, RequestError, type Msg, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import type { NodeId } from "../protocol/ballot.js";
import { answerRead, answerWrite, errorResponse, type ApiResponse, type StatusResult, type ValidRequest, type ValueEncoding } from "../protocol/api.js";
import { CONTENT_TYPE_HEADER, DIRECT_HEADER, DIRECT_HEDGE, TIMEOUT_HEADER, contentTypeOf, decodeBody, encodeResponse, encodingFromContentType, readRequest, type Encoding } from "../protocol/codec.js";
import { BadRequestError, InternalError, NotReplicaError, PaxosStoreError, TimeoutError, UnavailableError, type WireErrorCode } from "../protocol/errors.js";
import type { CallId, Outcome } from "../protocol/io.js";
import { DEFAULT_WIRE_LIMITS, type WireLimits } from "../protocol/limits.js";
import type { WriteOp } from "../protocol/ops.js";
import type { Subjects } from "../protocol/subjects.js";
import type { GroupMsg } from "./keyGroup.js";
import { MEMBERS_GROUP } from "./membersView.js";
import { relayOrder } from "./relayOrder.js";
import { replySubjectProblem } from "./replySubject.js";

export { TIMEOUT_HEADER };

/**
 * A peer heard from within this long is up, if perhaps slow: every live peer sends a frame at
 * least every 50 ms (heartbeats on an idle link).
 */
const HEARD_JUST_NOW_MS = 75;

/**
 * Carries the request id a relaying node made for a write whose client gave none, so that
 * every copy of a hedged relay is the same request (the body's `requestId` wins).
 */
export const REQUEST_ID_HEADER = "PaxosStore-Request-Id";
/** Set on a request one node forwarded to another for a group it cannot serve yet (never forwarded again). */
const FORWARDED_HEADER = "PaxosStore-Forwarded";

/** Answers of a relayed copy that say "not decided there": the other copies may still decide. */
export const UNDECIDED_CODES: ReadonlySet<WireErrorCode> = new Set<WireErrorCode>(["unavailable", "timeout", "not_replica"]);

interface PendingCall {
  readonly msg: Msg;
  readonly encoding: Encoding;
  readonly valueEncoding: ValueEncoding;
  readonly op: WriteOp | null;
  /** Answer "timeout" ourselves if the group never does (it crashed, say). */
  readonly giveUpAt: number;
  /** The relayed write this local copy belongs to: its answer goes there, not to the client. */
  readonly relay: Relay | null;
  /** For metrics: get|get_stale|scan|put|delete|cas|txn, and when the request arrived. */
  readonly opName: string;
  readonly startedAt: number;
  readonly group: string;
  /** Came through the queue subject (a group not held here is forwarded, not refused). */
  readonly viaQueue: boolean;
  /** The request, to follow a `moved` answer to the group's new replicas. */
  readonly request: Exclude<ValidRequest, { kind: "status" }>;
  readonly requestId: string | null;
}

/** A write relayed (and perhaps hedged): copies out, and what their answers proved. */
interface Relay {
  readonly msg: Msg;
  readonly encoding: Encoding;
  readonly request: Extract<ValidRequest, { kind: "write" }>;
  readonly requestId: string;
  /** Replicas not tried yet, in preference order. */
  readonly untried: NodeId[];
  /** Replicas a copy went to. */
  readonly tried: Set<NodeId>;
  outstanding: number;
  /** Some copy may have entered a proposal with no answer telling its fate. */
  unknown: boolean;
  done: boolean;
}

export interface ApiHandlerOptions {
  readonly nc: NatsConnection;
  readonly subjects: Subjects;
  readonly self: NodeId;
  readonly incarnation: string;
  readonly limits: WireLimits;
  readonly requestTimeoutMs: number;
  /**
   * The nodes to try for a group, preferred first (during a membership change: the old
   * placement, then the new one; membersView.ts `route`).
   */
  replicasFor(group: string): readonly NodeId[];
  /** A request reached a group held here (the mover moves it first if a change is under way). */
  touched?(group: string): void;
  /**
   * May this request write the group? Client writes to the membership log `__members` are
   * refused; the members admin op writes it with its header.
   */
  writeAllowed?(group: string, msg: Msg): boolean;
  /** Heard from recently (peer frames or heartbeats) and not seen down since. */
  peerAlive(node: NodeId): boolean;
  /** The node that may use the fast round at the group's next instance, if the group is loaded here. */
  fastRoundOwner?(group: string): NodeId | null;
  /** This node has been up long enough for its peers to trust it (default: always). */
  selfSettled?(): boolean;
  /**
   * This node has just come back from a cut or a pause of a second or more (transport.ts
   * returningFromCut): the requests arriving now are mostly NATS's backlog (default: never).
   */
  returningFromCut?(): boolean;
  /** When a frame from the peer last arrived (Date.now() ms; 0: never). */
  lastHeard(node: NodeId): number;
  /** NATS said nobody serves the peer's api subject: it is down. */
  markDown(node: NodeId): void;
  /** A relayed write whose target stayed silent this long is hedged (default 100). */
  readonly hedgeAfterMs?: number;
  dispatch(group: string, msg: GroupMsg): void;
  status(): StatusResult;
  now(): number;
  /** Metrics: a call answered (outcome `ok` or an error code), `seconds` after it arrived. */
  onAnswered?(op: string, outcome: string, seconds: number): void;
  /** Reply subjects this node answers on (replySubject.ts); default `_INBOX`. */
  readonly replyPrefixes?: readonly string[];
  /** A request was dropped because of its reply subject (log it, rate-limited). */
  onBadReply?(reply: string, problem: string): void;
}

export class ApiHandler {
  private readonly pending = new Map<CallId, PendingCall>();
  private nextCall = 0;
  private nextRequestId = 0;
  private subs: Subscription[] = [];
  private sweeper: NodeJS.Timeout | null = null;
  private accepting = false;
  readonly stats = { requests: 0, badRequests: 0, forwarded: 0, relayed: 0, hedged: 0, badReplySubjects: 0, refusedBacklog: 0 };

  constructor(private readonly opts: ApiHandlerOptions) {}

  start(): void {
    const { nc, subjects, self } = this.opts;
    this.accepting = true;
    this.subs.push(nc.subscribe(subjects.api, { queue: subjects.apiQueue, callback: (err, msg) => { if (err === null) this.onRequest(msg, true); } }));
    this.subs.push(nc.subscribe(subjects.apiNode(self), { callback: (err, msg) => { if (err === null) this.onRequest(msg, false); } }));
    this.sweeper = setInterval(() => this.sweep(), 250);
  }

  /** Stops taking requests; calls in flight still get their answers. */
  async stopAccepting(): Promise<void> {
    // Drain: the server stops routing requests here, and the ones it already sent are still
    // handled (and answered) until the drain completes. Refusing them during the drain would
    // drop them silently: their clients would wait for a timeout instead of an answer.
    await Promise.all(this.subs.map((s) => s.drain().catch(() => undefined)));
    this.subs = [];
    this.accepting = false;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  close(): void {
    if (this.sweeper !== null) clearInterval(this.sweeper);
    this.sweeper = null;
  }

  private onRequest(msg: Msg, viaQueue: boolean): void {
    if (!this.accepting) return;
    this.stats.requests++;
    if (!this.replyAllowed(msg)) return;
    const enc = encodingFromContentType(msg.headers?.get(CONTENT_TYPE_HEADER));
    if (!enc.ok) return this.reply(msg, "json", errorResponse(enc.error));
    const encoding = enc.encoding;
    const validated = readRequest(msg.data, encoding, this.opts.limits);
    if (!validated.ok) {
      this.stats.badRequests++;
      return this.reply(msg, encoding, errorResponse(validated.error));
    }
    const request = validated.request;
    if (request.kind === "status") return this.reply(msg, encoding, { ok: true, ...this.opts.status() });
    if (request.kind === "write" && this.opts.writeAllowed !== undefined && !this.opts.writeAllowed(request.group, msg)) {
      return this.reply(msg, encoding, errorResponse(new BadRequestError("group", "the membership log is written only by the members op (paxosstore members)")));
    }
    // Just back from a cut or a pause: a burst of queue requests NATS held for this node meanwhile
    // arrives now (250-330 in the failover bench), their clients long gone to other nodes.
    // Forwarded or relayed, they flooded the live nodes for 100-300 ms after every heal; each is
    // answered at once instead, as a node that cannot serve it yet, and its client (if it still
    // waits) tries again. A stale read is served here as always: it costs nothing elsewhere.
    if (viaQueue && !(request.kind === "read" && request.consistency === "stale") && this.opts.returningFromCut?.() === true) {
      this.stats.refusedBacklog++;
      return this.reply(msg, encoding, errorResponse(notReachableHere(request, "this node has just come back from a network cut or a pause and cannot serve this yet")));
    }
    const replicas = this.opts.replicasFor(request.group);
    if (!replicas.includes(this.opts.self)) {
      if (viaQueue && replicas.length > 0) {
        return this.forward(msg, replicas, encoding, () => this.reply(msg, encoding, errorResponse(noReplicaReachable(request))));
      }
      return this.reply(msg, encoding, errorResponse(new NotReplicaError(request.group, replicas)));
    }
    // A write goes to ONE proposer per group, the same from every node: there it takes the
    // one-round-trip fast path, instead of this node dueling with it for the group's next
    // instance (a hot group written through random nodes, or every node's own subject, would
    // otherwise spend its time in Prepare rounds and backoff). The order (relayOrder.ts): the
    // group's live fast-round owner, else the first live replica in preference order; a node
    // that has just started or come back from a cut is behind and goes last. Not when the
    // sender asked for this node (PaxosStore-Direct): a client that routes by itself, or a copy
    // another node relayed here. A client's HEDGED copy (Direct: hedge) is relayed only to a
    // replica heard from just now (merely slow: its frames keep coming, and a second proposer
    // would duel with it), and proposed here when the others are silent (paused, cut off).
    const direct = msg.headers?.get(DIRECT_HEADER);
    const hedged = direct === DIRECT_HEDGE;
    if (request.kind === "write" && (viaQueue || !direct || hedged)) {
      let live = relayOrder({
        replicas,
        self: this.opts.self,
        selfSettled: this.opts.selfSettled?.() ?? true,
        peerAlive: (r) => this.opts.peerAlive(r),
        owner: this.opts.fastRoundOwner?.(request.group) ?? null,
      });
      if (hedged && !viaQueue) {
        const now = Date.now();
        live = live.filter((r) => r === this.opts.self || now - this.opts.lastHeard(r) <= HEARD_JUST_NOW_MS);
      }
      if (live.length > 0 && live[0] !== this.opts.self) return this.relay(msg, encoding, request, live);
    }
    // A read that reached a node that has just started (or come back from a cut) through the
    // queue subject goes to a live peer replica: this node is behind and cold (it would load
    // the group, probe, catch up first), and a linearizable read is served alike anywhere.
    if (viaQueue && request.kind === "read" && !(this.opts.selfSettled?.() ?? true)) {
      const peers = replicas.filter((r) => r !== this.opts.self && this.opts.peerAlive(r));
      if (peers.length > 0) return this.forward(msg, peers, encoding, () => this.dispatch(msg, encoding, request, null, viaQueue));
    }
    this.dispatch(msg, encoding, request, null, viaQueue);
  }

  /** Dropped, unanswered and unexecuted: a request whose answer would go where no client may listen. */
  private replyAllowed(msg: Msg): boolean {
    if (!msg.reply) return true; // nothing is published back
    const problem = replySubjectProblem(msg.reply, this.opts.subjects.prefix, this.opts.replyPrefixes);
    if (problem === null) return true;
    this.stats.badReplySubjects++;
    this.opts.onBadReply?.(msg.reply, problem);
    return false;
  }

  private dispatch(msg: Msg, encoding: Encoding, request: Exclude<ValidRequest, { kind: "status" }>, relay: Relay | null = null, viaQueue = false): void {
    const now = this.opts.now();
    const timeoutMs = this.timeoutOf(msg);
    const call = ++this.nextCall;
    const deadline = now + timeoutMs;
    this.opts.touched?.(request.group);
    if (request.kind === "write") {
      // An id we make is fresh: no other attempt can carry it, which is what lets the core
      // answer `unavailable` (never applied) for a write it never proposed. A relayed write's
      // id is never fresh here: another copy of it may be out (relay, or the header's sender).
      const { requestId, fresh } = relay !== null ? { requestId: relay.requestId, fresh: false } : this.requestIdOf(msg, request);
      this.pending.set(call, { msg, encoding, valueEncoding: "auto", op: request.op, giveUpAt: deadline + 1000, relay, opName: request.op.op, startedAt: now, group: request.group, viaQueue, request, requestId });
      this.opts.dispatch(request.group, { type: "propose", call, command: { requestId, op: request.op }, deadline, fresh });
    } else {
      const opName = request.query.kind === "get" && request.consistency === "stale" ? "get_stale" : request.query.kind;
      this.pending.set(call, { msg, encoding, valueEncoding: request.valueEncoding, op: null, giveUpAt: deadline + 1000, relay: null, opName, startedAt: now, group: request.group, viaQueue, request, requestId: null });
      this.opts.dispatch(request.group, { type: "read", call, query: request.query, consistency: request.consistency, deadline });
    }
  }

  /** The client's request id, else one a relaying node made (header), else a fresh one. */
  private requestIdOf(msg: Msg, request: Extract<ValidRequest, { kind: "write" }>): { requestId: string; fresh: boolean } {
    if (request.requestId !== null) return { requestId: request.requestId, fresh: false };
    const relayed = msg.headers?.get(REQUEST_ID_HEADER);
    if (relayed && relayed.length <= this.opts.limits.requestIdBytesMax) return { requestId: relayed, fresh: false };
    return { requestId: `${this.opts.self}.${this.opts.incarnation}.${++this.nextRequestId}`, fresh: true };
  }

  // ---- Relayed writes -------------------------------------------------------------------------

  /** Relays a write to the first of `live` (alive replicas, preference order), hedged. */
  private relay(msg: Msg, encoding: Encoding, request: Extract<ValidRequest, { kind: "write" }>, live: readonly NodeId[]): void {
    this.stats.relayed++;
    const r: Relay = { msg, encoding, request, requestId: this.requestIdOf(msg, request).requestId, untried: [...live], tried: new Set(), outstanding: 0, unknown: false, done: false };
    // This node is a replica even when it seems the only live one: it goes last, never unused.
    if (!r.untried.includes(this.opts.self)) r.untried.push(this.opts.self);
    this.sendCopy(r);
  }

  /** Sends the next copy of `r` to its next untried replica; settles when none is left. */
  private sendCopy(r: Relay): void {
    const to = r.untried.shift();
    if (to === undefined) return this.settle(r);
    r.tried.add(to);
    r.outstanding++;
    if (to === this.opts.self) return this.dispatch(r.msg, r.encoding, r.request, r);
    const h = natsHeaders();
    for (const [k, v] of r.msg.headers ?? []) for (const x of v) h.append(k, x);
    h.set(REQUEST_ID_HEADER, r.requestId);
    h.set(DIRECT_HEADER, "1"); // proposed there, never relayed on (no relay loops)
    const sentAt = Date.now();
    const hedgeAfterMs = this.opts.hedgeAfterMs ?? 100;
    // Hedge when the target stays silent: a live target, even a busy one, sends us Paxos
    // frames or heartbeats all the time; a paused or cut-off one sends nothing.
    const hedge = setInterval(() => {
      if (r.done || r.untried.length === 0) return clearInterval(hedge);
      if (Date.now() - Math.max(sentAt, this.opts.lastHeard(to)) < hedgeAfterMs) return;
      clearInterval(hedge);
      this.stats.hedged++;
      this.sendCopy(r);
    }, Math.max(10, hedgeAfterMs / 2));
    this.opts.nc
      .request(this.opts.subjects.apiNode(to), r.msg.data, { timeout: this.timeoutOf(r.msg) + 500, headers: h })
      .then((answer) => {
        clearInterval(hedge);
        r.outstanding--;
        const code = errorCodeOf(answer.data, r.encoding);
        if (code === null || !UNDECIDED_CODES.has(code)) {
          // Decided (ok, or an error that is the write's own: conflict, bad_request, ...).
          if (r.done) return;
          r.done = true;
          try {
            r.msg.respond(answer.data, { headers: answer.headers });
          } catch {
            // The connection is closing.
          }
          return;
        }
        if (code !== "unavailable" && code !== "not_replica") r.unknown = true;
        if (code === "not_replica") this.followMoved(r, answer.data);
        this.copyFailed(r);
      })
      .catch((err: unknown) => {
        clearInterval(hedge);
        r.outstanding--;
        if (err instanceof RequestError && err.isNoResponders()) {
          // Nobody received it: not applied there, and the target is down.
          this.opts.markDown(to);
          if (r.untried.length > 0 && !r.done) return this.sendCopy(r);
        } else {
          r.unknown = true;
        }
        this.copyFailed(r);
      });
  }

  /**
   * A copy answered not_replica: the replicas it names are tried too (a group that moved in a
   * membership change). `details.moved`: the write may have gone out before the move there.
   */
  private followMoved(r: Relay, data: Uint8Array): void {
    const details = errorDetailsOf(data, r.encoding);
    if (details?.moved === true) r.unknown = true;
    const replicas = details?.replicas;
    if (!Array.isArray(replicas)) return;
    for (const n of replicas) if (typeof n === "string" && !r.untried.includes(n) && !r.tried.has(n)) r.untried.push(n);
  }

  /** One copy ended without a decided answer: the client gets one when none is left. */
  private copyFailed(r: Relay): void {
    if (r.done || r.outstanding > 0) return;
    if (r.untried.length > 0) return this.sendCopy(r);
    this.settle(r);
  }

  private settle(r: Relay): void {
    if (r.done) return;
    r.done = true;
    // `unavailable` promises "never applied": only when no copy's outcome is unknown, and the
    // id is not the client's own (an earlier attempt of the client may carry it: issue 8).
    const error =
      r.unknown || r.request.requestId !== null
        ? new TimeoutError("no replica answered the relayed write in time; the outcome is unknown (retry with the same requestId)", { group: r.request.group, requestId: r.requestId })
        : new UnavailableError("no replica of the group could take the write; the write was not applied", { group: r.request.group });
    this.reply(r.msg, r.encoding, errorResponse(error));
  }

  /** The local copy of a relayed write ended. */
  private localCopyAnswered(r: Relay, p: PendingCall, outcome: Outcome): void {
    r.outstanding--;
    if (outcome.kind !== "error") {
      if (r.done) return;
      r.done = true;
      this.reply(p.msg, p.encoding, this.toResponse(p, outcome), p.valueEncoding);
      return;
    }
    if (outcome.code !== "unavailable" && !(outcome.code === "moved" && outcome.config === undefined)) r.unknown = true;
    if (outcome.code === "moved" && outcome.config !== undefined) {
      for (const n of outcome.config.replicas) if (!r.untried.includes(n) && !r.tried.has(n)) r.untried.push(n);
    }
    this.copyFailed(r);
  }

  /**
   * The group's actor found no copy here and may not create one (membership change): the
   * request was not applied here; the client (or the relay) tries the group's other replicas.
   */
  notHeld(call: CallId, group: string): void {
    const p = this.pending.get(call);
    if (p === undefined) return;
    const replicas = this.opts.replicasFor(group).filter((n) => n !== this.opts.self);
    if (p.relay !== null) {
      this.pending.delete(call);
      p.relay.outstanding--;
      for (const n of replicas) if (!p.relay.untried.includes(n) && !p.relay.tried.has(n)) p.relay.untried.push(n);
      this.copyFailed(p.relay);
      return;
    }
    if (p.viaQueue) {
      // Came through the queue subject: forward it to the group's other replicas.
      this.pending.delete(call);
      return this.forward(p.msg, replicas, p.encoding, () => this.reply(p.msg, p.encoding, errorResponse(new NotReplicaError(group, replicas))));
    }
    this.answer(call, { kind: "error", code: "moved", message: "not held here", config: { epoch: -1, replicas } });
  }

  private timeoutOf(msg: Msg): number {
    const raw = msg.headers?.get(TIMEOUT_HEADER);
    const n = raw ? Number(raw) : NaN;
    return Number.isInteger(n) && n > 0 && n <= 600_000 ? n : this.opts.requestTimeoutMs;
  }

  /**
   * This node lost its disk and does not hold the group yet (its peers are still listing what it
   * replicates: lostDisk.ts). A linearizable read is served alike by any replica: it goes to the
   * group's other live replicas (once: a forwarded request is never forwarded again). Anything
   * else is answered `outcome` (unavailable, or timeout for a write that may be out elsewhere).
   */
  notLoadedYet(call: CallId, group: string, outcome: Outcome): void {
    const p = this.pending.get(call);
    if (p === undefined) return;
    const read = p.request.kind === "read" && p.request.consistency !== "stale";
    if (!read || p.relay !== null || p.msg.headers?.get(FORWARDED_HEADER) === "1") return this.answer(call, outcome);
    const peers = this.opts.replicasFor(group).filter((n) => n !== this.opts.self && this.opts.peerAlive(n));
    if (peers.length === 0) return this.answer(call, outcome);
    this.pending.delete(call);
    const headers = natsHeaders();
    for (const [k, v] of p.msg.headers ?? []) for (const x of v) headers.append(k, x);
    headers.set(FORWARDED_HEADER, "1");
    this.forward(p.msg, peers, p.encoding, () => this.reply(p.msg, p.encoding, this.toResponse(p, outcome)), headers);
  }

  /** The key-group actor answered call `call`. */
  answer(call: CallId, outcome: Outcome): void {
    const p = this.pending.get(call);
    if (p === undefined) return; // already answered by the sweeper
    this.pending.delete(call);
    if (p.group !== MEMBERS_GROUP) this.opts.onAnswered?.(p.opName, outcome.kind === "error" ? outcome.code : "ok", (this.opts.now() - p.startedAt) / 1000);
    if (p.relay !== null) return this.localCopyAnswered(p.relay, p, outcome);
    if (p.viaQueue && outcome.kind === "error" && outcome.code === "moved" && outcome.config !== undefined && outcome.config.epoch >= 0) {
      // The group moved (membership change) and the client asked any node: follow it. A write
      // goes on as a relay with the same request id (it may have gone out here before the move).
      const replicas = outcome.config.replicas.filter((n) => n !== this.opts.self);
      if (p.request.kind === "write") {
        const r: Relay = { msg: p.msg, encoding: p.encoding, request: p.request, requestId: p.requestId!, untried: [...replicas], tried: new Set([this.opts.self]), outstanding: 0, unknown: true, done: false };
        this.stats.relayed++;
        return this.sendCopy(r);
      }
      return this.forward(p.msg, replicas, p.encoding, () => this.reply(p.msg, p.encoding, errorResponse(new NotReplicaError(p.group, replicas))));
    }
    this.reply(p.msg, p.encoding, this.toResponse(p, outcome), p.valueEncoding);
  }

  private toResponse(p: PendingCall, outcome: Outcome): ApiResponse {
    switch (outcome.kind) {
      case "write":
        return p.op === null ? errorResponse(new InternalError("a read answered with a write result")) : answerWrite(p.op, outcome.result);
      case "read":
        return answerRead(outcome.result, this.opts.limits);
      case "error":
        // "moved" (issue 13): the group lives elsewhere now, or this node holds no copy
        // (config.epoch -1, from notHeld). A removed replica's write may have gone out before
        // the move (details.moved): retry with the same request id at the replicas named.
        if (outcome.code === "moved") {
          const replicas = outcome.config?.replicas ?? [];
          const epoch = outcome.config?.epoch ?? -1;
          if (epoch < 0) return errorResponse(new NotReplicaError(p.group, replicas));
          return errorResponse(new PaxosStoreError("not_replica", outcome.message, { group: p.group, replicas: [...replicas], epoch, moved: p.op !== null }));
        }
        return errorResponse(outcome.code === "unavailable" ? new UnavailableError(outcome.message) : new TimeoutError(outcome.message));
      case "reconfigured":
        return errorResponse(new InternalError("a reconfiguration answered a client call"));
    }
  }

  private sweep(): void {
    const now = this.opts.now();
    for (const [call, p] of this.pending) {
      if (now < p.giveUpAt) continue;
      this.pending.delete(call);
      this.opts.onAnswered?.(p.opName, "timeout", (now - p.startedAt) / 1000);
      if (p.relay !== null) {
        p.relay.outstanding--;
        p.relay.unknown = true;
        this.copyFailed(p.relay);
        continue;
      }
      this.reply(p.msg, p.encoding, errorResponse(new TimeoutError()));
    }
  }

  /**
   * Relays the request to the first of `targets` that has a responder. "No responders" means
   * the target never got it, so the next is tried, and `none` runs when no target had one.
   * Any other failure (no answer in time) leaves the outcome unknown: a timeout.
   */
  private forward(msg: Msg, targets: readonly NodeId[], encoding: Encoding, none: () => void, headers = msg.headers): void {
    const [to, ...rest] = targets;
    if (to === undefined) return none();
    this.stats.forwarded++;
    const timeout = this.timeoutOf(msg) + 500;
    this.opts.nc
      .request(this.opts.subjects.apiNode(to), msg.data, { timeout, headers })
      .then((answer) => msg.respond(answer.data, { headers: answer.headers }))
      .catch((err: unknown) => {
        if (err instanceof RequestError && err.isNoResponders()) return this.forward(msg, rest, encoding, none, headers);
        this.reply(msg, encoding, errorResponse(new TimeoutError(`the group's replica ${to} did not answer in time; the outcome is unknown (retry with the same requestId)`)));
      });
  }

  private reply(msg: Msg, encoding: Encoding, response: ApiResponse, valueEncoding: ValueEncoding = "auto"): void {
    if (!msg.reply) return;
    let body: Uint8Array;
    try {
      body = encodeResponse(response, encoding, valueEncoding);
    } catch (e) {
      body = encodeResponse(errorResponse(new InternalError(`cannot encode the answer: ${(e as Error).message}`)), encoding);
    }
    const h = natsHeaders();
    h.set(CONTENT_TYPE_HEADER, contentTypeOf(encoding));
    try {
      msg.respond(body, { headers: h });
    } catch {
      // The connection is closing: the client will time out and retry elsewhere.
    }
  }
}

/**
 * No replica had a responder: this attempt reached nobody. `unavailable` promises more (the
 * request id is never applied), which holds only when the request carried no id of its own:
 * an id the client chose may have been applied by an earlier attempt, so that is a `timeout`.
 */
function noReplicaReachable(request: Exclude<ValidRequest, { kind: "status" }>): UnavailableError | TimeoutError {
  return notReachableHere(request, "no replica of the group is reachable");
}

/**
 * A request this node did nothing with: `unavailable` (a write: not applied), except a write
 * with the client's own request id, which an earlier attempt elsewhere may have applied:
 * `timeout` (docs/API.md, "Request ids: what is promised").
 */
function notReachableHere(request: Exclude<ValidRequest, { kind: "status" }>, why: string): UnavailableError | TimeoutError {
  if (request.kind === "write" && request.requestId !== null) {
    return new TimeoutError(`${why}; an earlier attempt with this requestId may have been applied: retry with the same requestId`, { group: request.group, requestId: request.requestId });
  }
  return new UnavailableError(request.kind === "write" ? `${why}; the write was not applied` : why, { group: request.group });
}

/** The error code of an answer, null for an ok (or undecodable: passed on as it is). */
function errorCodeOf(data: Uint8Array, encoding: Encoding): WireErrorCode | null {
  const decoded = decodeBody(data, encoding, { ...DEFAULT_WIRE_LIMITS, frameBytesMax: Number.MAX_SAFE_INTEGER });
  if (!decoded.ok) return null;
  const body = decoded.value as { ok?: unknown; error?: { code?: unknown } } | null;
  if (body === null || typeof body !== "object" || body.ok !== false) return null;
  const code = body.error?.code;
  return typeof code === "string" ? (code as WireErrorCode) : null;
}

/** The details of an error answer, null for an ok (or undecodable). */
function errorDetailsOf(data: Uint8Array, encoding: Encoding): Record<string, unknown> | null {
  const decoded = decodeBody(data, encoding, { ...DEFAULT_WIRE_LIMITS, frameBytesMax: Number.MAX_SAFE_INTEGER });
  if (!decoded.ok) return null;
  const body = decoded.value as { ok?: unknown; error?: { details?: unknown } } | null;
  const details = body?.error?.details;
  return typeof details === "object" && details !== null ? (details as Record<string, unknown>) : null;
}
