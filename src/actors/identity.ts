// A node's identity: who wrote this data directory. Written once, when the node decides the
// directory is its own (a brand-new node, or a node that lost its disk and is recovering), and
// checked at every start:
//   - a record naming another node or cluster: the wrong directory is mounted; refuse to start
//     (IDENTITY_MISMATCH, exit code 2): voting with another node's promises breaks Paxos;
//   - no record: the directory is new or lost; the cluster decides which (newOrLost.ts);
//   - a record that fails its checksum: refuse (IDENTITY_CORRUPT); the operator decides.
// The lost-disk state lives in its own record, written in the same synced batch as the identity,
// so no crash can leave an identity without the lost-disk mode it needs.

import { randomBytes } from "node:crypto";
import { isStorageError } from "../storage/errors.js";
import type { Storage } from "../storage/storage.js";

export const IDENTITY_RECORD = "identity";

export interface NodeIdentity {
  readonly nodeId: string;
  readonly cluster: string;
  /** Random, new for each data directory the node starts on: tells a replaced disk apart. */
  readonly identityId: string;
  /** ms since the epoch. */
  readonly createdAt: number;
}

export type IdentityErrorCode = "IDENTITY_MISMATCH" | "IDENTITY_CORRUPT" | "SETTING_MISMATCH";

/**
 * The data directory cannot be used by this node, or the node does not fit its cluster (a
 * setting every node must share differs from a peer's): the CLI prints the message and exits 2.
 */
export class IdentityError extends Error {
  constructor(
    readonly code: IdentityErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "IdentityError";
  }
}

export function newIdentity(nodeId: string, cluster: string, now = Date.now()): NodeIdentity {
  return { nodeId, cluster, identityId: randomBytes(8).toString("hex"), createdAt: now };
}

/** The directory's identity, null if it has none; throws IdentityError if it is another node's. */
export async function readIdentity(storage: Storage, dataDir: string, nodeId: string, cluster: string): Promise<NodeIdentity | null> {
  let stored: unknown;
  try {
    stored = await storage.getNodeRecord(IDENTITY_RECORD);
  } catch (e) {
    if (!isStorageError(e, "STORAGE_CORRUPT")) throw e;
    throw new IdentityError("IDENTITY_CORRUPT", `the identity record in ${dataDir} fails its checksum; refusing to start (see docs/OPERATIONS.md, "Replacing a disk")`);
  }
  if (stored === undefined) return null;
  if (!isIdentity(stored)) throw new IdentityError("IDENTITY_CORRUPT", `the identity record in ${dataDir} is malformed; refusing to start`);
  if (stored.nodeId !== nodeId || stored.cluster !== cluster)
    throw new IdentityError(
      "IDENTITY_MISMATCH",
      `data directory ${dataDir} belongs to node "${stored.nodeId}" of cluster "${stored.cluster}", not node "${nodeId}" of cluster "${cluster}": wrong mount? refusing to start`,
    );
  return stored;
}

function isIdentity(x: unknown): x is NodeIdentity {
  const r = x as Record<string, unknown> | null;
  return typeof r === "object" && r !== null && typeof r.nodeId === "string" && typeof r.cluster === "string" && typeof r.identityId === "string" && typeof r.createdAt === "number";
}
