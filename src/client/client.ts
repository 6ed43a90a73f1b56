// The TypeScript client: a promise API over the wire API of docs/API.md.
//
//   const store = await connect({ cluster: "dev" });
//   await store.put("greeting", "hello");
//   (await store.get("greeting")).text();             // "hello"
//   const user = store.group("user:42");              // keys that change together
//   await user.txn({ compares: [...], success: [...] });
//   await store.close();
//
// Routing: each call goes first to its group's preferred replica (`<prefix>.api.<node>`, by the
// same rendezvous hash as the nodes, placement.ts), then to the group's other replicas when a
// node does not answer ("no responders", a NATS timeout) or answers `unavailable`/`timeout`.
// A write keeps ONE request id across all its attempts, so the nodes apply it at most once and
// a retry answers the first result. `bad_request`, `too_large`, `conflict` and `internal` are
// never retried. The whole call, retries included, ends by its deadline (`timeoutMs`).
// The member list comes from a `status` at connect time (or `members`), and is asked again
// when calls fail (at most once a second; sooner while it is unknown).

import {
  connect as natsConnect,
  credsAuthenticator,
  errors as natsErrors,
  headers as natsHeaders,
  nkeyAuthenticator,
  nuid,
  type ConnectionOptions,
  type NatsConnection,
} from "@nats-io/transport-node";
import { readFileSync } from "node:fs";
import type {
  ApiOp,
  ApiRequest,
  ApiValue,
  CasResult,
  CompareRequest,
  Consistency,
  DeleteResult,
  MembershipStatus,
  OkResponse,
  PutResult,
  StatusResult,
  TxnResult,
  TxnWriteRequest,
} from "../protocol/api.js";
import { CONTENT_TYPE_HEADER, contentTypeOf, decodeResponse, encodeRequest, encodingFromContentType, type Encoding } from "../protocol/codec.js";
import {
  BadRequestError,
  errorFromWire,
  PaxosStoreError,
  TimeoutError,
  TooLargeError,
  UnauthorizedError,
  UnavailableError,
} from "../protocol/errors.js";
import { DEFAULT_WIRE_LIMITS, type WireLimits } from "../protocol/limits.js";
import { replicasFor } from "../protocol/placement.js";
import { DEFAULT_CLUSTER, nameProblem, subjectsFor, type Subjects } from "../protocol/subjects.js";
import { found, notFound, scanPage, type Entry, type GetResponse, type ScanPage } from "./results.js";
import { Refusals } from "./refusals.js";
import { attemptBudgetMs, backoffMs, hedgeDelayMs, isRetryable, nodeDeadlineMs, retryWorthStarting, SUSPECT_MS, TRIAL_MS } from "./retry.js";

/** The header that bounds a call on the node, in milliseconds (read by src/actors/apiHandler.ts). */
export { DIRECT_HEADER, DIRECT_HEDGE, TIMEOUT_HEADER } from "../protocol/codec.js";
import { DIRECT_HEADER, DIRECT_HEDGE, TIMEOUT_HEADER } from "../protocol/codec.js";
export const DEFAULT_SERVERS = "nats://127.0.0.1:4222";
export const DEFAULT_TIMEOUT_MS = 5_000;

export interface TlsOptions {
  /** CA certificate(s) to trust, PEM file. */
  readonly caFile?: string;
  /** Client certificate (mutual TLS), PEM file. */
  readonly certFile?: string;
  readonly keyFile?: string;
}

export interface ConnectOptions {
  /** NATS server URL(s): a string (comma-separated allowed) or a list. Default nats://127.0.0.1:4222. */
  readonly servers?: string | readonly string[];
  /** The cluster name. Default `dev` (the cluster `paxosstore dev` runs). */
  readonly cluster?: string;
  /** Subject prefix. Default `paxosstore.<cluster>`. */
  readonly prefix?: string;
  readonly user?: string;
  readonly pass?: string;
  readonly token?: string;
  /** A NATS .creds file (JWT and nkey seed). */
  readonly credsFile?: string;
  /** A NATS nkey seed file. */
  readonly nkeySeedFile?: string;
  /** TLS: `true` for TLS with the system's CAs, or files. */
  readonly tls?: TlsOptions | boolean;
  /** Wire encoding. Default msgpack (values travel as raw bytes). */
  readonly encoding?: Encoding;
  /** Deadline of each call, retries included. Default 5000. */
  readonly timeoutMs?: number;
  /** The cluster's node ids. Default: asked with `status` at connect time. */
  readonly members?: readonly string[];
  /** Send every call to this node only (no failover): for diagnosis. */
  readonly node?: string;
  /** The NATS connection name (shows in the server's monitoring). */
  readonly name?: string;
  /**
   * The prefix of this client's reply subjects (NATS `inboxPrefix`), e.g. `_INBOX_alice`.
   * Default `_INBOX`. With a server that lets each application subscribe only to its own
   * prefix (infra/nats/secured.conf), no other client can read this one's answers. The
   * nodes answer only reply subjects whose first token starts with `_INBOX` (or one of their
   * configured `replyPrefixes`), so keep that shape.
   */
  readonly inboxPrefix?: string;
  /** Use this NATS connection instead of opening one; close() leaves it open. */
  readonly connection?: NatsConnection;
}

