// The members admin op (issue 13): `<prefix>.admin` (queue group: any node answers), JSON
//   {op: "members", action: "show"}
//   {op: "members", action: "add", node} | {action: "remove", node} | {action: "replace", node, with}
//   {op: "members", action: "advance"}
// add/remove/replace cas the membership log `__members` from `stable` at epoch E to `migrating`
// at E+1 (refused while a change is under way: `conflict`). `advance` ends a change step by
// step, each step only when every node's report allows it (membersView.ts has the phases):
//   migrating -> sealing  once every member runs the new view and its last sweep left nothing;
//   sealing   -> sealed   once every member swept again after it saw `sealing`, with nothing left;
//   sealed    -> stable   once every member saw `sealed` (and swept: nothing can be left).
// A removed node that does not answer is not waited for (it is gone; it holds nothing the new
// replicas lack). Every answer carries the view and each node's report (its `status`).
//
// The log is read and written through the ordinary API (a linearizable get, a cas on the key's
// version) with the write header, so the admin op is as safe as any client's cas. Each read or
// write goes to one node of the log's placement at a time, live peers first, and on to the next
// when one cannot decide (`unavailable`, `timeout`, no answer): a node cut off from its peers
// (a partition) still takes requests but cannot read the log, and the queue subject would hand
// it a share of them. A write retried elsewhere keeps its request id, so it is applied once.

