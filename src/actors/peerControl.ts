// Node-to-node questions about membership, outside Paxos, as NATS request/reply:
//   <prefix>.peer.<node>.seen    "have you seen me before?" (and: remember me under this identity)
//   <prefix>.peer.<node>.groups  "which groups do you hold a record of where I am a replica, and in
//                                 which configuration?" (lostDisk.ts)
//   <prefix>.peer.<node>.settings "what are your cluster-wide settings?" (they must be equal)
// They are under `<prefix>.peer.>`, which the secured nats-server config (infra/nats) lets only
// nodes use: a client cannot register an identity or read the list. The Paxos transport listens
// on `<prefix>.peer.<node>` exactly, so these subjects never reach it.
//
// The service answers as soon as storage is open, before this node has decided anything about
// its own identity: nodes of a brand-new cluster, each waiting for the others' answers, can
// answer one another.

import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { NodeId } from "../protocol/ballot.js";
import type { Configuration } from "../protocol/ops.js";
import type { Storage } from "../storage/storage.js";
import type { MembersSeen, SeenMember } from "./membersSeen.js";
import type { MembersView } from "./membersView.js";
import { RateLimitedLog } from "./rateLimitedLog.js";
import { replySubjectProblem } from "./replySubject.js";

export interface SeenRequest {
  readonly cluster: string;
  readonly from: NodeId;
  /** The identity the asker has or will take; the peer remembers it before answering. */
  readonly identityId: string;
}

export interface GroupsRequest {
  readonly cluster: string;
  readonly from: NodeId;
  /** The last group of the previous page; null for the first page. */
  readonly after: string | null;
}

export interface SettingsRequest {
  readonly cluster: string;
  readonly from: NodeId;
}

/**
 * Settings every node must share. requestMemory: every replica decides dedupe by the same rule
 * on the same log; with different windows one replica applies a retry its peers deduplicate,
 * and the replicas' data differ at one chosen index.
 */
export interface ClusterSettings {
  readonly requestMemory: number;
}

export type SettingsReply = ({ readonly ok: true; readonly node: NodeId } & ClusterSettings) | { readonly ok: false; readonly error: string };

/**
 * A refusal says `notMember` when the asker is not a node of the cluster as this node knows it
 * (not a founder, not in its membership view): e.g. a node started with --join before it was
 * added (newOrLost.ts).
 */
export type Refusal = { readonly ok: false; readonly error: string; readonly notMember?: true };
export type SeenReply = { readonly ok: true; readonly node: NodeId; readonly seen: SeenMember | null } | Refusal;
export type GroupsReply =
  | {
      readonly ok: true;
      readonly node: NodeId;
      readonly groups: string[];
      /**
       * Per group (same order), the configuration this node stores for it: its meta's, or the
       * founding placement for a group never reconfigured; null when it does not know (it is
       * joining the group, or the record is unreadable). Absent from a node that predates it.
       */
      readonly configs?: (Configuration | null)[];
      /** This node's membership view (membersView.ts), so a lost disk learns whom to ask. */
      readonly view?: { readonly version: number; readonly view: unknown };
      readonly next: string | null;
    }
  | { readonly ok: false; readonly error: string };

/** Bytes of group names per page: well below NATS's default max_payload of 1 MiB. */
const PAGE_BYTES = 256 * 1024;
const IDENTITY_ID = /^[0-9a-f]{1,64}$/;

export interface PeerControlOptions {
  readonly nc: NatsConnection;
  readonly prefix: string;
  readonly cluster: string;
  readonly self: NodeId;
  readonly members: readonly NodeId[];
  /** Every node of the cluster now (members change: issue 13); default `members`. */
  known?(): ReadonlySet<NodeId>;
  readonly storage: Storage;
  readonly seen: MembersSeen;
  readonly settings: ClusterSettings;
  replicasFor(group: string): readonly NodeId[];
  /** The configuration of a stored group that carries none (born at epoch 0); absent: not listed. */
  foundingBirth?(group: string): Configuration;
  /** This node's membership view, sent with the group list; absent: not sent. */
  view?(): MembersView;
  readonly log: Logger;
}

export interface PeerQuestions {
  readonly nc: NatsConnection;
  readonly prefix: string;
  readonly cluster: string;
  readonly self: NodeId;
  readonly members: readonly NodeId[];
  readonly log: Logger;
  /** Per question. */
  readonly askTimeoutMs?: number;
  /** Between rounds of questions to peers that did not answer. */
  readonly retryMs?: number;
}

export type ControlQuestion = "seen" | "groups" | "settings";
type ControlReply = SeenReply | GroupsReply | SettingsReply;

export function controlSubject(prefix: string, node: NodeId, question: ControlQuestion): string {
  return `${prefix}.peer.${node}.${question}`;
}

export class PeerControl {
  private subs: Subscription[] = [];
  /** Refusals are per message: a flood of bad questions must not flood the log. */
  private readonly limited: RateLimitedLog;

  constructor(private readonly opts: PeerControlOptions) {
    this.limited = new RateLimitedLog(opts.log);
  }

  start(): void {
    const { nc, prefix, self } = this.opts;
    const on = (question: ControlQuestion, handle: (b: Record<string, unknown>) => Promise<ControlReply>): Subscription =>
      nc.subscribe(controlSubject(prefix, self, question), {
        callback: (err, msg) => {
          if (err === null) void this.answer(msg, handle);
        },
      });
    this.subs.push(
      on("seen", (b) => this.onSeen(b)),
      on("groups", (b) => this.onGroups(b)),
      on("settings", () => Promise.resolve({ ok: true, node: this.opts.self, ...this.opts.settings })),
    );
  }