export interface CallOptions {
  /** This call's deadline, retries included; default the client's `timeoutMs`. */
  readonly timeoutMs?: number;
}

export interface ReadOptions extends CallOptions {
  /** `linearizable` (default): sees every write answered before the call; `stale`: one replica's data. */
  readonly consistency?: Consistency;
}

export interface WriteOptions extends CallOptions {
  /**
   * Makes the write idempotent: a request id is applied at most once per group. Default: a
   * fresh unique id per call, reused by the client's own retries.
   */
  readonly requestId?: string;
}

export interface TxnSpec {
  /** Default []: the txn always succeeds (an atomic multi-write). */
  readonly compares?: readonly CompareRequest[];
  readonly success?: readonly TxnWriteRequest[];
  readonly failure?: readonly TxnWriteRequest[];
}

export interface ScanOptions extends ReadOptions {
  /** Keys starting with this; default every key. */
  readonly prefix?: string;
  /** Continue after this key (exclusive): the `next` of the previous page. */
  readonly after?: string;
  /** Keys per page (1..1000; default 100). */
  readonly limit?: number;
}

/** Connects to NATS and learns the cluster's members. Throws UnavailableError when NATS cannot be reached. */
export async function connect(options: ConnectOptions = {}): Promise<PaxosStoreClient> {
  const settings = settingsOf(options);
  let nc = options.connection;
  if (nc === undefined) {
    try {
      nc = await natsConnect(natsOptionsOf(options, settings));
    } catch (e) {
      if (isAuthorizationFailure(e)) {
        throw new UnauthorizedError(`NATS at ${settings.servers.join(",")} refused the credentials: ${messageOf(e)}`, {}, { cause: e });
      }
      throw new UnavailableError(`cannot connect to NATS at ${settings.servers.join(",")}: ${messageOf(e)}`, {}, { cause: e });
    }
  }
  const client = new PaxosStoreClient(nc, settings, options.connection === undefined);
  if (settings.members === null && settings.node === null) {
    // Best effort, one attempt: without members every call still works through `<prefix>.api`
    // (and retries there until its deadline), and the list is asked again when calls fail.
    await client.refreshMembers(Math.min(settings.timeoutMs, 2_000), 1).catch(() => undefined);
  }
  return client;
}

interface Settings {
  readonly servers: readonly string[];
  readonly subjects: Subjects;
  readonly encoding: Encoding;
  readonly timeoutMs: number;
  readonly members: readonly string[] | null;
  readonly node: string | null;
}

function settingsOf(o: ConnectOptions): Settings {
  const servers = (typeof o.servers === "string" ? o.servers.split(",") : (o.servers ?? [DEFAULT_SERVERS]))
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (servers.length === 0) throw new BadRequestError("servers", "no NATS server URL given");
  const cluster = o.cluster ?? DEFAULT_CLUSTER;
  let subjects: Subjects;
  try {
    subjects = o.prefix === undefined ? subjectsFor(cluster) : subjectsFor(cluster, o.prefix);
  } catch (e) {
    throw new BadRequestError(o.prefix === undefined ? "cluster" : "prefix", messageOf(e));
  }
  const encoding = o.encoding ?? "msgpack";
  if (encoding !== "json" && encoding !== "msgpack") throw new BadRequestError("encoding", `must be json or msgpack, got ${JSON.stringify(encoding)}`);
  const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1) throw new BadRequestError("timeoutMs", `must be a positive integer, got ${String(timeoutMs)}`);
  for (const id of [...(o.members ?? []), ...(o.node === undefined ? [] : [o.node])]) {
    const problem = nameProblem(id);
    if (problem !== null) throw new BadRequestError("members", `node id ${JSON.stringify(id)} ${problem}`);
  }
  if (o.inboxPrefix !== undefined && !/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(o.inboxPrefix)) {
    throw new BadRequestError("inboxPrefix", `must be NATS subject tokens (letters, digits, "_", "-", separated by "."), got ${JSON.stringify(o.inboxPrefix)}`);
  }
  const members = o.members === undefined || o.members.length === 0 ? null : [...o.members];
  return { servers, subjects, encoding, timeoutMs, members, node: o.node ?? null };
}