import { randomBytes } from "node:crypto";
import { headers as natsHeaders, type Msg, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { NodeId } from "../protocol/ballot.js";
import type { MembershipStatus, StatusResult } from "../protocol/api.js";
import { MEMBERS_GROUP, MEMBERS_KEY, MEMBERS_WRITE_HEADER, foundingView, parseView, type MembersView, type MembersViewHolder } from "./membersView.js";
import { replySubjectProblem } from "./replySubject.js";
import { UNDECIDED_CODES } from "./apiHandler.js";
import type { WireErrorCode } from "../protocol/errors.js";
import { TIMEOUT_HEADER } from "../protocol/codec.js";

const TOKEN = /^[A-Za-z0-9_-]{1,64}$/;

export interface NodeReport {
  readonly node: NodeId;
  /** null: did not answer. */
  readonly membership: MembershipStatus | null;
}

export type AdminReply =
  | { readonly ok: true; readonly view: MembersView; readonly nodes: readonly NodeReport[]; readonly left: number; readonly moved: number; readonly waitingFor: string | null }
  | { readonly ok: false; readonly error: { readonly code: string; readonly message: string } };

export interface MembersAdminOptions {
  readonly nc: NatsConnection;
  readonly prefix: string;
  readonly view: MembersViewHolder;
  readonly log: Logger;
  /** A peer heard from lately (transport.ts isAlive): the log's live nodes are asked first. */
  readonly peerAlive?: (node: NodeId) => boolean;
}

/** The deadline a node is given for one read or write of the log. */
const LOG_ATTEMPT_MS = 3_000;
/** How long one read or write of the log may take, over every node tried (an admin request's answer is awaited 15 s). */
const LOG_BUDGET_MS = 10_000;

export class MembersAdmin {
  private sub: Subscription | null = null;

  constructor(private readonly o: MembersAdminOptions) {}

  start(): void {
    this.sub = this.o.nc.subscribe(`${this.o.prefix}.admin`, {
      queue: `${this.o.prefix}.admin`,
      callback: (err, msg) => void (err === null && this.onRequest(msg)),
    });
  }

  stop(): void {
    this.sub?.unsubscribe();
    this.sub = null;
  }

  private async onRequest(msg: Msg): Promise<void> {
    if (!msg.reply || replySubjectProblem(msg.reply, this.o.prefix) !== null) return;
    let reply: AdminReply;
    try {
      const b = JSON.parse(new TextDecoder().decode(msg.data)) as Record<string, unknown>;
      if (typeof b !== "object" || b === null || b.op !== "members") throw new AdminError("bad_request", 'op must be "members"');
      reply = await this.handle(b);
    } catch (e) {
      const code = e instanceof AdminError ? e.code : "internal";
      reply = { ok: false, error: { code, message: (e as Error).message } };
    }
    try {
      msg.respond(new TextEncoder().encode(JSON.stringify(reply)));
    } catch {
      // closing
    }
  }

  private async handle(b: Record<string, unknown>): Promise<AdminReply> {
    const action = b.action ?? "show";
    const { view, version } = await this.read();
    switch (action) {
      case "show":
        return this.report(view, null);
      case "add":
      case "remove":
      case "replace": {
        if (view.phase !== "stable") throw new AdminError("conflict", `a change to epoch ${view.epoch} is under way (${view.phase}); wait for it to end (paxosstore members advance --wait)`);
        const node = nodeArg(b.node, "node");
        let members: NodeId[];
        if (action === "add") {
          if (view.members.includes(node)) throw new AdminError("bad_request", `${node} is a member already`);
          members = [...view.members, node];
        } else if (action === "remove") {
          if (!view.members.includes(node)) throw new AdminError("bad_request", `${node} is not a member`);
          members = view.members.filter((m) => m !== node);
        } else {
          const by = nodeArg(b.with, "with");
          if (!view.members.includes(node)) throw new AdminError("bad_request", `${node} is not a member`);
          if (view.members.includes(by)) throw new AdminError("bad_request", `${by} is a member already`);
          members = view.members.map((m) => (m === node ? by : m));
        }
        if (members.length === 0) throw new AdminError("bad_request", "the last member cannot be removed");
        const next = await this.write(version, { epoch: view.epoch + 1, members, previous: [...view.members], phase: "migrating" });
        this.o.log.info({ event: "members_change", action, node, epoch: next.epoch, members }, `membership change to epoch ${next.epoch}: ${members.join(",")}`);
        return this.report(next, null);
      }
      case "advance":
        return this.advance(view, version);
      default:
        throw new AdminError("bad_request", `unknown action ${JSON.stringify(action)} (show|add|remove|replace|advance)`);
    }
  }

  private async advance(view: MembersView, version: number): Promise<AdminReply> {
    if (view.phase === "stable") return this.report(view, null);
    const reports = await this.reports(view);
    const waiting = whyNot(view, reports);
    if (waiting !== null) return this.summarize(view, reports, waiting);
    const next = await this.write(version, view.phase === "migrating" ? { ...view, phase: "sealing" } : view.phase === "sealing" ? { ...view, phase: "sealed" } : { ...view, previous: [], phase: "stable" });
    this.o.log.info({ event: "members_change", epoch: next.epoch, phase: next.phase }, `membership epoch ${next.epoch}: ${next.phase}`);
    return this.summarize(next, reports, next.phase === "stable" ? null : `every node to see ${next.phase}`);
  }

  private async report(view: MembersView, waiting: string | null): Promise<AdminReply> {
    return this.summarize(view, await this.reports(view), waiting);
  }

  private summarize(view: MembersView, nodes: NodeReport[], waitingFor: string | null): AdminReply {
    let left = 0;
    let moved = 0;
    for (const n of nodes) {
      left += n.membership?.left ?? 0;
      moved += n.membership?.moved ?? 0;
    }
    return { ok: true, view, nodes, left, moved, waitingFor };
  }

  private async reports(view: MembersView): Promise<NodeReport[]> {
    const nodes = [...new Set([...view.members, ...view.previous])];
    return Promise.all(
      nodes.map(async (node) => {
        try {
          const m = await this.o.nc.request(`${this.o.prefix}.api.${node}`, new TextEncoder().encode(JSON.stringify({ op: "status" })), { timeout: 2_000 });
          const s = JSON.parse(new TextDecoder().decode(m.data)) as StatusResult & { ok: boolean };
          return { node, membership: s.ok ? (s.membership ?? null) : null };
        } catch {
          return { node, membership: null };
        }
      }),
    );
  }

  /** The log's current value, read linearizably. */
  private async read(): Promise<{ view: MembersView; version: number }> {
    const r = await this.api({ op: "get", group: MEMBERS_GROUP, key: MEMBERS_KEY });
    if (r.found !== true) return { view: foundingView(this.o.view.founders), version: 0 };
    const version = r.version as number;
    const view = parseView(JSON.parse(r.value as string), version);
    if (view === null) throw new AdminError("internal", "the membership log holds a malformed value");
    void this.o.view.adopt(view);
    return { view, version };
  }

  private async write(version: number, v: Omit<MembersView, "version">): Promise<MembersView> {
    const value = JSON.stringify({ epoch: v.epoch, members: v.members, previous: v.previous, phase: v.phase });
    // A request id of its own: a retry (following the log to where it moved) is applied once.
    const requestId = `members-${version}-${randomBytes(6).toString("hex")}`;
    const r = await this.api({ op: "cas", group: MEMBERS_GROUP, key: MEMBERS_KEY, version, value, requestId }, true);
    const next = { ...v, version: r.version as number };
    await this.o.view.adopt(next);
    // Every node reads the log again now rather than at its next poll.
    this.o.nc.publish(`${this.o.prefix}.admin.changed`, new Uint8Array());
    return next;
  }

  private async api(body: Record<string, unknown>, write = false): Promise<Record<string, unknown>> {
    const until = Date.now() + LOG_BUDGET_MS;
    let answer: Record<string, unknown> = {};
    let problem = "no node tried";
    // The nodes that hold the log by this node's view, then where a not_replica answer says it
    // lives (it moves too); once every one was tried, all of them again until the budget is spent.
    let targets = this.logOrder(this.o.view.route(MEMBERS_GROUP));
    let queue = [...targets];
    for (let attempt = 0; ; attempt++) {
      const left = until - Date.now();
      if (left <= 0 || attempt >= 12) throw new AdminError("timeout", `the membership log did not answer: ${problem}`);
      if (queue.length === 0) {
        await new Promise((res) => setTimeout(res, 200));
        queue = [...targets];
      }
      const node = queue.shift()!;
      const h = natsHeaders();
      if (write) h.set(MEMBERS_WRITE_HEADER, "1");
      const deadline = Math.max(500, Math.min(LOG_ATTEMPT_MS, left - 500));
      h.set(TIMEOUT_HEADER, String(deadline));
      try {
        const m = await this.o.nc.request(`${this.o.prefix}.api.${node}`, new TextEncoder().encode(JSON.stringify(body)), { timeout: deadline + 1_000, headers: h });
        answer = JSON.parse(new TextDecoder().decode(m.data)) as Record<string, unknown>;
      } catch (e) {
        problem = `${node}: ${(e as Error).message}`;
        continue;
      }
      if (answer.ok === true) return answer;
      const err = answer.error as { code?: string; message?: string; details?: { replicas?: unknown } } | undefined;
      if (err?.code === "conflict") throw new AdminError("conflict", "the membership log changed meanwhile (another operator?): look again (paxosstore members)");
      if (err?.code === undefined || !UNDECIDED_CODES.has(err.code as WireErrorCode)) throw new AdminError(err?.code ?? "internal", `the membership log: ${err?.message ?? "error"}`);
      problem = `${node}: ${err.code}: ${err.message ?? ""}`;
      if (err.code === "not_replica") {
        const replicas = Array.isArray(err.details?.replicas) ? (err.details.replicas as unknown[]).filter((r): r is string => typeof r === "string" && TOKEN.test(r)) : [];
        if (replicas.length > 0) {
          targets = this.logOrder(replicas);
          queue = targets.filter((n) => n !== node);
        }
      }
    }
  }

  /**
   * The nodes to ask for the log, best first: this node and the live peers, then the silent
   * peers; this node last when it hears no peer at all (it may be the one cut off, and then
   * it cannot read the log).
   */
  private logOrder(nodes: readonly NodeId[]): NodeId[] {
    const self = this.o.view.self;
    const alive = (n: NodeId): boolean => n !== self && (this.o.peerAlive?.(n) ?? true);
    const hearsPeers = this.o.peerAlive === undefined || [...this.o.view.known()].some(alive);
    const mine = nodes.includes(self) ? [self] : [];
    return [...(hearsPeers ? mine : []), ...nodes.filter(alive), ...nodes.filter((n) => n !== self && !alive(n)), ...(hearsPeers ? [] : mine)];
  }
}

/**
 * Groups a change may still have to move when it enters `sealing`: groups keep being born in
 * the old placement while it is `migrating` (so `left` may never be 0 at once on every node under
 * load), and none while `sealing`, where new groups cannot be created: that step should be short.
 */
export const SEALING_LEFT_MAX = 16;

/** Why the change cannot take its next step yet; null when it can. */
export function whyNot(view: MembersView, reports: readonly NodeReport[]): string | null {
  let left = 0;
  for (const r of reports) left += r.membership?.left ?? 0;
  for (const r of reports) {
    const m = r.membership;
    if (m === null) {
      if (view.members.includes(r.node)) return `${r.node} to answer`;
      continue; // a removed node that is gone
    }
    if (m.version < view.version) return `${r.node} to learn epoch ${view.epoch} (${view.phase})`;
    if (m.sweptVersion < view.version) return `${r.node} to sweep its groups`;
    if (m.left > 0 && (view.phase !== "migrating" || left > SEALING_LEFT_MAX)) return `${r.node} to move ${m.left} more group${m.left === 1 ? "" : "s"}`;
  }
  return null;
}

class AdminError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function nodeArg(x: unknown, what: string): NodeId {
  if (typeof x !== "string" || !TOKEN.test(x)) throw new AdminError("bad_request", `${what} must be a node id (letters, digits, "_" and "-")`);
  return x;
}
