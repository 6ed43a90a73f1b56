import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { crc32 } from "../../src/storage/checksum.js";
import {
  FORMAT_KEY,
  GROUPS_END,
  dataKey,
  groupPrefix,
  groupRange,
  metaKey,
  parseKey,
  requestKey,
} from "../../src/storage/layout.js";

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

function inRange(key: Uint8Array, range: { gte: Uint8Array; lt: Uint8Array }): boolean {
  return compareBytes(key, range.gte) >= 0 && compareBytes(key, range.lt) < 0;
}

// Well-formed strings over the whole code point range, plus the troublemakers.
const name = fc.oneof(fc.string({ unit: "binary", maxLength: 12 }), fc.constantFrom("", "a", "ab", "a\u0000", "\u0000", "\uffff"));

describe("key layout", () => {
  it("puts a group's records in its range and no other group's (property)", () => {
    fc.assert(
      fc.property(name, name, name, (g, h, key) => {
        const range = groupRange(groupPrefix(g));
        const prefix = groupPrefix(h);
        for (const k of [metaKey(prefix), dataKey(prefix, key), requestKey(prefix, key)]) {
          expect(inRange(k, range)).toBe(g === h);
          expect(compareBytes(k, GROUPS_END)).toBeLessThan(0);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("keeps data keys and request ids of one group apart", () => {
    const prefix = groupPrefix("g");
    expect(compareBytes(dataKey(prefix, "x"), requestKey(prefix, "x"))).not.toBe(0);
  });

  it("parses what it builds (property)", () => {
    fc.assert(
      fc.property(name, name, (g, key) => {
        const parsed = parseKey(dataKey(groupPrefix(g), key));
        expect(parsed).toMatchObject({ group: g, name: key, kind: 0x02, prefixLength: groupPrefix(g).length });
      }),
    );
  });

  it("keeps the format key outside every group", () => {
    expect(compareBytes(FORMAT_KEY, GROUPS_END)).toBeGreaterThanOrEqual(0);
    expect(parseKey(Uint8Array.of(0, 0, 0, 9, 1))).toBeNull(); // length beyond the key
  });
});

describe("crc32", () => {
  const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

  it("matches the standard CRC-32 check values", () => {
    expect(crc32(new Uint8Array(0))).toBe(0);
    expect(crc32(ascii("123456789"))).toBe(0xcbf43926);
    expect(crc32(ascii("The quick brown fox jumps over the lazy dog"))).toBe(0x414fa339);
    expect(crc32(new Uint8Array(32))).toBe(0x190a55ad);
  });

  it("continues over split input (property)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 200 }), (a, b) => {
        const whole = new Uint8Array(a.length + b.length);
        whole.set(a);
        whole.set(b, a.length);
        expect(crc32(b, crc32(a))).toBe(crc32(whole));
      }),
    );
  });

  it("changes on any single flipped bit (property)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 300 }), fc.nat(), fc.nat(7), (data, at, bit) => {
        const flipped = Uint8Array.from(data);
        flipped[at % data.length]! ^= 1 << bit;
        expect(crc32(flipped)).not.toBe(crc32(data));
      }),
    );
  });
});