function natsOptionsOf(o: ConnectOptions, s: Settings): ConnectionOptions {
  const opts: ConnectionOptions = {
    servers: [...s.servers],
    name: o.name ?? `paxosstore-client-${s.subjects.cluster}`,
    noAsyncTraces: true,
    timeout: Math.min(s.timeoutMs, 10_000),
    // Keep reconnecting while the process lives: calls in the meantime fail over and retry.
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
  };
  if (o.user !== undefined) Object.assign(opts, { user: o.user, pass: o.pass ?? "" });
  if (o.token !== undefined) opts.token = o.token;
  if (o.credsFile !== undefined) opts.authenticator = credsAuthenticator(readFileSync(o.credsFile));
  else if (o.nkeySeedFile !== undefined) opts.authenticator = nkeyAuthenticator(new TextEncoder().encode(readFileSync(o.nkeySeedFile, "utf8").trim()));
  if (o.tls === true) opts.tls = {};
  else if (typeof o.tls === "object") opts.tls = { ...o.tls };
  if (o.inboxPrefix !== undefined) opts.inboxPrefix = o.inboxPrefix;
  return opts;
}

/** NATS refused who we are (bad user, password, token, nkey, expired creds). */
function isAuthorizationFailure(e: unknown): boolean {
  for (let x: unknown = e, depth = 0; x instanceof Error && depth < 5; x = x.cause, depth++) {
    if (x instanceof natsErrors.AuthorizationError || x instanceof natsErrors.UserAuthenticationExpiredError) return true;
    if (/authorization violation|authentication/i.test(x.message)) return true;
  }
  return false;
}

/** How one attempt ended. */
const CLIENT_CLOSED = "the client is closed";

type Attempt =
  | { readonly kind: "answer"; readonly response: OkResponse<ApiOp> | { readonly ok: false; readonly error: PaxosStoreError } }
  /** Nobody received the request: a write was certainly not applied. */
  | { readonly kind: "noResponders" }
  /** The request may have been delivered and no answer came: a write's outcome is unknown. */
  | { readonly kind: "noAnswer"; readonly why: string };

/** One copy of an attempt: where it went and how it ended. */
interface Tried {
  readonly target: string | null;
  readonly subject: string;
  readonly result: Attempt;
}

/** An answer that another copy could not change: ok, or an error that is not retried. */
function isDecided(result: Attempt): boolean {
  return result.kind === "answer" && (result.response.ok || !isRetryable(result.response.error.code));
}

type RequestOf<O extends ApiOp> = Extract<ApiRequest, { op: O }>;

/** Counters of what the client did, for metrics and tests. */
export interface ClientStats {
  /** Calls made (each may take several attempts). */
  calls: number;
  /** Requests sent. */
  attempts: number;
  /** Attempts nobody received (no responders): the node was down. */
  noResponders: number;
  /** Attempts that got no answer in time: the node died or hung with the request. */
  noAnswer: number;
  /** Attempts answered with a retryable error (unavailable, timeout, not_replica). */
  retryableAnswers: number;
  /** Attempts that got a second copy to another replica because the first was slow. */
  hedges: number;
}

/** A connected client. Make one with `connect()`; it is safe to share across the whole process. */
export class PaxosStoreClient {
  readonly stats: ClientStats = { calls: 0, attempts: 0, noResponders: 0, noAnswer: 0, retryableAnswers: 0, hedges: 0 };
  readonly cluster: string;
  readonly prefix: string;
  readonly encoding: Encoding;
  readonly timeoutMs: number;
  private readonly subjects: Subjects;
  private readonly servers: readonly string[];
  private readonly fixedMembers: boolean;
  private readonly pinnedNode: string | null;
  /** NATS permission refusals seen on the connection: a doomed call fails at once as unauthorized. */
  private readonly refusals: Refusals;
  private membersNow: readonly string[] | null;
  /** While a membership change is under way: the members before it (groups not moved yet live there). */
  private previousNow: readonly string[] = [];
  /** The membership epoch the client routes by (status.membership; 0 when unknown). */
  private epochNow = 0;
  private limitsNow: WireLimits = DEFAULT_WIRE_LIMITS;
  /** Nodes that recently did not answer, until when: they are tried last. */
  private readonly suspects = new Map<string, number>();
  /**
   * Per suspect whose time is up, when the one call allowed to try it again began: until a
   * node has answered ok once more, one call at a time tries it (and hedges if it is still
   * silent), not every call at once (a node cut off for longer than SUSPECT_MS would otherwise
   * hold every call for a hedge delay each time its suspicion ran out).
   */
  private readonly trials = new Map<string, number>();
  /** Per node, the attempts waiting on it that would hedge at once if it turned suspect. */
  private readonly hedgeWaiters = new Map<string, Set<() => void>>();
  /** Moving average of answered attempts' latency: sets how long before an attempt is hedged. */
  private latencyEwmaMs = 20;
  private refreshing: Promise<readonly string[] | null> | null = null;
  private lastRefreshAt = -Infinity;
  private closed = false;

  /** Use `connect()`. */
  constructor(
    readonly connection: NatsConnection,
    settings: Settings,
    private readonly ownsConnection: boolean,
  ) {
    this.subjects = settings.subjects;
    this.cluster = settings.subjects.cluster;
    this.prefix = settings.subjects.prefix;
    this.servers = settings.servers;
    this.encoding = settings.encoding;
    this.timeoutMs = settings.timeoutMs;
    this.refusals = new Refusals(connection);
    this.membersNow = settings.members;
    this.fixedMembers = settings.members !== null;
    this.pinnedNode = settings.node;
  }

