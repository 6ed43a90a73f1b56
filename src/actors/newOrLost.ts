// Is an empty data directory a NEW node or a LOST disk? Decided at start, before anything of
// Paxos runs on this node (a lost disk must never vote with the promises it forgot):
//   - the directory has an identity (identity.ts): the node is known; its lost-disk state, if
//     any, is on disk next to it (lostDisk.ts);
//   - no identity, but group records: data from before identities existed; adopt it;
//   - no identity, no records: ask EVERY peer "have you seen me?" (peerControl.ts). One "yes"
//     proves a lost disk. "New" needs a "no" from every peer: a node registers its identity with
//     every peer before it votes at all (the question itself registers it, durably), so any node
//     that ever voted is remembered by all of them. While a peer does not answer, wait and retry;
//     never guess "new". `--new-node` skips the question (the operator vouches for it).
//   - `--join` (a node added to a running cluster: `members add`) asks too, because the same
//     command line restarts it after its disk was lost, and then it must not vote with what it
//     forgot: one "yes" is a lost disk. A founder that does not count it as a node of the
//     cluster (it was not added yet, or was removed and holds no group) answers as good as "no".
//     But a founder may have left the cluster for good (its machine replaced), so "new" does not
//     wait for every founder: after JOIN_WAIT_MS, the "no" of those that answered will do (the
//     operator vouched with --join). A node added later registers with the founders and with
//     every member it learns of once it is a member (membership.ts `hello`).
// A lost disk's identity and its lost-disk mode are written in one synced batch: an identity
// on disk without the mode would vote with forgotten promises after a crash.

import { setTimeout as sleep } from "node:timers/promises";
import type { NodeId } from "../protocol/ballot.js";
import type { Storage } from "../storage/storage.js";
import { IDENTITY_RECORD, newIdentity, readIdentity, type NodeIdentity } from "./identity.js";
import { LOST_DISK_RECORD, readLostDiskRecord, type LostDiskState } from "./lostDisk.js";
import { ask, type PeerQuestions, type SeenReply } from "./peerControl.js";

/** Kept across restarts: a node that crashes while asking re-asks under the same identity. */
const PROPOSED_IDENTITY_RECORD = "identity-proposed";

export interface IdentityOptions extends PeerQuestions {
  readonly storage: Storage;
  readonly dataDir: string;
  /** The operator vouches that this empty directory is a brand-new node (--new-node). */
  readonly newNode: boolean;
  /**
   * A node added to a running cluster (--join): asks, but takes "new" after `joinWaitMs`
   * without the answers of founders that do not answer (see the top).
   */
  readonly join?: boolean;
  /** How long --join waits for founders that do not answer (ms). */
  readonly joinWaitMs?: number;
  /** True once the node is being stopped: give up waiting. */
  readonly stopping?: () => boolean;
}

export interface Resolved {
  readonly identity: NodeIdentity;
  readonly lostDisk: LostDiskState | null;
  /**
   * The identity was made by this very process for an empty directory, as a new node: no
   * earlier process ran Paxos here (the identity is written before Paxos starts). False for a
   * known identity, adopted data and a lost disk.
   */
  readonly firstLife: boolean;
}

