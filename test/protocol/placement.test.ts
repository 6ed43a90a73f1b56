// Rendezvous placement: the same answer on every node for the same members in any order,
// an even spread, and minimal movement when membership changes.

import fc from "fast-check";
import { describe, expect, it } from "vitest";

import { murmur3_32, preferredReplica, replicasFor } from "../../src/protocol/placement.js";
import { nodeId } from "./arbitraries.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const MEMBERS = ["n1", "n2", "n3", "n4", "n5"];
const groups = Array.from({ length: 20_000 }, (_, i) => `user:${i}`);

describe("murmur3_32", () => {
  it("matches the reference vectors", () => {
    // From Austin Appleby's SMHasher / widely published test vectors.
    expect(murmur3_32(new Uint8Array(0), 0)).toBe(0);
    expect(murmur3_32(new Uint8Array(0), 1)).toBe(0x514e28b7);
    expect(murmur3_32(new Uint8Array(0), 0xffffffff)).toBe(0x81f16f39);
    expect(murmur3_32(new Uint8Array([0xff, 0xff, 0xff, 0xff]), 0)).toBe(0x76293b50);
    expect(murmur3_32(new Uint8Array([0x21, 0x43, 0x65, 0x87]), 0)).toBe(0xf55b516b);
    expect(murmur3_32(new Uint8Array([0x21, 0x43, 0x65, 0x87]), 0x5082edee)).toBe(0x2362f9de);
    expect(murmur3_32(new Uint8Array([0x21, 0x43, 0x65]), 0)).toBe(0x7e4a8634);
    expect(murmur3_32(new Uint8Array([0x21, 0x43]), 0)).toBe(0xa0f7b07a);
    expect(murmur3_32(new Uint8Array([0x21]), 0)).toBe(0x72661cf4);
    expect(murmur3_32(enc("Hello, world!"), 1234)).toBe(0xfaf6cdb3);
    expect(murmur3_32(enc("The quick brown fox jumps over the lazy dog"), 0x9747b28c)).toBe(0x2fa826cd);
  });
});

describe("replicasFor", () => {
  it("is the same for any order of the member list", () => {
    fc.assert(
      fc.property(fc.uniqueArray(nodeId, { minLength: 1, maxLength: 9 }), fc.string({ unit: "binary" }), fc.integer({ min: 1, max: 5 }), (members, group, n) => {
        const a = replicasFor(group, members, n);
        const b = replicasFor(group, [...members].reverse(), n);
        const c = replicasFor(group, [...members].sort(), n);
        expect(b).toEqual(a);
        expect(c).toEqual(a);
        expect(a.length).toBe(Math.min(n, members.length));
        expect(new Set(a).size).toBe(a.length);
        expect(a[0]).toBe(preferredReplica(group, members));
      }),
      { numRuns: 500 },
    );
  });

  it("gives every member when there are n or fewer, preferred first", () => {
    const r = replicasFor("user:42", ["n3", "n1", "n2"]);
    expect([...r].sort()).toEqual(["n1", "n2", "n3"]);
    expect(r[0]).toBe(preferredReplica("user:42", ["n1", "n2", "n3"]));
  });

  it("counts duplicate members once and handles empty lists", () => {
    expect(replicasFor("g", ["n1", "n1", "n2"], 3).sort()).toEqual(["n1", "n2"]);
    expect(replicasFor("g", [], 3)).toEqual([]);
    expect(replicasFor("g", ["n1"], 0)).toEqual([]);
    expect(preferredReplica("g", [])).toBeNull();
  });

  it("is stable across releases (pinned answers)", () => {
    // If these change, deployed clients and nodes disagree about placement: do not. The values
    // were cross-checked with an independent implementation of the formula in docs/API.md.
    expect(replicasFor("greeting", MEMBERS)).toEqual(["n4", "n1", "n2"]);
    expect(replicasFor("user:42", MEMBERS)).toEqual(["n3", "n5", "n4"]);
    expect(replicasFor("k", MEMBERS)).toEqual(["n2", "n5", "n1"]);
    expect(replicasFor("été", MEMBERS)).toEqual(["n5", "n4", "n1"]);
  });

  it("spreads groups evenly: preferred replicas and replica sets", () => {
    const preferred = new Map<string, number>();
    const held = new Map<string, number>();
    for (const g of groups) {
      const r = replicasFor(g, MEMBERS);
      preferred.set(r[0]!, (preferred.get(r[0]!) ?? 0) + 1);
      for (const n of r) held.set(n, (held.get(n) ?? 0) + 1);
    }
    const fair = groups.length / MEMBERS.length;
    for (const m of MEMBERS) {
      expect(Math.abs(preferred.get(m)! - fair) / fair).toBeLessThan(0.05);
      expect(Math.abs(held.get(m)! - 3 * fair) / (3 * fair)).toBeLessThan(0.05);
    }
  });

  it("moves only the groups of a removed member, and a new member takes only its share", () => {
    let moved = 0;
    for (const g of groups) {
      const before = replicasFor(g, MEMBERS);
      const after = replicasFor(g, MEMBERS.filter((m) => m !== "n5"));
      if (!before.includes("n5")) expect(after).toEqual(before);
      else expect(after.filter((m) => before.includes(m)).length).toBe(2);
      const grown = replicasFor(g, [...MEMBERS, "n6"]);
      if (!grown.includes("n6")) expect(grown).toEqual(before);
      else moved++;
    }
    // n6 should hold about 3/6 of all groups' replica slots: half the groups.
    expect(Math.abs(moved / groups.length - 0.5)).toBeLessThan(0.03);
  });

  it("is fast enough to run per request (measured, not asserted)", () => {
    const t = performance.now();
    for (const g of groups) preferredReplica(g, MEMBERS);
    const us = ((performance.now() - t) * 1000) / groups.length;
    console.log(`preferredReplica over 5 members: ${us.toFixed(2)} us per call`);
  });
});