  /** The cluster's members as the client knows them (null: not learned yet). */
  get members(): readonly string[] | null {
    return this.membersNow;
  }

  /** The wire limits the cluster reported (the defaults until a status answered). */
  get limits(): WireLimits {
    return this.limitsNow;
  }

  /** A handle on a key-group: its keys change together, in one order; txn and scan work inside it. */
  group(name: string): KeyGroup {
    return new KeyGroup(this, name);
  }

  // ---- Single-key calls: the key is its own group ---------------------------------------------

  get(key: string, options?: ReadOptions): Promise<GetResponse> {
    return this.getIn(undefined, key, options);
  }

  /** The value parsed as JSON; undefined when the key does not exist. */
  async getJSON<T = unknown>(key: string, options?: ReadOptions): Promise<T | undefined> {
    const r = await this.get(key, options);
    return r.found ? r.json<T>() : undefined;
  }

  put(key: string, value: ApiValue, options?: WriteOptions): Promise<PutResult> {
    return this.putIn(undefined, key, value, options);
  }

  putJSON(key: string, value: unknown, options?: WriteOptions): Promise<PutResult> {
    return this.putIn(undefined, key, jsonText(value), options);
  }

  delete(key: string, options?: WriteOptions): Promise<DeleteResult> {
    return this.deleteIn(undefined, key, options);
  }

  /** Writes only if the key is at `version` (0: must not exist); else throws ConflictError (`details.current`). */
  cas(key: string, version: number, value: ApiValue, options?: WriteOptions): Promise<CasResult> {
    return this.casIn(undefined, key, version, value, options);
  }

  /** A node's status: `node` asks that one, else any node. */
  async status(node?: string, options?: CallOptions): Promise<StatusResult> {
    return this.statusOnce(node, options, Infinity);
  }

  private async statusOnce(node: string | undefined, options: CallOptions | undefined, attemptsMax: number): Promise<StatusResult> {
    const r = await this.call({ op: "status" }, { group: null, node: node ?? null, attemptsMax }, options);
    const { ok: _ok, ...status } = r;
    this.learn(status);
    return status;
  }

  /**
   * The members admin op (docs/API.md): `show`, `add`/`remove` a node, `replace` one by
   * another, `advance` a change under way. Answers the view and every node's report.
   */
  async membersAdmin(action: "show" | "add" | "remove" | "replace" | "advance", node?: string, by?: string, options?: CallOptions): Promise<MembersAdminResult> {
    const body = JSON.stringify({ op: "members", action, ...(node === undefined ? {} : { node }), ...(by === undefined ? {} : { with: by }) });
    let answer: { ok: boolean; error?: { code?: unknown; message?: unknown } } & Partial<MembersAdminResult>;
    try {
      const m = await this.connection.request(`${this.prefix}.admin`, new TextEncoder().encode(body), { timeout: options?.timeoutMs ?? Math.max(this.timeoutMs, 15_000) });
      answer = JSON.parse(new TextDecoder().decode(m.data)) as typeof answer;
    } catch (e) {
      throw new UnavailableError(`the members op got no answer: ${(e as Error).message}`);
    }
    if (!answer.ok) throw errorFromWire(answer.error);
    const { ok: _ok, ...result } = answer;
    return result as MembersAdminResult;
  }

  /** Asks any node for the member list (and limits); at most one such request at a time. */
  refreshMembers(timeoutMs = this.timeoutMs, attemptsMax = Infinity): Promise<readonly string[] | null> {
    if (this.refreshing !== null) return this.refreshing;
    this.lastRefreshAt = Date.now();
    this.refreshing = this.statusOnce(undefined, { timeoutMs }, attemptsMax)
      .then(() => this.membersNow)
      .finally(() => (this.refreshing = null));
    return this.refreshing;
  }

  /** Closes the NATS connection (unless it was given to connect()). Calls in flight fail. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsConnection) await this.connection.close().catch(() => undefined);
  }

  // ---- Calls in a group (KeyGroup uses these; `group` undefined: the key is its own group) ------

  /** @internal */
  async getIn(group: string | undefined, key: string, options: ReadOptions = {}): Promise<GetResponse> {
    const r = await this.call({ op: "get", group, key, consistency: options.consistency }, { group: group ?? key }, options);
    return r.found ? found(key, r.value, r.version, r.index) : notFound(key, r.index);
  }

  /** @internal */
  async putIn(group: string | undefined, key: string, value: ApiValue, options: WriteOptions = {}): Promise<PutResult> {
    const r = await this.call({ op: "put", group, key, value, requestId: requestIdOf(options) }, { group: group ?? key }, options);
    return { version: r.version };
  }

