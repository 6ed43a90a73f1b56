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
  readonly maxFrameBytes: number;
  /** A validated message from a member, for one of its groups. */
  deliver(from: NodeId, msg: PeerMessage): void;
  onBadFrame?(reason: string): void;
}

export class Transport {
  readonly stats: TransportStats = { framesOut: 0, messagesOut: 0, framesIn: 0, messagesIn: 0, badFrames: 0, lastBadReason: null };
  /** When each member was last heard from (ms, Date.now()). */
  readonly lastHeard = new Map<NodeId, number>();
  private readonly outbox = new Map<NodeId, PeerMessage[]>();
  private flushScheduled = false;
  private sub: Subscription | null = null;
  private readonly members: Set<NodeId>;

  constructor(private readonly opts: TransportOptions) {
    this.members = new Set(opts.members);
  }

  start(): void {
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

  /** An empty frame to every peer: lets them know we are up (Paxos itself needs no liveness). */
  heartbeat(): void {
    for (const m of this.members) if (m !== this.opts.self) this.publish(m, []);
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
    if (!this.members.has(frame.from) || frame.from === this.opts.self) return this.bad(`frame from non-member "${frame.from}"`);
    this.stats.framesIn++;
    this.stats.messagesIn += frame.messages.length;
    this.lastHeard.set(frame.from, Date.now());
    for (const msg of frame.messages) this.opts.deliver(frame.from, msg);
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
