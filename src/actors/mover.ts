// The membership mover (issue 13, DESIGN.md "Node wiring"): moves the groups this node holds to
// where the current members place them, and drops the copies it no longer replicates.
//
// For each group held here as a voter whose replicas differ from placement(members), ONE node
// drives the move: the first node of the new placement that is already a replica (else the
// configuration's first). It (1) asks each joiner, over `<prefix>.peer.<node>.join`, to create
// the group marked `joining` (durable before the answer), (2) proposes the reconfiguration to
// its own replica (the old configuration decides it), (3) waits until a majority of the new
// replicas vote at or past that index (the joiners installed the data). Lazily: a request for
// a group queues it first; in the background: a sweep over every group stored here, at most
// `ratePerSecond` moves a second.
//
// Nothing moves until every member that answers `status` runs the view (membersKnowView).
//
// A copy this node was removed from is dropped once the change is `stable` (every group of the
// change moved, so the new replicas hold it). Progress (`left`: groups held here still to move,
// counted by the last full sweep) goes into `status`; the admin op ends a change only when every
// node's sweep, begun after it saw the change, found nothing left (membersAdmin.ts).

import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { NodeId } from "../protocol/ballot.js";
import type { CallId, Outcome } from "../protocol/io.js";
import type { Configuration } from "../protocol/ops.js";
import type { Storage } from "../storage/storage.js";
import type { GroupInfo, GroupMsg } from "./keyGroup.js";
import type { MembersViewHolder } from "./membersView.js";
import { replySubjectProblem } from "./replySubject.js";

export interface MoverStats {
  /** Groups this node moved (drove the reconfiguration of) since it started. */
  moved: number;
  /** Copies dropped after a change. */
  dropped: number;
  /**
   * Groups held here still to move: every group the sweeps or a request found needing a move
   * and not yet seen moved (a group born here during a change is in it from its first request).
   */
  left: number;
  /** The view version the last full sweep began at (-1: none yet). */
  sweptVersion: number;
  /** Groups held here (voter copies), as counted by the last full sweep. */
  held: number;
  /** Removed copies still held here. */
  removedHeld: number;
  lastError: string | null;
}

export interface MoverOptions {
  readonly nc: NatsConnection;
  readonly prefix: string;
  readonly cluster: string;
  readonly self: NodeId;
  readonly view: MembersViewHolder;
  readonly storage: Storage;
  dispatch(group: string, msg: GroupMsg): void;
  /** Groups in memory now: one born here may not be on disk yet when a sweep lists the disk. */
  liveGroups(): string[];
  /** Moves a second at most (background and lazy together). */
  readonly ratePerSecond: number;
  readonly log: Logger;
}

const JOIN_TIMEOUT_MS = 5_000;
const RECONFIGURE_TIMEOUT_MS = 5_000;
const JOINED_WAIT_MS = 15_000;
/** A group left this long by its driver is moved by any of its replicas. */
const DRIVER_GRACE_MS = 3_000;

export class Mover {
  readonly stats: MoverStats = { moved: 0, dropped: 0, left: 0, sweptVersion: -1, held: 0, removedHeld: 0, lastError: null };
  private readonly lazy = new Set<string>();
  private readonly calls = new Map<CallId, (o: Outcome) => void>();
  private nextCall = 0;
  private subs: Subscription[] = [];
  private stopped = false;
  private wake: (() => void) | null = null;
  private lastMoveAt = 0;
  /** The view version every answering member was seen running (membersKnowView). */
  private viewKnownAt = -1;
  private viewAskedAt = 0;
  private viewBehindLogged = -1;
  private readonly busy = new Set<string>();
  /** Groups held here that need a move (`left` is its size), since when (ms). */
  private readonly pending = new Map<string, number>();

  constructor(private readonly o: MoverOptions) {
    o.view.onChange(() => this.poke());
  }

  start(): void {
    const { nc, prefix, self } = this.o;
    const on = (question: string, handle: (b: Record<string, unknown>) => Promise<unknown>): Subscription =>
      nc.subscribe(`${prefix}.peer.${self}.${question}`, { callback: (err, msg) => void (err === null && this.answerPeer(msg, handle)) });
    this.subs.push(
      on("join", (b) => this.onJoin(b)),
      on("group", (b) => this.onGroup(b)),
    );
    void this.loop();
  }