  /** @internal */
  async deleteIn(group: string | undefined, key: string, options: WriteOptions = {}): Promise<DeleteResult> {
    const r = await this.call({ op: "delete", group, key, requestId: requestIdOf(options) }, { group: group ?? key }, options);
    return { version: r.version, existed: r.existed };
  }

  /** @internal */
  async casIn(group: string | undefined, key: string, version: number, value: ApiValue, options: WriteOptions = {}): Promise<CasResult> {
    const r = await this.call({ op: "cas", group, key, version, value, requestId: requestIdOf(options) }, { group: group ?? key }, options);
    return { version: r.version };
  }

  /** @internal */
  async txnIn(group: string, spec: TxnSpec, options: WriteOptions = {}): Promise<TxnResult> {
    const request: RequestOf<"txn"> = {
      op: "txn",
      group,
      compares: spec.compares,
      success: spec.success,
      failure: spec.failure,
      requestId: requestIdOf(options),
    };
    const { ok: _ok, ...result } = await this.call(request, { group }, options);
    return result;
  }

  /** @internal */
  async scanIn(group: string, options: ScanOptions = {}): Promise<ScanPage> {
    const request: RequestOf<"scan"> = {
      op: "scan",
      group,
      prefix: options.prefix,
      after: options.after,
      limit: options.limit,
      consistency: options.consistency,
    };
    return scanPage(await this.call(request, { group }, options));
  }

  // ---- The call loop ------------------------------------------------------------------------

  /**
   * Sends one request, with failover and retries, until an answer that is not worth retrying
   * or the deadline. Resolves with the ok answer; rejects with a typed PaxosStoreError.
   */
  private async call<O extends ApiOp>(request: RequestOf<O>, route: { group: string | null; node?: string | null; attemptsMax?: number }, options: CallOptions = {}): Promise<OkResponse<O>> {
    if (this.closed) throw new UnavailableError(CLIENT_CLOSED);
    const callTimeoutMs = options.timeoutMs ?? this.timeoutMs;
    if (!Number.isSafeInteger(callTimeoutMs) || callTimeoutMs < 1) throw new BadRequestError("timeoutMs", `must be a positive integer, got ${String(callTimeoutMs)}`);
    const op = request.op as O;
    const isWrite = op === "put" || op === "delete" || op === "cas" || op === "txn";
    const requestId = isWrite ? (request as { requestId?: string }).requestId : undefined;
    const body = encodeRequest(request, this.encoding);
    if (body.length > this.limitsNow.frameBytesMax) {
      throw new TooLargeError("(body)", "frameBytesMax", this.limitsNow.frameBytesMax, body.length);
    }
    const deadline = Date.now() + callTimeoutMs;
    this.stats.calls++;
    const pinned = route.node ?? this.pinnedNode;
    let attempt = 0;
    /** Attempts per target in this call: the next goes to the least tried, in preference order. */
    const tries = new Map<string | null, number>();
    let redirect: string | null = null;
    /** A write may have been applied: the final error must say the outcome is unknown. */
    let uncertain = false;
    let lastError: PaxosStoreError | null = null;
    let silent: string[] = []; // subjects that gave no answer, for the final message

    for (;;) {
      if (pinned === null && route.group !== null && this.membersNow === null && this.refreshing !== null) {
        // The member list is on its way: wait for it rather than guess through the queue again.
        await within(this.refreshing.catch(() => null), deadline - Date.now());
      }
      const targets = pinned !== null ? [pinned] : this.targetsFor(route.group);
      const target = redirect ?? leastTried(targets, tries);
      redirect = null;
      tries.set(target, (tries.get(target) ?? 0) + 1);
      const remaining = deadline - Date.now();
      const budget = attemptBudgetMs(remaining, callTimeoutMs, pinned === null);
      attempt++;
      // A second copy (same body, same request id) to another replica when the first is slow.
      const pickHedge = (): string | null => {
        if (pinned !== null || route.group === null) return null;
        const next = leastTried(this.targetsFor(route.group).filter((t) => t !== target), tries);
        if (next !== null) tries.set(next, (tries.get(next) ?? 0) + 1);
        return next;
      };
      let results: Tried[];
      try {
        results = await this.attemptHedged(target, pickHedge, body, budget, op);
      } catch (e) {
        // The connection closed with this attempt in flight: it may have been delivered and
        // applied, so for a write that is an unknown outcome (`timeout`), never `unavailable`.
        // Likewise any refusal after an earlier attempt whose outcome is unknown.
        if (isWrite && e instanceof UnavailableError && (e.message === CLIENT_CLOSED || uncertain)) {
          throw new TimeoutError(
            `timeout: ${e.message} with the write in flight or after an unanswered attempt; the outcome is unknown: retry with the same requestId (${requestId ?? "none"}) to find out`,
            { ...(route.group === null ? {} : { group: route.group }), ...(requestId === undefined ? {} : { requestId }) },
            { cause: e },
          );
        }
        throw e;
      }

      for (const { target: to, subject, result } of results) {
        if (result.kind === "answer") {
          const response = result.response;
          if (response.ok) {
            if (to !== null) {
              this.suspects.delete(to);
              this.trials.delete(to);
            }
            return response as unknown as OkResponse<O>;
          }
          const error = response.error;
          if (!isRetryable(error.code)) throw error;
          this.stats.retryableAnswers++;
          lastError = error;
          if (error.code === "timeout") uncertain = true;
          if (error.code === "not_replica") {
            // A replica removed by a membership change: the write may have gone out before.
            if ((error.details as { moved?: unknown } | undefined)?.moved === true) uncertain = true;
            const replicas = (error.details as { replicas?: unknown } | undefined)?.replicas;
            if (Array.isArray(replicas) && typeof replicas[0] === "string") redirect = replicas[0];
            this.maybeRefresh();
          }
        } else {
          if (to !== null) this.suspect(to);
          silent.push(subject);
          if (result.kind === "noResponders") this.stats.noResponders++;
          else this.stats.noAnswer++;
          if (result.kind === "noAnswer") {
            uncertain = true;
            // A write's outcome is unknown now. A read's silence says less than a node's answer
            // (often just an attempt cut short by the deadline): keep the answer, if any.
            if (isWrite || lastError === null) lastError = new TimeoutError(`no answer from ${subject} in ${budget} ms (${result.why})`);
          }
          this.maybeRefresh();
        }
      }

      const left = deadline - Date.now();
      if (left <= 0 || attempt >= (route.attemptsMax ?? Infinity)) break;
      const wait = redirect !== null ? 0 : backoffMs(attempt, targets.length, Math.random());
      if (!retryWorthStarting(wait, left)) break;
      if (wait > 0) await sleep(wait);
      if (this.closed) {
        if (isWrite && uncertain) throw new TimeoutError(`timeout: the client was closed; an earlier attempt may have been applied: retry with the same requestId (${requestId ?? "none"}) to find out`);
        throw new UnavailableError(CLIENT_CLOSED);
      }
    }

    const group = route.group ?? undefined;
    const details = { ...(group === undefined ? {} : { group }), ...(requestId === undefined ? {} : { requestId }) };
    const tried = `${attempt} attempt${attempt === 1 ? "" : "s"} in ${Math.max(0, callTimeoutMs - (deadline - Date.now()))} ms`;
    if (isWrite && uncertain) {
      throw new TimeoutError(
        `timeout: the outcome is unknown, the write may or may not have been applied (${tried}; last: ${lastError?.message ?? "no answer"}); ` +
          `retry with the same requestId (${requestId ?? "none"}) to find out`,
        details,
      );
    }
    if (lastError !== null && lastError.code === "timeout") throw new TimeoutError(`timeout: no answer in time (${tried}; last: ${lastError.message})`, details);
    if (lastError !== null && lastError.code === "unavailable") throw new UnavailableError(`${lastError.message} (${tried})`, details);
    if (lastError !== null && lastError.code !== "not_replica") throw lastError;
    silent = [...new Set(silent)];
    throw new UnavailableError(
      silent.length > 0
        ? `unavailable: no node answered on ${silent.join(", ")} (${tried}); is cluster "${this.cluster}" running at ${this.servers.join(",")}?`
        : `unavailable: ${lastError?.message ?? "no answer"} (${tried})`,
      details,
    );
  }