/** Reads or establishes this node's identity, asking the peers when the directory is empty. */
export async function resolveIdentity(o: IdentityOptions): Promise<Resolved> {
  const known = await readIdentity(o.storage, o.dataDir, o.self, o.cluster);
  if (known !== null) return { identity: known, lostDisk: readLostDiskRecord(await o.storage.getNodeRecord(LOST_DISK_RECORD)), firstLife: false };

  for await (const _ of o.storage.listGroups()) {
    const identity = newIdentity(o.self, o.cluster);
    o.log.info({ identityId: identity.identityId }, "this data directory holds groups but no identity (written before identities existed): adopting it");
    await o.storage.putNodeRecords([[IDENTITY_RECORD, identity]]);
    return { identity, lostDisk: null, firstLife: false };
  }

  const peers = o.members.filter((m) => m !== o.self);
  if (o.newNode || peers.length === 0) {
    const identity = newIdentity(o.self, o.cluster);
    if (o.newNode) o.log.warn({ identityId: identity.identityId }, "empty data directory taken as a brand-new node without asking the peers (--new-node)");
    await o.storage.putNodeRecords([[IDENTITY_RECORD, identity], [PROPOSED_IDENTITY_RECORD, undefined]]);
    return { identity, lostDisk: null, firstLife: true };
  }

  const proposed = readProposed(await o.storage.getNodeRecord(PROPOSED_IDENTITY_RECORD), o.self, o.cluster) ?? newIdentity(o.self, o.cluster);
  await o.storage.putNodeRecords([[PROPOSED_IDENTITY_RECORD, proposed]]);
  const verdict = await askWhetherSeen(o, peers, proposed.identityId);
  if (verdict === "lost") {
    const lostDisk: LostDiskState = { phase: "listing", detectedAt: Date.now() };
    // One batch: an identity on disk without its lost-disk mode would vote with forgotten promises.
    await o.storage.putNodeRecords([[IDENTITY_RECORD, proposed], [LOST_DISK_RECORD, lostDisk], [PROPOSED_IDENTITY_RECORD, undefined]]);
    return { identity: proposed, lostDisk, firstLife: false };
  }
  await o.storage.putNodeRecords([[IDENTITY_RECORD, proposed], [PROPOSED_IDENTITY_RECORD, undefined]]);
  return { identity: proposed, lostDisk: null, firstLife: true };
}

/** How long a node started with --join waits for founders that do not answer the question. */
const JOIN_WAIT_MS = 5_000;

async function askWhetherSeen(o: IdentityOptions, peers: readonly NodeId[], identityId: string): Promise<"new" | "lost"> {
  const answered = new Set<NodeId>();
  const timeoutMs = o.askTimeoutMs ?? 2_000;
  const joinUntil = o.join === true ? Date.now() + (o.joinWaitMs ?? JOIN_WAIT_MS) : null;
  for (let round = 0; ; round++) {
    const waiting = peers.filter((p) => !answered.has(p));
    const replies = await Promise.all(waiting.map((p) => ask<SeenReply>(o.nc, o.prefix, p, "seen", { cluster: o.cluster, from: o.self, identityId }, timeoutMs)));
    for (let i = 0; i < waiting.length; i++) {
      const r = replies[i];
      // To a node started with --join, a peer that does not count it as a node of the cluster
      // (not added yet, or removed since: then it holds no group) has not seen it as a member.
      if (o.join === true && r !== null && r !== undefined && !r.ok && r.notMember === true) {
        answered.add(waiting[i]!);
        continue;
      }
      if (r === null || r === undefined || !r.ok) continue;
      // Remembered under the identity we are asking with, and under nothing before it: that is
      // this very question (or an earlier try of it, before a crash), not an earlier life.
      if (r.seen !== null && (r.seen.identityId !== identityId || r.seen.replacedEarlier === true)) {
        o.log.warn(
          { peer: waiting[i], seenSince: new Date(r.seen.since).toISOString(), identityId },
          `LOST DISK: data directory ${o.dataDir} is empty but peer ${waiting[i]} has seen node ${o.self} before; every group this node may have voted in recovers from the peers before it votes again`,
        );
        return "lost";
      }
      answered.add(waiting[i]!);
    }
    if (answered.size === peers.length) {
      o.log.info({ peers }, `empty data directory and no peer has seen node ${o.self}: starting as a brand-new node`);
      return "new";
    }
    if (joinUntil !== null && Date.now() >= joinUntil) {
      o.log.warn(
        { answered: [...answered], notAnswering: peers.filter((p) => !answered.has(p)) },
        `empty data directory, started with --join: no peer that answered has seen node ${o.self}; starting as a brand-new node without the answers of the others`,
      );
      return "new";
    }
    if (o.stopping?.()) throw new Error("stopped while asking the peers whether they have seen this node");
    if (round % 5 === 0)
      o.log.warn(
        { waitingFor: peers.filter((p) => !answered.has(p)) },
        `data directory ${o.dataDir} is empty: waiting for every peer to say whether it has seen node ${o.self} before (a lost disk must not vote); retrying. Start with --new-node only if this node never ran before`,
      );
    await sleep(o.retryMs ?? 1_000);
  }
}


function readProposed(x: unknown, nodeId: string, cluster: string): NodeIdentity | null {
  const r = x as NodeIdentity | undefined;
  return r !== undefined && r.nodeId === nodeId && r.cluster === cluster && typeof r.identityId === "string" ? r : null;
}