  stop(): void {
    this.stopped = true;
    for (const s of this.subs) s.unsubscribe();
    this.subs = [];
    this.poke();
  }

  /** Owns reconfigure calls (negative ids), the api handler the others. */
  owns(call: CallId): boolean {
    return call < 0;
  }

  answer(call: CallId, outcome: Outcome): void {
    const f = this.calls.get(call);
    this.calls.delete(call);
    f?.(outcome);
  }

  /** A request reached a group held here: move it first if it needs it (lazy move). */
  touch(group: string): void {
    const v = this.o.view.view;
    if (v.phase === "stable" && this.stats.removedHeld === 0) return;
    if (this.lazy.size < 10_000 && !this.busy.has(group)) {
      this.lazy.add(group);
      this.poke();
    }
  }

  private poke(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  // ---- The loop --------------------------------------------------------------------------------

  private async loop(): Promise<void> {
    while (!this.stopped) {
      const version = this.o.view.view.version;
      // While a change is under way, groups keep being born in the old placement (the node that
      // drives a group's move may never see a request for it): sweep again and again.
      const changing = this.o.view.view.phase !== "stable";
      const needsSweep = changing || this.stats.sweptVersion !== version || this.stats.left > 0 || this.stats.removedHeld > 0;
      if (needsSweep) {
        try {
          await this.sweep(version);
        } catch (e) {
          this.stats.lastError = (e as Error).message;
          this.o.log.warn({ event: "mover_error", err: e }, "membership mover: sweep failed; retrying");
          await this.sleep(1_000);
        }
      }
      if (this.stopped) return;
      await this.drainLazy();
      // Idle: wait for a new view or a lazy move; sweep again now and then while work is left.
      const again = changing || this.stats.left > 0 || this.stats.removedHeld > 0 ? 1_000 : 5_000;
      await new Promise<void>((res) => {
        const t = setTimeout(res, again);
        this.wake = () => {
          clearTimeout(t);
          res();
        };
      });
    }
  }

  private async drainLazy(): Promise<void> {
    while (this.lazy.size > 0 && !this.stopped) {
      const group = this.lazy.values().next().value as string;
      this.lazy.delete(group);
      await this.processCounted(group);
    }
  }

  /** process(), keeping `pending` (and so `left`) up to date. */
  private async processCounted(group: string): Promise<Processed> {
    let r: Processed;
    try {
      r = await this.process(group);
    } catch (e) {
      this.noteError(group, e);
      r = "left";
    }
    if (r === "left") {
      if (!this.pending.has(group)) this.pending.set(group, Date.now());
    } else if (r !== "busy") this.pending.delete(group);
    this.stats.left = this.pending.size;
    return r;
  }

  private async sweep(version: number): Promise<void> {
    let held = 0;
    let removedHeld = 0;
    const seen = new Set<string>();
    const groups = async function* (o: MoverOptions): AsyncIterable<string> {
      for await (const g of o.storage.listGroups()) yield g;
      for (const g of o.liveGroups()) yield g;
    };
    for await (const group of groups(this.o)) {
      if (seen.has(group)) continue;
      seen.add(group);
      if (this.stopped) return;
      if (this.o.view.view.version !== version) return; // a newer view: start over
      await this.drainLazy();
      const r = await this.processCounted(group);
      if (r !== "none" && r !== "removed") held++;
      if (r === "removed") removedHeld++;
    }
    this.stats.held = held;
    this.stats.removedHeld = removedHeld;
    this.stats.sweptVersion = version;
  }

  private noteError(group: string, e: unknown): void {
    this.stats.lastError = `${group}: ${(e as Error).message}`;
    this.o.log.warn({ event: "mover_error", group, err: e }, "membership mover: a group did not move; it is retried");
  }

  /** One group: moved or dropped if this node should; what is left of it. */
  private async process(group: string): Promise<Processed> {
    if (this.busy.has(group)) return "busy";
    this.busy.add(group);
    try {
      const info = await this.inspect(group);
      if (info === null) return "none";
      const v = this.o.view.view;
      if (info.role === "removed") {
        if (v.phase !== "stable") return "removed";
        const dropped = await new Promise<boolean>((res) => this.o.dispatch(group, { type: "drop", epoch: info.members.epoch, done: res }));
        if (!dropped) return "removed";
        this.stats.dropped++;
        return "none";
      }
      if (info.role !== "voter") return "ok"; // joining or recovering: its driver or recovery moves it
      const target = this.o.view.target(group);
      if (sameSet(info.members.replicas, target) || info.members.epoch >= v.epoch) return "ok";
      const driver = target.find((n) => info.members.replicas.includes(n)) ?? info.members.replicas[0];
      // The driver moves it; this node reports it until then. A driver may not hold the group
      // (it did not take part in its birth): after a while any replica drives the move
      // (two drivers are harmless: a reconfiguration is idempotent by epoch, so is the joiner mark).
      const since = this.pending.get(group);
      if (driver !== this.o.self && (since === undefined || Date.now() - since < DRIVER_GRACE_MS)) return "left";
      if (!(await this.membersKnowView(v.version, v.members))) return "left";
      await this.rateLimit();
      await this.move(group, info, { epoch: v.epoch, replicas: [...target] });
      return "ok";
    } finally {
      this.busy.delete(group);
    }
  }

  /**
   * Moves begin only once every member that answers runs the view (`status`: its version).
   * A node behind the view does not know the nodes it adds, and drops their frames (transport.ts
   * takes frames only from the nodes its view names): in a configuration that needs it and a
   * joiner for a majority, the group is stuck, and when that group is the membership log
   * itself, the node never reads the view that would let it take them (found with one member
   * partitioned: the log moved to {n2, n3, n4} while n2 had not read the change, n3 was cut
   * off, and nothing could read the log until the heal). A member that does not answer (down,
   * or cut off from NATS) is not waited for: it reads the view when it is back, before it
   * takes part (a node reads the log at start). Asked at most once a second; once every member
   * was seen at a version, not again for it.
   */
  private async membersKnowView(version: number, members: readonly NodeId[]): Promise<boolean> {
    if (this.viewKnownAt >= version) return true;
    if (Date.now() - this.viewAskedAt < 1_000) return false;
    this.viewAskedAt = Date.now();
    const behind: string[] = [];
    await Promise.all(
      members
        .filter((n) => n !== this.o.self)
        .map(async (n) => {
          try {
            const m = await this.o.nc.request(`${this.o.prefix}.api.${n}`, new TextEncoder().encode(JSON.stringify({ op: "status" })), { timeout: 2_000 });
            const r = JSON.parse(new TextDecoder().decode(m.data)) as { ok?: boolean; membership?: { version?: unknown } };
            const seen = r.ok === true ? r.membership?.version : undefined;
            if (typeof seen === "number" && seen < version) behind.push(n);
          } catch {
            // no answer: not waited for
          }
        }),
    );
    if (behind.length > 0) {
      if (this.viewBehindLogged !== version) {
        this.viewBehindLogged = version;
        this.o.log.info({ event: "mover_waits", version, behind }, `membership mover: waiting for ${behind.join(", ")} to read view version ${version} before moving groups`);
      }
      return false;
    }
    this.viewKnownAt = version;
    return true;
  }

  private async rateLimit(): Promise<void> {
    const gap = 1000 / Math.max(1, this.o.ratePerSecond);
    const wait = this.lastMoveAt + gap - Date.now();
    if (wait > 0) await this.sleep(wait);
    this.lastMoveAt = Date.now();
  }

  private async move(group: string, info: GroupInfo, config: Configuration): Promise<void> {
    const from = info.members.replicas;
    const joiners = config.replicas.filter((n) => !from.includes(n));
    // (1) Every joiner holds the durable joining mark before the reconfiguration can be chosen.
    for (const j of joiners) {
      const r = await this.ask<{ ok: boolean; error?: string }>(j, "join", { group, config, sources: from }, JOIN_TIMEOUT_MS);
      if (r === null || !r.ok) throw new Error(`joiner ${j} did not take group ${group}: ${r?.error ?? "no answer"}`);
    }
    // (2) The old configuration decides the new one.
    const outcome = await this.reconfigure(group, config);
    if (outcome.kind !== "reconfigured") throw new Error(`reconfigure ${group}: ${outcome.kind === "error" ? `${outcome.code}: ${outcome.message}` : outcome.kind}`);
    if (outcome.config.epoch > config.epoch || !sameSet(outcome.config.replicas, config.replicas)) return; // a later change won
    // (3) Moved once a majority of the new replicas vote at or past the reconfiguration.
    const until = Date.now() + JOINED_WAIT_MS;
    const majority = Math.floor(config.replicas.length / 2) + 1;
    for (;;) {
      const infos = await Promise.all(config.replicas.map((n) => (n === this.o.self ? this.inspect(group) : this.ask<{ ok: boolean; info: GroupInfo | null }>(n, "group", { group }, 2_000).then((r) => r?.info ?? null))));
      const voting = infos.filter((i) => i !== null && i.role === "voter" && i.chosen >= outcome.index && i.members.epoch >= config.epoch).length;
      if (voting >= majority) break;
      if (Date.now() > until) throw new Error(`group ${group}: the new replicas did not catch up in ${JOINED_WAIT_MS} ms`);
      await this.sleep(100);
    }
    this.stats.moved++;
    this.o.log.debug({ event: "group_moved", group, from, to: config.replicas, epoch: config.epoch }, "group moved");
  }

  private inspect(group: string): Promise<GroupInfo | null> {
    return new Promise((res) => this.o.dispatch(group, { type: "inspect", reply: res }));
  }

  private reconfigure(group: string, config: Configuration): Promise<Outcome> {
    const call = -++this.nextCall;
    return new Promise((res) => {
      const t = setTimeout(() => this.answer(call, { kind: "error", code: "timeout", message: "no answer from the group" }), RECONFIGURE_TIMEOUT_MS + 2_000);
      this.calls.set(call, (o) => {
        clearTimeout(t);
        res(o);
      });
      this.o.dispatch(group, { type: "reconfigure", call, config, deadline: performance.now() + RECONFIGURE_TIMEOUT_MS });
    });
  }

  // ---- Peer questions --------------------------------------------------------------------------

  private async onJoin(b: Record<string, unknown>): Promise<unknown> {
    const group = b.group;
    const config = b.config as Configuration | undefined;
    const from = b.sources; // (b.from is the asking node)
    if (typeof group !== "string" || typeof config !== "object" || config === null || !Array.isArray(config.replicas) || typeof config.epoch !== "number" || !Array.isArray(from)) throw new Error("bad join");
    if (!config.replicas.includes(this.o.self)) throw new Error("this node is not in that configuration");
    await new Promise<void>((res, rej) => this.o.dispatch(group, { type: "join", config, from: from as string[], done: (e) => (e === null ? res() : rej(e)) }));
    return { ok: true };
  }

  private async onGroup(b: Record<string, unknown>): Promise<unknown> {
    if (typeof b.group !== "string") throw new Error("bad group");
    return { ok: true, info: await this.inspect(b.group) };
  }

  private async answerPeer(msg: Msg, handle: (b: Record<string, unknown>) => Promise<unknown>): Promise<void> {
    if (!msg.reply || replySubjectProblem(msg.reply, this.o.prefix) !== null) return;
    let reply: unknown;
    try {
      const b = JSON.parse(new TextDecoder().decode(msg.data)) as Record<string, unknown>;
      if (typeof b !== "object" || b === null || b.cluster !== this.o.cluster) throw new Error("question for another cluster");
      if (typeof b.from !== "string" || !this.o.view.known().has(b.from)) throw new Error(`question from unknown node ${String(b.from)}`);
      reply = await handle(b);
    } catch (e) {
      reply = { ok: false, error: (e as Error).message };
    }
    try {
      msg.respond(new TextEncoder().encode(JSON.stringify(reply)));
    } catch {
      // closing
    }
  }

  private async ask<R>(peer: NodeId, question: string, body: Record<string, unknown>, timeoutMs: number): Promise<R | null> {
    try {
      const m = await this.o.nc.request(`${this.o.prefix}.peer.${peer}.${question}`, new TextEncoder().encode(JSON.stringify({ ...body, cluster: this.o.cluster, from: this.o.self })), { timeout: timeoutMs });
      return JSON.parse(new TextDecoder().decode(m.data)) as R;
    } catch {
      return null;
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms));
  }
}

type Processed = "none" | "ok" | "left" | "removed" | "busy";

function sameSet(a: readonly NodeId[], b: readonly NodeId[]): boolean {
  return a.length === b.length && a.every((n) => b.includes(n));
}
