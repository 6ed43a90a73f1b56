// The NATS bridge for Paxos traffic between nodes.
//
// Out: every message released in one event-loop turn for one peer goes out as ONE NATS
// message (a peer frame, many groups inside), published on `<prefix>.peer.<peer>`. A frame
// that would pass the size limit is split, never truncated.
// In: every frame on `<prefix>.peer.<self>` is decoded and validated; a bad or foreign frame
// is dropped and counted, never trusted, never a crash. Each message goes to its group actor.
//
// This is a plain object, not an nact actor: nact handles each message in its own
// setImmediate, which would split one turn's sends over several turns and defeat batching.
//
// Liveness (used only to route client requests, never by Paxos, whose safety needs no
// liveness): a peer is alive while it was heard from within `silenceMs` (every frame counts;
// an idle link gets an empty frame every `heartbeatMs`) and was not seen down since. "Down" is
// what NATS says at once when a process dies: its subscriptions vanish with its connection, so
// a request to its api subject gets "no responders" (markDown). A paused process (SIGSTOP)
// keeps its connection: only its silence tells, after `silenceMs`. A peer that comes back
// (restarted, resumed, healed) is trusted with requests only after `rejoinMs` of steady frames:
// it comes back behind, often with a backlog to digest, and requests sent to it at once would
// wait for that; its peers catch it up meanwhile (Paxos frames carry what it lacks).
// The same holds the other way round: a node that has just started is the one coming back
// behind. Its peers, first heard from after its own start, are trusted at once (they were not
// gone: this node was), and it does not count ITSELF as a live proposer for its groups until
// it has been up `rejoinMs` (selfSettled): the moment its peers start relaying to it. Before,
// a restarted node relayed its own groups' writes to itself at once while its peers still
// relayed them to the survivor, and the two dueled for every hot group for a second.
// A node that was cut off (it heard from less than a majority of the members, itself
// included) and hears peers again is coming back behind in just the same way: its peers wait
// `rejoinMs` before they trust it, so it trusts them at once and counts itself unsettled for
// as long (its minority-side clients' writes go to the groups' live owners, not into Prepares
// that duel with them).
// Back from a LONG silence (a cut or a pause of STALE_CUT_MS or more), the node also gets, in
// the first few hundred ms, every request NATS held for it meanwhile (a route's TCP buffer, or
// its own socket while paused): 250-330 in one burst in the failover bench, each given up by
// its client long ago. Forwarded or relayed, that burst flooded the live nodes and stalled
// their clients for 100-300 ms after every heal. For STALE_BURST_MS after such a return
// (returningFromCut) the api handler answers queue-subject requests at once instead.

import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { NodeId } from "../protocol/ballot.js";
import type { PeerMessage } from "../protocol/messages.js";
import { decodePeerFrame, encodePeerFrame } from "../protocol/peerCodec.js";

export interface TransportStats {
  framesOut: number;
  messagesOut: number;
  framesIn: number;
  messagesIn: number;
  badFrames: number;
  lastBadReason: string | null;
}

export interface TransportOptions {
  readonly nc: NatsConnection;
  readonly prefix: string;
  readonly cluster: string;
  readonly self: NodeId;
  readonly members: readonly NodeId[];
  /**
   * Every node of the cluster now (the membership view: members change, issue 13); default
   * `members`. Frames from others are refused; heartbeats go to all of them.
   */
  known?(): ReadonlySet<NodeId>;
  readonly maxFrameBytes: number;
  /** A peer not heard from for this long is taken for paused or cut off (default 250). */
  readonly silenceMs?: number;
  /** A peer back from silence or death is alive again after this long (default 1000). */
  readonly rejoinMs?: number;
  /** A validated message from a member, for one of its groups. */
  deliver(from: NodeId, msg: PeerMessage): void;
  onBadFrame?(reason: string): void;
}

/** A silence of every peer at least this long was a cut or a pause, not a stall (returningFromCut). */
const STALE_CUT_MS = 1_000;
/** For this long after such a silence, what arrives is mostly NATS's backlog (returningFromCut). */
const STALE_BURST_MS = 250;

export class Transport {
  readonly stats: TransportStats = { framesOut: 0, messagesOut: 0, framesIn: 0, messagesIn: 0, badFrames: 0, lastBadReason: null };
  /** When each member was last heard from (ms, Date.now()). */
  readonly lastHeard = new Map<NodeId, number>();
  /** When a peer was last seen down (no responders on its api subject). */
  private readonly downAt = new Map<NodeId, number>();
  /** Since when each peer has been heard steadily (reset by a silence or a death). */
  private readonly backSince = new Map<NodeId, number>();
  /** When a frame last went to each peer (an idle link needs a heartbeat). */
  private readonly lastSent = new Map<NodeId, number>();
  private readonly outbox = new Map<NodeId, PeerMessage[]>();
  private flushScheduled = false;
  private sub: Subscription | null = null;
  private readonly members: Set<NodeId>;

  /** When this node started, or came back from being cut off from a majority (Date.now()). */
  private backAt = Date.now();
  /** Until when requests arriving are the backlog of a cut this node just came back from. */
  private staleUntil = 0;

  constructor(private readonly opts: TransportOptions) {
    this.members = new Set(opts.members);
  }

  /** This node has been up for `rejoinMs`: its peers trust it with requests by now. */
  selfSettled(now = Date.now()): boolean {
    return now - this.backAt >= (this.opts.rejoinMs ?? 1_000);
  }

  /**
   * This node came back, within the last STALE_BURST_MS, from hearing no peer for STALE_CUT_MS
   * or more (cut off, or paused): what reaches it now is mostly what NATS held for it during
   * the silence, whose clients gave up long ago. Routing only, like the rest of this view.
   */
  returningFromCut(now = Date.now()): boolean {
    return now < this.staleUntil;
  }

