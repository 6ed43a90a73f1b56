// NATS subject names of a cluster, and the ids that go into them.
//
//   <prefix>.api          any node answers a client (the nodes subscribe in a queue group of
//                         the same name, so each request reaches one node)
//   <prefix>.api.<node>   one chosen node answers (the client sends a group's requests to its
//                         preferred replica, see placement.ts)
//   <prefix>.peer.<node>  Paxos frames to one node (peerCodec.ts)
//
// The prefix defaults to `paxosstore.<cluster>`. Cluster names and node ids become subject
// tokens, so they are restricted to letters, digits, `_` and `-` (no spaces, dots, `*` or `>`,
// which NATS reads as separators and wildcards); that also makes them sort the same in every
// language, which placement's tie-break relies on.

import type { NodeId } from "./ballot.js";

export const SUBJECT_ROOT = "paxosstore";
/** The cluster name of the local dev cluster (`paxosstore dev`). */
export const DEFAULT_CLUSTER = "dev";
export const NAME_LENGTH_MAX = 64;
export const PREFIX_LENGTH_MAX = 128;

const NAME = /^[A-Za-z0-9_-]+$/;

/** Why `name` cannot be a cluster name or node id, or null when it can. */
export function nameProblem(name: unknown): string | null {
  if (typeof name !== "string") return "must be a string";
  if (name.length === 0) return "must not be empty";
  if (name.length > NAME_LENGTH_MAX) return `must be at most ${NAME_LENGTH_MAX} characters`;
  if (!NAME.test(name)) return "may hold only letters, digits, _ and - (it is a NATS subject token)";
  return null;
}

export function isValidNodeId(id: unknown): id is NodeId {
  return nameProblem(id) === null;
}

export function isValidClusterName(name: unknown): name is string {
  return nameProblem(name) === null;
}

/** Why `prefix` cannot be a subject prefix, or null: dot-separated non-empty tokens, no wildcards. */
export function prefixProblem(prefix: string): string | null {
  if (prefix.length === 0) return "must not be empty";
  if (prefix.length > PREFIX_LENGTH_MAX) return `must be at most ${PREFIX_LENGTH_MAX} characters`;
  for (const token of prefix.split(".")) {
    if (token.length === 0) return "has an empty token (a leading, trailing or double dot)";
    // Whitespace and control characters end a subject in the NATS protocol; * and > are wildcards.
    if (/[\s\u0000-\u001f\u007f*>]/.test(token)) return `token ${JSON.stringify(token)} holds whitespace, a control character, * or >`;
  }
  return null;
}

export function defaultPrefix(cluster: string): string {
  return `${SUBJECT_ROOT}.${cluster}`;
}

export interface Subjects {
  readonly cluster: string;
  readonly prefix: string;
  /** Requests any node may answer. */
  readonly api: string;
  /** The queue group the nodes subscribe to `api` with (the same string as `api`). */
  readonly apiQueue: string;
  /** Every node's own api subject: `<prefix>.api.>` (for permissions). */
  readonly apiNodes: string;
  /** Every node's peer subject: `<prefix>.peer.>` (for permissions). */
  readonly peers: string;
  apiNode(node: NodeId): string;
  peer(node: NodeId): string;
}

/** The subjects of a cluster. Throws (at configuration time) on an invalid cluster or prefix. */
export function subjectsFor(cluster: string, prefix: string = defaultPrefix(cluster)): Subjects {
  const clusterProblem = nameProblem(cluster);
  if (clusterProblem !== null) throw new Error(`invalid cluster name ${JSON.stringify(cluster)}: ${clusterProblem}`);
  const problem = prefixProblem(prefix);
  if (problem !== null) throw new Error(`invalid subject prefix ${JSON.stringify(prefix)}: ${problem}`);
  const node = (id: NodeId): NodeId => {
    const p = nameProblem(id);
    if (p !== null) throw new Error(`invalid node id ${JSON.stringify(id)}: ${p}`);
    return id;
  };
  return Object.freeze({
    cluster,
    prefix,
    api: `${prefix}.api`,
    apiQueue: `${prefix}.api`,
    apiNodes: `${prefix}.api.>`,
    peers: `${prefix}.peer.>`,
    apiNode: (id: NodeId) => `${prefix}.api.${node(id)}`,
    peer: (id: NodeId) => `${prefix}.peer.${node(id)}`,
  });
}

export type SubjectKind =
  | { readonly kind: "api" }
  | { readonly kind: "apiNode"; readonly node: NodeId }
  | { readonly kind: "peer"; readonly node: NodeId };

/** What a subject of this cluster is for, or null when it is not one of ours. */
export function parseSubject(subjects: Subjects, subject: string): SubjectKind | null {
  if (subject === subjects.api) return { kind: "api" };
  const apiNode = `${subjects.prefix}.api.`;
  const peer = `${subjects.prefix}.peer.`;
  if (subject.startsWith(apiNode)) {
    const node = subject.slice(apiNode.length);
    return isValidNodeId(node) ? { kind: "apiNode", node } : null;
  }
  if (subject.startsWith(peer)) {
    const node = subject.slice(peer.length);
    return isValidNodeId(node) ? { kind: "peer", node } : null;
  }
  return null;
}
