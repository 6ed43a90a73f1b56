// Builders for the durable records storage tests write: real shapes from src/protocol, with
// binary values, so every engine is tested on what the Paxos core will hand it.

import type { Ballot } from "../../src/protocol/ballot.js";
import { applyPersist, emptyDurableGroup, type DurableGroup, type DurableMeta, type Persist } from "../../src/protocol/durable.js";
import type { ChosenEntry, RequestRecord } from "../../src/protocol/messages.js";
import type { Entry, Value, WriteResult } from "../../src/protocol/ops.js";

export function bytes(...values: number[]): Uint8Array {
  return Uint8Array.from(values);
}

/** Every byte value once: catches any text encoding sneaking into the value path. */
export const ALL_BYTES: Uint8Array = Uint8Array.from({ length: 256 }, (_, i) => i);

export function ballot(round: number, node = "n1"): Ballot {
  return { round, node };
}

export function value(id: string, payload: Uint8Array = bytes(1, 2, 3)): Value {
  return {
    id,
    commands: [
      { requestId: `${id}/put`, op: { op: "put", key: "k", value: payload } },
      { requestId: `${id}/cas`, op: { op: "cas", key: "c", version: 0, value: bytes(0, 255) } },
      { requestId: `${id}/del`, op: { op: "delete", key: "gone" } },
    ],
  };
}

export function chosenEntry(index: number): ChosenEntry {
  return { index, ballot: ballot(index % 3, "n2"), value: value(`v${index}`) };
}

/** A meta record as it is after instance `index` was chosen and `index + 1` is open. */
export function meta(index: number, open: "none" | "promised" | "accepted" = "none"): DurableMeta {
  return {
    chosen: index === 0 ? null : chosenEntry(index),
    promised: open === "none" ? null : ballot(index + 1, "n3"),
    accepted: open === "accepted" ? { ballot: ballot(index + 1, "n3"), value: value(`a${index + 1}`, ALL_BYTES) } : null,
  };
}

export function entry(version: number, payload: Uint8Array = bytes(version & 0xff)): Entry {
  return { value: payload, version };
}

const RESULTS: readonly WriteResult[] = [
  { type: "put", version: 7 },
  { type: "delete", version: 8, existed: true },
  { type: "cas", ok: false, current: 3 },
  {
    type: "txn",
    succeeded: true,
    version: 9,
    currentVersions: [0, 4],
    results: [{ type: "put", version: 9 }, { type: "delete", version: 9, existed: false }],
  },
];

export function request(requestId: string, seq: number, index = seq): RequestRecord {
  return { requestId, seq, index, result: RESULTS[seq % RESULTS.length]! };
}

export function persist(group: string, parts: Partial<Omit<Persist, "group">> = {}): Persist {
  return {
    group,
    meta: parts.meta ?? meta(1),
    reset: parts.reset ?? false,
    keys: parts.keys ?? [],
    requests: parts.requests ?? [],
    forgetRequests: parts.forgetRequests ?? [],
  };
}

/** The reference semantics: applyPersist over plain images, one per group. */
export class Model {
  readonly groups = new Map<string, DurableGroup>();

  apply(batch: readonly Persist[]): void {
    for (const p of batch) {
      let image = this.groups.get(p.group);
      if (image === undefined) {
        image = emptyDurableGroup();
        this.groups.set(p.group, image);
      }
      applyPersist(image, p);
    }
  }

  /** What loadGroup must return: requests sorted by seq. */
  expected(group: string): DurableGroup | null {
    const image = this.groups.get(group);
    if (image === undefined) return null;
    return { meta: image.meta, keys: new Map(image.keys), requests: image.requests.slice().sort((a, b) => a.seq - b.seq) };
  }
}

export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

/** Keys of a loaded group in a stable order, for readable diffs. */
export function sortedEntries(group: DurableGroup): [string, Entry][] {
  return [...group.keys.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}
