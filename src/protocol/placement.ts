// Which nodes hold a key-group: rendezvous (highest-random-weight) hashing. Every member gets a
// score for the group; the replicas are the n highest, preferred first. Removing a member moves
// only the groups it held, and every node (and client) computes the same answer from the same
// member list, in any order, with no coordination.
//
// The score is portable, so a client in any language can compute it (docs/API.md):
//   score(group, node) = murmur3_x86_32(utf8(group), seed = murmur3_x86_32(utf8(node), seed = 0))
// as an unsigned 32-bit integer; higher wins, ties go to the smaller node id (node ids are
// ASCII, see subjects.ts, so every language orders them alike). 32-bit murmur3 needs only
// Math.imul: no BigInt, which would make a 64-bit hash many times slower.

import type { NodeId } from "./ballot.js";

export const REPLICATION_DEFAULT = 3;

/**
 * The group's replicas: the `n` members with the highest scores, preferred first; every member
 * (in score order) when there are `n` or fewer. Duplicate members count once.
 */
export function replicasFor(group: string, members: readonly NodeId[], n: number = REPLICATION_DEFAULT): NodeId[] {
  if (n <= 0 || members.length === 0) return [];
  const groupBytes = utf8(group);
  const scored: { node: NodeId; score: number }[] = [];
  const seen = new Set<NodeId>();
  for (const node of members) {
    if (seen.has(node)) continue;
    seen.add(node);
    scored.push({ node, score: rendezvousScore(groupBytes, node) });
  }
  scored.sort((a, b) => b.score - a.score || (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
  const count = Math.min(n, scored.length);
  const out: NodeId[] = new Array<NodeId>(count);
  for (let i = 0; i < count; i++) out[i] = scored[i]!.node;
  return out;
}

/** The replica clients send the group's requests to first; null when there are no members. */
export function preferredReplica(group: string, members: readonly NodeId[]): NodeId | null {
  const groupBytes = utf8(group);
  let best: NodeId | null = null;
  let bestScore = -1;
  for (const node of members) {
    const score = rendezvousScore(groupBytes, node);
    if (score > bestScore || (score === bestScore && best !== null && node < best)) {
      best = node;
      bestScore = score;
    }
  }
  return best;
}

/** The score of `node` for a group given as its UTF-8 bytes. */
export function rendezvousScore(groupBytes: Uint8Array, node: NodeId): number {
  return murmur3_32(groupBytes, nodeSeed(node));
}

// Node seeds are hashed once per node id: members are few and reused on every call.
const nodeSeeds = new Map<NodeId, number>();
const NODE_SEEDS_MAX = 4096;

function nodeSeed(node: NodeId): number {
  let seed = nodeSeeds.get(node);
  if (seed === undefined) {
    seed = murmur3_32(utf8(node), 0);
    if (nodeSeeds.size >= NODE_SEEDS_MAX) nodeSeeds.clear(); // a bound, not an LRU: ids are few
    nodeSeeds.set(node, seed);
  }
  return seed;
}

const encoder = new TextEncoder();

function utf8(s: string): Uint8Array {
  return encoder.encode(s);
}

/** MurmurHash3 x86 32-bit (Austin Appleby's reference), as an unsigned 32-bit integer. */
export function murmur3_32(data: Uint8Array, seed: number): number {
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  const len = data.length;
  const blocks = len & ~3;
  let h = seed >>> 0;
  for (let i = 0; i < blocks; i += 4) {
    let k = data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = len & 3;
  if (tail > 0) {
    let k = 0;
    if (tail === 3) k ^= data[blocks + 2]! << 16;
    if (tail >= 2) k ^= data[blocks + 1]! << 8;
    k ^= data[blocks]!;
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
  }
  h ^= len;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