  /**
   * One attempt on `first`, hedged: when it has not answered after hedgeDelayMs (or `first`
   * turns suspect meanwhile), a second copy goes to the target `pickHedge` gives, and the first
   * decided answer (ok, or an error a retry would not change) wins. A write's copies carry one
   * request id, so it is applied at most once, whichever copies arrive. Returns the winner
   * alone, or every copy's result when none decided (all settled by then: nothing is left in
   * flight that the caller does not know of).
   */
  private async attemptHedged(first: string | null, pickHedge: () => string | null, body: Uint8Array, budgetMs: number, op: ApiOp): Promise<Tried[]> {
    const started = Date.now();
    const run = (target: string | null, ms: number, hedge = false): Promise<Tried> => {
      const subject = target === null ? this.subjects.api : this.subjects.apiNode(target);
      this.stats.attempts++;
      return this.attempt(subject, body, ms, op, hedge).then((result) => {
        if (result.kind === "answer" && result.response.ok) this.noteLatency(Date.now() - started);
        return { target, subject, result };
      });
    };
    const primary = run(first, budgetMs);
    if (first === null) return [await primary];
    let timer: NodeJS.Timeout | undefined;
    let wake!: () => void;
    const hedgeDue = new Promise<null>((r) => {
      wake = () => r(null);
      timer = setTimeout(wake, hedgeDelayMs(this.latencyEwmaMs));
    });
    let waiting = this.hedgeWaiters.get(first);
    if (waiting === undefined) this.hedgeWaiters.set(first, (waiting = new Set()));
    waiting.add(wake);
    const early = await Promise.race([primary, hedgeDue]);
    clearTimeout(timer);
    waiting.delete(wake);
    if (early !== null) return [early];
    const left = budgetMs - (Date.now() - started);
    const second = left > 0 ? pickHedge() : null;
    if (second === null || second === first) return [await primary];
    this.stats.hedges++;
    const hedge = run(second, left, true);
    return new Promise((resolve, reject) => {
      const settled: Tried[] = [];
      const settle = (t: Tried): void => {
        if (settled.length === 2) return;
        settled.push(t);
        if (isDecided(t.result)) {
          // The hedge won while the first target said nothing: route around it for a while,
          // and let the calls still waiting on it hedge now rather than at their own timers.
          if (t.target === second && settled.length === 1) this.suspect(first);
          settled.length = 2;
          return resolve([t]);
        }
        if (settled.length === 2) resolve(settled);
      };
      // A copy throws only when the client closes: the call fails with that, once.
      const fail = (e: unknown): void => {
        if (settled.length === 2) return;
        settled.length = 2;
        reject(e);
      };
      primary.then(settle, fail);
      hedge.then(settle, fail);
    });
  }