  stop(): void {
    for (const s of this.subs) s.unsubscribe();
    this.subs = [];
  }

  private async answer(msg: Msg, handle: (body: Record<string, unknown>) => Promise<ControlReply>): Promise<void> {
    // As for client requests (replySubject.ts): answer only on an inbox, never on a subject
    // the asker chose under the cluster's prefix, which this node's user may publish to.
    const problem = msg.reply ? replySubjectProblem(msg.reply, this.opts.prefix) : "is missing";
    if (problem !== null) {
      this.limited.warn("peer_control_bad_reply", { subject: msg.subject, reply: msg.reply ?? null, problem }, "dropped a peer control question: its reply subject is not an inbox");
      return;
    }
    let reply: ControlReply;
    try {
      const body = JSON.parse(new TextDecoder().decode(msg.data)) as unknown;
      if (typeof body !== "object" || body === null) throw new Error("not a JSON object");
      const b = body as Record<string, unknown>;
      if (b.cluster !== this.opts.cluster) throw new Error(`question for cluster ${String(b.cluster)}`);
      if (typeof b.from !== "string" || !(this.opts.known?.().has(b.from) ?? this.opts.members.includes(b.from)) || b.from === this.opts.self) throw new NotMemberError(`question from non-member ${String(b.from)}`);
      reply = await handle(b);
    } catch (e) {
      this.limited.warn("peer_control_refused", { subject: msg.subject, err: e }, "refused a peer control question");
      reply = { ok: false, error: (e as Error).message, ...(e instanceof NotMemberError ? { notMember: true as const } : {}) };
    }
    try {
      msg.respond(new TextEncoder().encode(JSON.stringify(reply)));
    } catch {
      // The connection is closing: the asker retries.
    }
  }

  private async onSeen(b: Record<string, unknown>): Promise<SeenReply> {
    if (typeof b.identityId !== "string" || !IDENTITY_ID.test(b.identityId)) throw new Error("bad identityId");
    // Durable before the answer leaves: the asker may vote as soon as it has its answers.
    const before = await this.opts.seen.note(b.from as string, b.identityId);
    return { ok: true, node: this.opts.self, seen: before ?? null };
  }

  private async onGroups(b: Record<string, unknown>): Promise<GroupsReply> {
    const after = b.after;
    if (after !== null && typeof after !== "string") throw new Error("bad after");
    const from = b.from as NodeId;
    const groups: string[] = [];
    const configs: (Configuration | null)[] = [];
    let bytes = 0;
    let skipping = after !== null;
    // Engines list in a stable order and never drop a group, so `after` is a cursor. Each page
    // walks from the start: one seek per group, paid once per lost disk.
    for await (const group of this.opts.storage.listGroups()) {
      if (skipping) {
        if (group === after) skipping = false;
        continue;
      }
      // Where the group lives (its stored configuration) or should live (placement, during a
      // change both the old and the new one).
      const config = await this.storedConfig(group);
      if (!this.opts.replicasFor(group).includes(from) && !(config?.replicas.includes(from) ?? false)) continue;
      if (bytes > PAGE_BYTES) return { ok: true, node: this.opts.self, groups, configs, ...this.viewPart(), next: groups[groups.length - 1]! };
      groups.push(group);
      configs.push(config);
      bytes += Buffer.byteLength(group) + 4 + (config === null ? 4 : 24 + config.replicas.reduce((n, r) => n + Buffer.byteLength(r) + 3, 0));
    }
    if (skipping) throw new Error(`cursor group ${JSON.stringify(after)} not found`);
    return { ok: true, node: this.opts.self, groups, configs, ...this.viewPart(), next: null };
  }

  private viewPart(): { view?: { version: number; view: unknown } } {
    const v = this.opts.view?.();
    return v === undefined ? {} : { view: { version: v.version, view: { epoch: v.epoch, members: v.members, previous: v.previous, phase: v.phase } } };
  }

  /** The configuration of the open instance of a group stored here; null when unknown. */
  private async storedConfig(group: string): Promise<Configuration | null> {
    if (this.opts.foundingBirth === undefined) return null;
    let meta;
    try {
      meta = await this.opts.storage.loadMeta(group);
    } catch {
      return null; // unreadable (it fails its checksum): listed by placement alone
    }
    // A joiner's stored configuration is the one it is to join, perhaps not chosen yet.
    if (meta === null || meta.joining !== undefined) return null;
    return meta.config ?? this.opts.foundingBirth(group);
  }
}

class NotMemberError extends Error {}

/** Asks `peer` one question; null when it does not answer in time (down, or no responders). */
export async function ask<R extends ControlReply>(nc: NatsConnection, prefix: string, peer: NodeId, question: ControlQuestion, body: SeenRequest | GroupsRequest | SettingsRequest, timeoutMs: number): Promise<R | null> {
  try {
    const m = await nc.request(controlSubject(prefix, peer, question), new TextEncoder().encode(JSON.stringify(body)), { timeout: timeoutMs });
    return JSON.parse(new TextDecoder().decode(m.data)) as R;
  } catch {
    return null;
  }
}
