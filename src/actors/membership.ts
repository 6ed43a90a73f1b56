// This node's place in the cluster, outside Paxos: who it is (identity.ts), which members it has
// seen (membersSeen.ts), the questions it answers for its peers (peerControl.ts), and, at start,
// whether an empty data directory is a new node or a lost disk (newOrLost.ts). The node starts
// this before any Paxos traffic and keeps it running.

import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { NodeId } from "../protocol/ballot.js";
import type { Configuration } from "../protocol/ops.js";
import type { Storage } from "../storage/storage.js";
import type { NodeIdentity } from "./identity.js";
import type { LostDiskState } from "./lostDisk.js";
import { MembersSeen } from "./membersSeen.js";
import type { MembersView } from "./membersView.js";
import { resolveIdentity } from "./newOrLost.js";
import type { NodeConfig } from "./nodeConfig.js";
import { IdentityError } from "./identity.js";
import { ask, PeerControl, type ClusterSettings, type SeenReply, type SettingsReply } from "./peerControl.js";

export interface Membership {
  readonly identity: NodeIdentity;
  /** Non-null when this node lost its disk and must recover before it votes (lostDisk.ts). */
  readonly lostDisk: LostDiskState | null;
  /** This process is the first ever to run Paxos on this data directory (newOrLost.ts). */
  readonly firstLife: boolean;
  /** Once Paxos runs: tell every peer who we are, and remember members heard from. */
  afterStart(heard: { readonly lastHeard: ReadonlyMap<NodeId, number> }): void;
  stop(): void;
}

export async function startMembership(
  config: NodeConfig,
  storage: Storage,
  nc: NatsConnection,
  prefix: string,
  replicasFor: (group: string) => readonly NodeId[],
  log: Logger,
  known?: () => ReadonlySet<NodeId>,
  foundingBirth?: (group: string) => Configuration,
  view?: () => MembersView,
): Promise<Membership> {
  const seen = new MembersSeen(storage, log);
  await seen.load();
  const settings: ClusterSettings = { requestMemory: config.requestMemory };
  const control = new PeerControl({ nc, prefix, cluster: config.cluster, self: config.nodeId, members: config.members, known, storage, seen, settings, replicasFor, foundingBirth, view, log });
  control.start();
  let resolved;
  try {
    resolved = await resolveIdentity({ nc, prefix, cluster: config.cluster, self: config.nodeId, members: config.members, log, storage, dataDir: config.dataDir, newNode: config.newNode, join: config.join });
    await checkSettings(nc, prefix, config, settings);
  } catch (e) {
    control.stop();
    throw e;
  }
  const { identity, lostDisk } = resolved;
  const timers: NodeJS.Timeout[] = [];
  let stopped = false;

  // Every peer learns our identity (a node whose data predates identities, or one that found
  // a lost disk on the first "yes", or a node added later, has not told all of them yet): the
  // founders and every node of the membership view as it becomes known (a node added later is
  // asked about too when it restarts on an empty directory: newOrLost.ts). Retried until each
  // answers.
  let helloTimer: NodeJS.Timeout | null = null;
  const hello = async (): Promise<void> => {
    const told = new Set<NodeId>([config.nodeId]);
    const waiting = (): NodeId[] => [...new Set([...config.members, ...(known?.() ?? [])])].filter((m) => !told.has(m));
    while (!stopped) {
      for (const peer of waiting()) {
        const r = await ask<SeenReply>(nc, prefix, peer, "seen", { cluster: config.cluster, from: config.nodeId, identityId: identity.identityId }, 2_000);
        if (r !== null && r.ok) told.add(peer);
      }
      // Members added later are told once this node reads the view that names them.
      await new Promise<void>((res) => {
        if (helloTimer !== null) clearTimeout(helloTimer);
        helloTimer = setTimeout(res, waiting().length > 0 ? 2_000 : 5_000);
      });
    }
  };

  return {
    identity,
    lostDisk,
    firstLife: resolved.firstLife,
    afterStart(heard) {
      void hello();
      // A member heard from is remembered even if it never said who it is (older data).
      timers.push(
        setInterval(() => {
          for (const [member] of heard.lastHeard) if (seen.get(member) === undefined) void seen.note(member, null).catch(() => undefined);
        }, 2_000),
      );
    },
    stop() {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      if (helloTimer !== null) clearTimeout(helloTimer);
      control.stop();
    },
  };
}

/**
 * Refuses to start when a peer that answers has other cluster-wide settings (ClusterSettings).
 * Best effort by design: a peer that is down is not waited for; it makes the same check
 * against this node when it starts, so of two mismatched nodes the later one refuses.
 */
async function checkSettings(nc: NatsConnection, prefix: string, config: NodeConfig, settings: ClusterSettings): Promise<void> {
  const peers = config.members.filter((m) => m !== config.nodeId);
  const replies = await Promise.all(peers.map((peer) => ask<SettingsReply>(nc, prefix, peer, "settings", { cluster: config.cluster, from: config.nodeId }, 2_000)));
  for (const r of replies) {
    if (r === null || !r.ok) continue;
    if (r.requestMemory !== settings.requestMemory) {
      throw new IdentityError(
        "SETTING_MISMATCH",
        `requestMemory is ${settings.requestMemory} here but ${r.requestMemory} on ${r.node}: it must be the same on every node (the at-most-once window decides how every replica applies retries); refusing to start`,
      );
    }
  }
}