  /** Tried last for SUSPECT_MS; calls waiting on it hedge at once. */
  private suspect(node: string): void {
    this.suspects.set(node, Date.now() + SUSPECT_MS);
    this.trials.delete(node);
    const waiting = this.hedgeWaiters.get(node);
    if (waiting !== undefined) for (const wake of [...waiting]) wake();
  }

  private noteLatency(ms: number): void {
    this.latencyEwmaMs += (ms - this.latencyEwmaMs) / 16;
  }

  /** One request/reply. Never throws for what a retry may fix; a closed client throws. */
  private async attempt(subject: string, body: Uint8Array, budgetMs: number, op: ApiOp, hedge = false): Promise<Attempt> {
    const h = natsHeaders();
    h.set(CONTENT_TYPE_HEADER, contentTypeOf(this.encoding));
    h.set(TIMEOUT_HEADER, String(nodeDeadlineMs(budgetMs)));
    // This client routes to the preferred replica and hedges by itself: the node it picked
    // proposes. A hedged copy says so: that node relays it to a replica it heard from just now
    // (the first target was merely slow: a second proposer would duel with it), else proposes.
    if (subject !== this.subjects.api) h.set(DIRECT_HEADER, hedge ? DIRECT_HEDGE : "1");
    try {
      const msg = await this.refusals.race(subject, () => this.connection.request(subject, body, { timeout: budgetMs, headers: h }));
      const enc = encodingFromContentType(msg.headers?.get(CONTENT_TYPE_HEADER));
      const response = decodeResponse(msg.data, enc.ok ? enc.encoding : this.encoding, op);
      if (response.ok) return { kind: "answer", response };
      return { kind: "answer", response: { ok: false, error: errorFromWire(response.error) } };
    } catch (e) {
      if (e instanceof natsErrors.TimeoutError) return { kind: "noAnswer", why: "timed out" };
      if (e instanceof natsErrors.RequestError && e.isNoResponders()) return { kind: "noResponders" };
      if (e instanceof natsErrors.NoRespondersError) return { kind: "noResponders" };
      if (e instanceof natsErrors.ClosedConnectionError || this.closed || this.connection.isClosed()) {
        throw new UnavailableError(CLIENT_CLOSED, {}, { cause: e });
      }
      if (e instanceof natsErrors.PermissionViolationError) {
        const what = e.operation === "subscription" ? `the reply inbox ${e.subject}` : e.subject;
        throw new UnauthorizedError(
          `unauthorized: NATS refused ${what} (check the user's permissions and the client's inboxPrefix); a write already sent may have been applied: retry it with the same requestId once fixed`,
          {},
          { cause: e },
        );
      }
      // Disconnected while waiting, draining, ...: the request may have left.
      return { kind: "noAnswer", why: messageOf(e) };
    }
  }

  /**
   * The group's replicas, preferred first, with suspects last; the queue subject (null) when
   * members are unknown. During a membership change: the old placement first (groups not moved
   * yet live there; a replica that moved answers not_replica naming the new ones), then the new.
   */
  private targetsFor(group: string | null): (string | null)[] {
    const members = this.membersNow;
    if (group === null || members === null || members.length === 0) return [null];
    const replicas = this.previousNow.length === 0 ? replicasFor(group, members) : [...new Set([...replicasFor(group, this.previousNow), ...replicasFor(group, members)])];
    const now = Date.now();
    const healthy: string[] = [];
    const suspect: string[] = [];
    for (const node of replicas) {
      const until = this.suspects.get(node);
      if (until === undefined) healthy.push(node);
      else if (until > now) suspect.push(node);
      else {
        // Suspicion over, but not yet answered ok again: this call is the trial unless one
        // is under way (a trial that got no verdict in TRIAL_MS leaves room for another).
        const trial = this.trials.get(node);
        if (trial !== undefined && now - trial < TRIAL_MS) suspect.push(node);
        else {
          this.trials.set(node, now);
          healthy.push(node);
        }
      }
    }
    return [...healthy, ...suspect];
  }

