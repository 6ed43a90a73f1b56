// The client API on NATS: `<prefix>.api` (queue group: any node answers) and
// `<prefix>.api.<node>` (this node). Each request is decoded and validated (a bad one is
// answered with a typed error, never a crash), then handed to its key-group actor with a call
// id from our own counter (never nact's query, whose random ids collide under load); the
// answer goes back in the request's encoding.
//
// A request for a group this node holds no replica of (clusters larger than the replication
// factor) is forwarded to the group's preferred replica when it came through the queue
// subject, and refused with `not_replica` when it was addressed to this node.

import { headers as natsHeaders, RequestError, type Msg, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import type { NodeId } from "../protocol/ballot.js";
import { answerRead, answerWrite, errorResponse, type ApiResponse, type StatusResult, type ValidRequest, type ValueEncoding } from "../protocol/api.js";
import { CONTENT_TYPE_HEADER, TIMEOUT_HEADER, contentTypeOf, encodeResponse, encodingFromContentType, readRequest, type Encoding } from "../protocol/codec.js";
import { InternalError, NotReplicaError, TimeoutError, UnavailableError } from "../protocol/errors.js";
import type { CallId, Outcome } from "../protocol/io.js";
import type { WireLimits } from "../protocol/limits.js";
import type { WriteOp } from "../protocol/ops.js";
import type { Subjects } from "../protocol/subjects.js";
import type { GroupMsg } from "./keyGroup.js";
import { replySubjectProblem } from "./replySubject.js";

export { TIMEOUT_HEADER };

interface PendingCall {
  readonly msg: Msg;
  readonly encoding: Encoding;
  readonly valueEncoding: ValueEncoding;
  readonly op: WriteOp | null;
  /** Answer "timeout" ourselves if the group never does (it crashed, say). */
  readonly giveUpAt: number;
}

export interface ApiHandlerOptions {
  readonly nc: NatsConnection;
  readonly subjects: Subjects;
  readonly self: NodeId;
  readonly incarnation: string;
  readonly limits: WireLimits;
  readonly requestTimeoutMs: number;
  /** Preferred replica first. */
  replicasFor(group: string): readonly NodeId[];
  /** Heard from recently (peer frames or heartbeats). */
  peerAlive(node: NodeId): boolean;
  dispatch(group: string, msg: GroupMsg): void;
  status(): StatusResult;
  now(): number;
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
  readonly stats = { requests: 0, badRequests: 0, forwarded: 0, badReplySubjects: 0 };

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
    const replicas = this.opts.replicasFor(request.group);
    if (!replicas.includes(this.opts.self)) {
      if (viaQueue && replicas.length > 0) {
        return this.forward(msg, replicas, encoding, () => this.reply(msg, encoding, errorResponse(noReplicaReachable(request))));
      }
      return this.reply(msg, encoding, errorResponse(new NotReplicaError(request.group, replicas)));
    }
    // A write that reached us through the queue subject goes to the group's preferred replica
    // when it is up: there it takes the one-round-trip fast path, instead of this node dueling
    // with it for the group's next instance (a hot group written through random nodes would
    // otherwise spend its time in Prepare rounds and backoff).
    const preferred = replicas[0]!;
    if (viaQueue && request.kind === "write" && preferred !== this.opts.self && this.opts.peerAlive(preferred)) {
      return this.forward(msg, [preferred], encoding, () => this.dispatch(msg, encoding, request));
    }
    this.dispatch(msg, encoding, request);
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

  private dispatch(msg: Msg, encoding: Encoding, request: Exclude<ValidRequest, { kind: "status" }>): void {
    const now = this.opts.now();
    const timeoutMs = this.timeoutOf(msg);
    const call = ++this.nextCall;
    const deadline = now + timeoutMs;
    if (request.kind === "write") {
      // An id we make is fresh: no other attempt can carry it, which is what lets the core
      // answer `unavailable` (never applied) for a write it never proposed.
      const fresh = request.requestId === null;
      const requestId = request.requestId ?? `${this.opts.self}.${this.opts.incarnation}.${++this.nextRequestId}`;
      this.pending.set(call, { msg, encoding, valueEncoding: "auto", op: request.op, giveUpAt: deadline + 1000 });
      this.opts.dispatch(request.group, { type: "propose", call, command: { requestId, op: request.op }, deadline, fresh });
    } else {
      this.pending.set(call, { msg, encoding, valueEncoding: request.valueEncoding, op: null, giveUpAt: deadline + 1000 });
      this.opts.dispatch(request.group, { type: "read", call, query: request.query, consistency: request.consistency, deadline });
    }
  }

  private timeoutOf(msg: Msg): number {
    const raw = msg.headers?.get(TIMEOUT_HEADER);
    const n = raw ? Number(raw) : NaN;
    return Number.isInteger(n) && n > 0 && n <= 600_000 ? n : this.opts.requestTimeoutMs;
  }

  /** The key-group actor answered call `call`. */
  answer(call: CallId, outcome: Outcome): void {
    const p = this.pending.get(call);
    if (p === undefined) return; // already answered by the sweeper
    this.pending.delete(call);
    this.reply(p.msg, p.encoding, this.toResponse(p, outcome), p.valueEncoding);
  }

  private toResponse(p: PendingCall, outcome: Outcome): ApiResponse {
    switch (outcome.kind) {
      case "write":
        return p.op === null ? errorResponse(new InternalError("a read answered with a write result")) : answerWrite(p.op, outcome.result);
      case "read":
        return answerRead(outcome.result, this.opts.limits);
      case "error":
        return errorResponse(outcome.code === "unavailable" ? new UnavailableError(outcome.message) : new TimeoutError(outcome.message));
    }
  }

  private sweep(): void {
    const now = this.opts.now();
    for (const [call, p] of this.pending) {
      if (now < p.giveUpAt) continue;
      this.pending.delete(call);
      this.reply(p.msg, p.encoding, errorResponse(new TimeoutError()));
    }
  }

  /**
   * Relays the request to the first of `targets` that has a responder. "No responders" means
   * the target never got it, so the next is tried, and `none` runs when no target had one.
   * Any other failure (no answer in time) leaves the outcome unknown: a timeout.
   */
  private forward(msg: Msg, targets: readonly NodeId[], encoding: Encoding, none: () => void): void {
    const [to, ...rest] = targets;
    if (to === undefined) return none();
    this.stats.forwarded++;
    const timeout = this.timeoutOf(msg) + 500;
    this.opts.nc
      .request(this.opts.subjects.apiNode(to), msg.data, { timeout, headers: msg.headers })
      .then((answer) => msg.respond(answer.data, { headers: answer.headers }))
      .catch((err: unknown) => {
        if (err instanceof RequestError && err.isNoResponders()) return this.forward(msg, rest, encoding, none);
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
  if (request.kind === "write" && request.requestId !== null) {
    return new TimeoutError(
      "no replica of the group is reachable; an earlier attempt with this requestId may have been applied: retry with the same requestId",
      { group: request.group, requestId: request.requestId },
    );
  }
  const message = request.kind === "write" ? "no replica of the group is reachable; the write was not applied" : "no replica of the group is reachable";
  return new UnavailableError(message, { group: request.group });
}
