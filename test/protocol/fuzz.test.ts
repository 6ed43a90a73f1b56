// Whatever arrives, the decoders and validators answer; they never throw. Random bytes, random
// JSON-ish and msgpack-ish objects (with Dates, Maps, BigInts, typed arrays, null prototypes,
// __proto__ keys), and valid messages with one field swapped for junk or one byte flipped.

import fc from "fast-check";
import { Packr } from "msgpackr";
import { describe, expect, it } from "vitest";

import { decodeBody, decodeResponse, readRequest, type Encoding } from "../../src/protocol/codec.js";
import { errorFromWire } from "../../src/protocol/errors.js";
import { decodePeerFrame, encodePeerFrame } from "../../src/protocol/peerCodec.js";
import { validateRequest } from "../../src/protocol/validate.js";
import { peerFrame } from "./arbitraries.js";

const RUNS = 1000;
const ENCODINGS: Encoding[] = ["json", "msgpack"];
const rich = new Packr({ useRecords: false, structuredClone: true, moreTypes: true, useBigIntExtension: true });
const withRecords = new Packr({ useRecords: true });

const anything = fc.anything({
  maxDepth: 4,
  withBigInt: true,
  withBoxedValues: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withNullPrototype: true,
  withObjectString: true,
  withSparseArray: true,
  withTypedArray: true,
  withUnicodeString: true,
  key: fc.oneof(fc.string(), fc.constantFrom("__proto__", "constructor", "prototype", "op", "key", "value", "group", "toString")),
});

const ops = fc.constantFrom("get", "put", "delete", "cas", "txn", "scan", "status", "GET", "", "__proto__");
const fields = fc.constantFrom("op", "group", "key", "value", "valueBase64", "version", "requestId", "compares", "success", "failure", "prefix", "after", "limit", "consistency", "valueEncoding", "__proto__");
/** Objects shaped almost like requests: the right field names with junk values. */
const requestish = fc
  .tuple(ops, fc.dictionary(fields, anything, { maxKeys: 6 }))
  .map(([op, rest]) => ({ ...rest, op }));

function neverThrows(f: () => unknown): void {
  expect(f).not.toThrow();
}

describe("the API side never throws", () => {
  it("random bytes, in both encodings", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), fc.constantFrom(...ENCODINGS), (bytes, enc) => {
        neverThrows(() => readRequest(bytes, enc));
        neverThrows(() => decodeResponse(bytes, enc, "get"));
      }),
      { numRuns: RUNS },
    );
  });

  it("random values straight into validateRequest", () => {
    fc.assert(fc.property(anything, (x) => neverThrows(() => validateRequest(x))), { numRuns: RUNS });
    fc.assert(fc.property(requestish, (x) => neverThrows(() => validateRequest(x))), { numRuns: RUNS });
  });

  it("random JSON text", () => {
    fc.assert(
      fc.property(fc.oneof(fc.json({ maxDepth: 4 }), requestish.map((r) => safeJson(r))), (text) => {
        const v = readRequest(new TextEncoder().encode(text), "json");
        if (!v.ok) expect(["bad_request", "too_large"]).toContain(v.error.code);
      }),
      { numRuns: RUNS },
    );
  });

  it("random msgpack, with msgpackr's extensions and records", () => {
    fc.assert(
      fc.property(fc.oneof(anything, requestish), fc.boolean(), (x, records) => {
        let bytes: Uint8Array;
        try {
          bytes = records ? withRecords.pack(x) : rich.pack(x);
        } catch {
          return; // not every generated value can be packed
        }
        const v = readRequest(bytes, "msgpack");
        if (!v.ok) expect(["bad_request", "too_large"]).toContain(v.error.code);
        neverThrows(() => decodeResponse(bytes, "msgpack", "scan"));
      }),
      { numRuns: RUNS },
    );
  });

  it("errorFromWire takes anything", () => {
    fc.assert(fc.property(fc.oneof(anything, fc.record({ code: fc.string(), message: anything, details: anything })), (x) => neverThrows(() => errorFromWire(x))), {
      numRuns: RUNS,
    });
  });

  it("deeply nested input", () => {
    for (const enc of ENCODINGS) {
      let deep: unknown = { op: "get", key: "k" };
      for (let i = 0; i < 10_000; i++) deep = { op: "txn", group: "g", compares: [deep] };
      neverThrows(() => decodeBody(enc === "json" ? new TextEncoder().encode(safeJson(deep)) : safePack(deep), enc));
      neverThrows(() => validateRequest(deep));
    }
  });
});

describe("the peer side never throws", () => {
  it("random bytes", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 1024 }), (bytes) => neverThrows(() => decodePeerFrame(bytes))), { numRuns: RUNS });
  });

  it("deep nesting", () => {
    const d = decodePeerFrame(new Uint8Array(500_000).fill(0x91)); // fixarray(1) of fixarray(1) of ...
    expect(d.ok).toBe(false);
  });

  it("random msgpack values", () => {
    fc.assert(
      fc.property(anything, (x) => {
        neverThrows(() => decodePeerFrame(encodePeerFrameSafe(rich, x)));
        neverThrows(() => decodePeerFrame(encodePeerFrameSafe(rich, { from: "n1", cluster: "dev", messages: [x] })));
      }),
      { numRuns: RUNS },
    );
  });

  it("valid frames with one byte changed", () => {
    fc.assert(
      fc.property(peerFrame, fc.nat(), fc.integer({ min: 0, max: 255 }), (frame, at, byte) => {
        const bytes = Uint8Array.prototype.slice.call(encodePeerFrame(frame));
        if (bytes.length === 0) return;
        bytes[at % bytes.length] = byte;
        neverThrows(() => decodePeerFrame(bytes));
      }),
      { numRuns: RUNS },
    );
  });

  it("valid frames truncated", () => {
    fc.assert(
      fc.property(peerFrame, fc.nat(), (frame, cut) => {
        const bytes = encodePeerFrame(frame);
        const d = decodePeerFrame(bytes.subarray(0, cut % (bytes.length + 1)));
        if (cut % (bytes.length + 1) < bytes.length) expect(d.ok).toBe(false);
      }),
      { numRuns: RUNS },
    );
  });

  it("valid frames with one message field replaced by junk", () => {
    fc.assert(
      fc.property(peerFrame, fc.nat(), fc.string(), anything, (frame, which, name, junk) => {
        if (frame.messages.length === 0) return;
        const messages = frame.messages.map((m) => ({ ...m }) as Record<string, unknown>);
        const target = messages[which % messages.length]!;
        const names = Object.keys(target);
        target[names[which % names.length] ?? name] = junk;
        neverThrows(() => decodePeerFrame(encodePeerFrameSafe(rich, { ...frame, messages })));
      }),
      { numRuns: RUNS },
    );
  });
});

function safeJson(x: unknown): string {
  try {
    return JSON.stringify(x, (_k, v: unknown) => (typeof v === "bigint" ? Number(v) : v)) ?? "null";
  } catch {
    return "null";
  }
}

function encodePeerFrameSafe(packr: Packr, x: unknown): Uint8Array {
  try {
    return packr.pack(x);
  } catch {
    return new Uint8Array([0xc0]);
  }
}

function safePack(x: unknown): Uint8Array {
  try {
    return rich.pack(x);
  } catch {
    return new Uint8Array([0xc0]);
  }
}