  private learn(status: StatusResult): void {
    if (!this.fixedMembers && status.members.length > 0) {
      const m = status.membership;
      // A status from a node behind the last change (a lower epoch) does not undo it.
      if (m === undefined || m.epoch >= this.epochNow) {
        this.membersNow = [...status.members];
        this.previousNow = m === undefined ? [] : [...m.previous];
        this.epochNow = m?.epoch ?? this.epochNow;
      }
    }
    this.limitsNow = status.limits;
  }

  /** Asks for the members again in the background: at most once a second (5 a second while unknown). */
  private maybeRefresh(): void {
    if (this.fixedMembers || this.closed || this.refreshing !== null) return;
    if (Date.now() - this.lastRefreshAt < (this.membersNow === null ? 200 : 1_000)) return;
    this.refreshMembers(Math.min(this.timeoutMs, 2_000), 1).catch(() => undefined);
  }
}

/** A key-group: the unit of atomicity. All its keys change in one order; txn and scan work inside it. */
export class KeyGroup {
  constructor(
    private readonly client: PaxosStoreClient,
    readonly name: string,
  ) {}

  get(key: string, options?: ReadOptions): Promise<GetResponse> {
    return this.client.getIn(this.name, key, options);
  }

  /** The value parsed as JSON; undefined when the key does not exist. */
  async getJSON<T = unknown>(key: string, options?: ReadOptions): Promise<T | undefined> {
    const r = await this.get(key, options);
    return r.found ? r.json<T>() : undefined;
  }

  put(key: string, value: ApiValue, options?: WriteOptions): Promise<PutResult> {
    return this.client.putIn(this.name, key, value, options);
  }

  putJSON(key: string, value: unknown, options?: WriteOptions): Promise<PutResult> {
    return this.client.putIn(this.name, key, jsonText(value), options);
  }

  delete(key: string, options?: WriteOptions): Promise<DeleteResult> {
    return this.client.deleteIn(this.name, key, options);
  }

  /** Writes only if the key is at `version` (0: must not exist); else throws ConflictError (`details.current`). */
  cas(key: string, version: number, value: ApiValue, options?: WriteOptions): Promise<CasResult> {
    return this.client.casIn(this.name, key, version, value, options);
  }

  /**
   * All or nothing: if every compare holds the `success` writes are applied, else the `failure`
   * writes, at one index. A failed compare is not an error: `succeeded` is false.
   */
  txn(spec: TxnSpec, options?: WriteOptions): Promise<TxnResult> {
    return this.client.txnIn(this.name, spec, options);
  }

  /** One page of keys in key order; pass its `next` as `after` for the next page. */
  scan(options?: ScanOptions): Promise<ScanPage> {
    return this.client.scanIn(this.name, options);
  }

  /** Every page of a scan, following the cursors. Each page is a consistent read on its own. */
  async *scanPages(options: ScanOptions = {}): AsyncGenerator<ScanPage, void, undefined> {
    let after = options.after;
    for (;;) {
      const page = await this.scan({ ...options, after });
      yield page;
      if (page.next === undefined) return;
      after = page.next;
    }
  }

  /** Every key of a scan (all pages), in key order. */
  async *scanAll(options: ScanOptions = {}): AsyncGenerator<Entry, void, undefined> {
    for await (const page of this.scanPages(options)) yield* page.items;
  }
}

/** The first of `targets` (in order) with the fewest attempts so far. */
function leastTried(targets: readonly (string | null)[], tries: ReadonlyMap<string | null, number>): string | null {
  let best: string | null = targets[0] ?? null;
  let bestTries = Infinity;
  for (const t of targets) {
    const n = tries.get(t) ?? 0;
    if (n < bestTries) {
      best = t;
      bestTries = n;
    }
  }
  return best;
}

function requestIdOf(options: WriteOptions): string {
  return options.requestId ?? nuid.next();
}

function jsonText(value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined) throw new BadRequestError("value", "cannot be represented as JSON");
  return text;
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Waits for `p`, but no longer than `ms`. */
async function within(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise((r) => (timer = setTimeout(r, Math.max(0, ms))))]);
  clearTimeout(timer);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The members admin op's answer: the membership log's value and each node's report. */
export interface MembersAdminResult {
  readonly view: { readonly epoch: number; readonly members: readonly string[]; readonly previous: readonly string[]; readonly phase: "stable" | "migrating" | "sealing" | "sealed"; readonly version: number };
  readonly nodes: readonly { readonly node: string; readonly membership: MembershipStatus | null }[];
  /** Groups still to move, over every node that answered. */
  readonly left: number;
  /** Groups moved since the nodes started. */
  readonly moved: number;
  /** What the change waits for before its next step; null when stable. */
  readonly waitingFor: string | null;
}
