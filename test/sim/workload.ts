// Clients and what they ask for. Each key-group gets a few concurrent clients working on a
// small set of keys, so their operations conflict: cas often with the version just read
// (sometimes a wrong one), txns comparing versions, values and presence, reads at every
// consistency, scans by prefix. Contended groups get many clients, each sending to its own
// replica (concurrent proposers); the others favour the group's preferred replica, as real
// clients do, which keeps the fast round hot.

import type { NodeId } from "../../src/protocol/ballot.js";
import type { Consistency } from "../../src/protocol/io.js";
import type { Compare, ReadQuery, TxnWrite, WriteOp } from "../../src/protocol/ops.js";
import type { Prng } from "./prng.js";

export interface GroupPlan {
  readonly group: string;
  readonly keys: readonly string[];
  /** Prefixes worth scanning: the keys are "<prefix><n>". */
  readonly prefixes: readonly string[];
  readonly preferred: NodeId;
  readonly contended: boolean;
}

export interface ClientPlan {
  readonly id: string;
  readonly group: GroupPlan;
  /** The replica this client favours, and how often it sends there rather than anywhere. */
  readonly home: NodeId;
  readonly homeRate: number;
}

export type ClientOp =
  | { readonly kind: "write"; readonly op: WriteOp }
  | { readonly kind: "read"; readonly query: ReadQuery; readonly consistency: Consistency };

/** What one client believes about its group's keys, from the answers it got. */
export class ClientKnowledge {
  readonly versions = new Map<string, number>();
  readonly values = new Map<string, Uint8Array>();
  private written = 0;

  constructor(readonly client: string) {}

  /** A value no other write carries: a wrong read then shows exactly which write it saw. */
  freshValue(): Uint8Array {
    return new TextEncoder().encode(`${this.client}.${++this.written}`);
  }

  saw(key: string, entry: { value: Uint8Array; version: number } | null): void {
    if (entry === null) {
      this.versions.set(key, 0);
      this.values.delete(key);
    } else {
      this.versions.set(key, entry.version);
      this.values.set(key, entry.value);
    }
  }
}

const PREFIXES = ["a/", "b/", "c/"];

export function planGroups(prng: Prng, replicas: readonly NodeId[]): GroupPlan[] {
  const count = prng.int(1, 4);
  const groups: GroupPlan[] = [];
  for (let g = 1; g <= count; g++) {
    const prefixes = PREFIXES.slice(0, prng.int(1, 2));
    const keys: string[] = [];
    const keyCount = prng.int(2, 5);
    for (let k = 0; k < keyCount; k++) keys.push(`${prefixes[k % prefixes.length]}${Math.floor(k / prefixes.length)}`);
    groups.push({ group: `g${g}`, keys, prefixes, preferred: prng.pick(replicas), contended: prng.chance(0.5) });
  }
  return groups;
}

export function planClients(prng: Prng, groups: readonly GroupPlan[], replicas: readonly NodeId[]): ClientPlan[] {
  const clients: ClientPlan[] = [];
  for (const group of groups) {
    const count = group.contended ? prng.int(4, 5) : prng.int(2, 3);
    // Contended: each client is pinned near a different replica, so proposers collide.
    const homes = prng.shuffle(replicas);
    for (let c = 0; c < count; c++) {
      clients.push({
        id: `${group.group}.c${c + 1}`,
        group,
        home: group.contended ? homes[c % homes.length]! : group.preferred,
        homeRate: group.contended ? 0.7 : 0.8,
      });
    }
  }
  return clients;
}

export function pickReplica(prng: Prng, client: ClientPlan, replicas: readonly NodeId[], avoid: NodeId | null): NodeId {
  // The home replica only while it is one (membership changes move groups).
  if (avoid === null && prng.chance(client.homeRate) && replicas.includes(client.home)) return client.home;
  const choices = avoid === null ? replicas : replicas.filter((r) => r !== avoid);
  return prng.pick(choices);
}

export function nextOp(prng: Prng, client: ClientPlan, knowledge: ClientKnowledge): ClientOp {
  const keys = client.group.keys;
  const key = prng.pick(keys);
  const roll = prng.float();
  if (roll < 0.24) return { kind: "write", op: { op: "put", key, value: knowledge.freshValue() } };
  if (roll < 0.31) return { kind: "write", op: { op: "delete", key } };
  if (roll < 0.47) return { kind: "write", op: { op: "cas", key, version: guessVersion(prng, knowledge, key), value: knowledge.freshValue() } };
  if (roll < 0.6) return { kind: "write", op: randomTxn(prng, client, knowledge) };
  if (roll < 0.8) return { kind: "read", query: { kind: "get", key }, consistency: "linearizable" };
  if (roll < 0.88) return { kind: "read", query: { kind: "get", key }, consistency: "stale" };
  return { kind: "read", query: randomScan(prng, client), consistency: prng.chance(0.8) ? "linearizable" : "stale" };
}

/** Usually the version last seen (a cas that should win unless someone raced), sometimes wrong. */
function guessVersion(prng: Prng, knowledge: ClientKnowledge, key: string): number {
  const known = knowledge.versions.get(key);
  if (known !== undefined && prng.chance(0.75)) return known;
  return prng.pick([0, (known ?? 0) + 1, prng.int(1, 40)]);
}

function randomTxn(prng: Prng, client: ClientPlan, knowledge: ClientKnowledge): WriteOp {
  const keys = client.group.keys;
  const compares: Compare[] = [];
  const compareCount = prng.int(1, 2);
  for (let i = 0; i < compareCount; i++) {
    const key = prng.pick(keys);
    const kind = prng.float();
    if (kind < 0.5) {
      compares.push({ key, target: "version", cmp: prng.pick(["=", "=", "!=", "<", ">"] as const), version: guessVersion(prng, knowledge, key) });
    } else if (kind < 0.8) {
      const seen = knowledge.values.get(key);
      const value = seen !== undefined && prng.chance(0.7) ? seen : knowledge.freshValue();
      compares.push({ key, target: "value", cmp: prng.chance(0.75) ? "=" : "!=", value });
    } else {
      compares.push({ key, target: "exists", exists: prng.chance(0.5) });
    }
  }
  const writes = (n: number): TxnWrite[] => {
    const out: TxnWrite[] = [];
    for (let i = 0; i < n; i++) {
      const key = prng.pick(keys);
      out.push(prng.chance(0.75) ? { op: "put", key, value: knowledge.freshValue() } : { op: "delete", key });
    }
    return out;
  };
  return { op: "txn", compares, success: writes(prng.int(1, 2)), failure: writes(prng.int(0, 1)) };
}

function randomScan(prng: Prng, client: ClientPlan): ReadQuery {
  const prefix = prng.chance(0.3) ? "" : prng.pick(client.group.prefixes);
  const limit = prng.int(1, 5);
  if (prng.chance(0.3)) return { kind: "scan", prefix, after: prng.pick(client.group.keys), limit };
  return { kind: "scan", prefix, limit };
}
