// What an operator watches on a node, beside the Paxos traffic itself: which peers are up
// (from their frames and heartbeats), which key-groups are catching up or recovering. These
// observe the node's traffic from outside the group actors (they change no protocol state);
// the numbers go to the health endpoint (health.ts) and the transitions to the log.

import type { Logger } from "pino";
import type { NodeId } from "../protocol/ballot.js";
import type { PeerMessage } from "../protocol/messages.js";
import { RateLimitedLog } from "./rateLimitedLog.js";

/** Logs "peer up" / "peer down" when a member's frames start or stop arriving. */
export class PeerWatch {
  private readonly up = new Set<NodeId>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly peers: readonly NodeId[],
    private readonly lastHeard: ReadonlyMap<NodeId, number>,
    private readonly log: Logger,
    /** Silent this long: down. */
    private readonly downAfterMs = 10_000,
  ) {}

  start(everyMs = 1_000): void {
    this.timer = setInterval(() => this.check(), everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Peers heard from recently. */
  get seen(): NodeId[] {
    return this.peers.filter((p) => this.up.has(p));
  }

  check(now = Date.now()): void {
    for (const peer of this.peers) {
      const heard = this.lastHeard.get(peer);
      const alive = heard !== undefined && now - heard < this.downAfterMs;
      if (alive && !this.up.has(peer)) {
        this.up.add(peer);
        this.log.info({ event: "peer_up", peer }, `peer ${peer} is up`);
      } else if (!alive && this.up.has(peer)) {
        this.up.delete(peer);
        this.log.warn({ event: "peer_down", peer, silentMs: heard === undefined ? null : now - heard }, `peer ${peer} is down (no frame for ${this.downAfterMs} ms)`);
      }
    }
  }
}

/** Key-groups behind (asking peers to catch up) or recovering (a stored record failed its checksum). */
export class GroupActivity {
  /** Group -> when it last asked a peer to catch it up. */
  private readonly catchingUp = new Map<string, number>();
  private readonly lost = new Set<string>();
  private readonly limited: RateLimitedLog;
  catchUpRequests = 0;
  catchUpAnswers = 0;

  constructor(
    private readonly log: Logger,
    private readonly windowMs = 10_000,
  ) {
    this.limited = new RateLimitedLog({ warn: (fields: object, msg: string) => log.info(fields, msg) } as Pick<Logger, "warn">, { burst: 20 });
  }

  /** Every message the node sends. */
  sent(to: NodeId, msg: PeerMessage): void {
    if (msg.type !== "catchupRequest") return;
    this.catchUpRequests++;
    if (!this.catchingUp.has(msg.group)) this.limited.warn("group_catch_up", { group: msg.group, from: to }, `group ${msg.group} is behind: catching up from ${to}`);
    this.catchingUp.set(msg.group, Date.now());
  }

  /** Every message the node receives. */
  received(from: NodeId, msg: PeerMessage): void {
    if (msg.type !== "catchupEntry" && msg.type !== "catchupSnapshot") return;
    this.catchUpAnswers++;
    if (msg.type === "catchupEntry" && this.catchingUp.delete(msg.group)) {
      this.limited.warn("group_caught_up", { group: msg.group, from }, `group ${msg.group} caught up from ${from}`);
    }
  }

  /** A stored record of the group failed its checksum: it recovers from its peers. */
  lostGroup(group: string): void {
    this.lost.add(group);
  }

  snapshot(now = Date.now()): { groupsCatchingUp: number; groupsLostSinceStart: number; catchUpRequests: number; catchUpAnswers: number } {
    for (const [g, at] of this.catchingUp) if (now - at > this.windowMs) this.catchingUp.delete(g);
    return { groupsCatchingUp: this.catchingUp.size, groupsLostSinceStart: this.lost.size, catchUpRequests: this.catchUpRequests, catchUpAnswers: this.catchUpAnswers };
  }
}