  start(): void {
    this.backAt = Date.now();
    this.sub = this.opts.nc.subscribe(`${this.opts.prefix}.peer.${this.opts.self}`, {
      callback: (err, msg) => {
        if (err === null) this.receive(msg.data);
      },
    });
  }

  send(to: NodeId, msg: PeerMessage): void {
    let box = this.outbox.get(to);
    if (box === undefined) this.outbox.set(to, (box = []));
    box.push(msg);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /**
   * An empty frame to every peer that got no frame for `idleMs`: lets them know we are up
   * (Paxos itself needs no liveness).
   */
  heartbeat(idleMs = 0): void {
    const now = Date.now();
    for (const m of this.opts.known?.() ?? this.members) if (m !== this.opts.self && now - (this.lastSent.get(m) ?? 0) >= idleMs) this.publish(m, []);
  }

  /** Heard from within `silenceMs`, not seen down since, and heard steadily for `rejoinMs`. */
  isAlive(peer: NodeId, now = Date.now()): boolean {
    if (peer === this.opts.self) return true;
    const heard = this.lastHeard.get(peer) ?? -Infinity;
    if (now - heard > (this.opts.silenceMs ?? 250)) return false;
    if ((this.downAt.get(peer) ?? -Infinity) >= heard) return false;
    return now - (this.backSince.get(peer) ?? now) >= (this.opts.rejoinMs ?? 1_000);
  }

  /** NATS said nobody serves the peer's subject: it is down until its next frame. */
  markDown(peer: NodeId): void {
    if (peer !== this.opts.self) this.downAt.set(peer, Date.now());
  }

  flush(): void {
    this.flushScheduled = false;
    for (const [to, messages] of this.outbox) {
      if (messages.length === 0) continue;
      this.publish(to, messages);
    }
    this.outbox.clear();
  }

  private publish(to: NodeId, messages: PeerMessage[]): void {
    const bytes = encodePeerFrame({ from: this.opts.self, cluster: this.opts.cluster, messages });
    if (bytes.length > this.opts.maxFrameBytes && messages.length > 1) {
      // Split, never truncate.
      const half = messages.length >> 1;
      this.publish(to, messages.slice(0, half));
      this.publish(to, messages.slice(half));
      return;
    }
    if (bytes.length > this.opts.maxFrameBytes && messages.length === 1) {
      // One message alone is too big (a value past the limits got through): drop it loudly;
      // the protocol treats it as lost and retries or catches up.
      this.bad(`outgoing ${messages[0]!.type} for ${messages[0]!.group} is ${bytes.length} bytes, over the frame limit`);
      return;
    }
    try {
      this.opts.nc.publish(`${this.opts.prefix}.peer.${to}`, bytes);
      this.lastSent.set(to, Date.now());
      this.stats.framesOut++;
      this.stats.messagesOut += messages.length;
    } catch {
      // Closed or draining connection: Paxos tolerates lost messages.
    }
  }

  private receive(data: Uint8Array): void {
    const decoded = decodePeerFrame(data);
    if (!decoded.ok) return this.bad(decoded.reason);
    const { frame } = decoded;
    if (frame.cluster !== this.opts.cluster) return this.bad(`frame for cluster "${frame.cluster}"`);
    if (!(this.opts.known?.() ?? this.members).has(frame.from) || frame.from === this.opts.self) return this.bad(`frame from non-member "${frame.from}"`);
    this.stats.framesIn++;
    this.stats.messagesIn += frame.messages.length;
    const now = Date.now();
    const before = this.lastHeard.get(frame.from);
    const wasGone = before === undefined || now - before > (this.opts.silenceMs ?? 250) || (this.downAt.get(frame.from) ?? -Infinity) >= before;
    if (wasGone) {
      const rejoinMs = this.opts.rejoinMs ?? 1_000;
      // This node was the one gone (cut off from a majority) when the first peer comes back:
      // it is unsettled from now on, and every peer heard again while it comes back (within a
      // silence of its return) is trusted at once. A peer never heard since this node started
      // was up while this node was not: trusted at once too.
      if (before !== undefined && this.heardFromFew(now)) {
        this.backAt = now;
        if (now - this.lastHeardFromAny() >= STALE_CUT_MS) this.staleUntil = now + STALE_BURST_MS;
      }
      const selfReturning = now - this.backAt < (this.opts.silenceMs ?? 250);
      this.backSince.set(frame.from, before === undefined || selfReturning ? now - rejoinMs : now);
    }
    this.lastHeard.set(frame.from, now);
    for (const msg of frame.messages) this.opts.deliver(frame.from, msg);
  }

  /** When any peer was last heard from (-Infinity: none ever). */
  private lastHeardFromAny(): number {
    let latest = -Infinity;
    for (const [peer, at] of this.lastHeard) if (peer !== this.opts.self && at > latest) latest = at;
    return latest;
  }

  /** Fewer than a majority of the members (this node included) were heard within a silence. */
  private heardFromFew(now: number): boolean {
    let heard = 1;
    for (const [peer, at] of this.lastHeard) if (peer !== this.opts.self && now - at <= (this.opts.silenceMs ?? 250)) heard++;
    return heard * 2 <= this.members.size;
  }

  private bad(reason: string): void {
    this.stats.badFrames++;
    this.stats.lastBadReason = reason;
    this.opts.onBadFrame?.(reason);
  }

  /** No more peer frames in (graceful stop: nothing new may reach the group actors). */
  stopReceiving(): void {
    this.sub?.unsubscribe();
    this.sub = null;
  }

  async stop(): Promise<void> {
    this.stopReceiving();
    this.flush();
  }
}
