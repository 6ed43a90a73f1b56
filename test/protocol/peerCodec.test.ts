// Peer frames: well-formed frames round-trip exactly; every malformed field of every message
// variant is refused with a reason that names it; frames split to fit the frame limit.

import fc from "fast-check";
import { Packr } from "msgpackr";
import { describe, expect, it } from "vitest";

import type { PeerMessage } from "../../src/protocol/messages.js";
import { decodePeerFrame, encodePeerFrame, encodePeerFrames, type PeerFrame } from "../../src/protocol/peerCodec.js";
import { DEFAULT_WIRE_LIMITS } from "../../src/protocol/limits.js";
import { peerFrame, peerMessage } from "./arbitraries.js";

const plain = new Packr({ useRecords: false });
const b = (n: number, fill = 7): Uint8Array => new Uint8Array(n).fill(fill);

const accept = (i: number, valueBytes = 100): PeerMessage => ({
  type: "accept",
  group: `user:${i}`,
  index: 1000 + i,
  ballot: { round: 0, node: "n1" },
  value: { id: `n1.abc.${i}`, commands: [{ requestId: `r-${i}`, op: { op: "put", key: `k${i}`, value: b(valueBytes) } }] },
  prev: { index: 999 + i, ballot: { round: 0, node: "n1" }, value: { id: `n1.abc.${i - 1}`, commands: [] } },
});

const frameOf = (...messages: PeerMessage[]): PeerFrame => ({ from: "n1", cluster: "dev", messages });

describe("peer frames round-trip", () => {
  it("any well-formed frame decodes to exactly what was encoded", () => {
    fc.assert(
      fc.property(peerFrame, (frame) => {
        const decoded = decodePeerFrame(encodePeerFrame(frame));
        if (!decoded.ok) throw new Error(decoded.reason);
        expect(decoded.frame).toEqual(frame);
      }),
      { numRuns: 500 },
    );
  });

  it("values decode as plain Uint8Arrays, copied out of the frame", () => {
    const bytes = encodePeerFrame(frameOf(accept(1)));
    const decoded = decodePeerFrame(Buffer.from(bytes));
    if (!decoded.ok) throw new Error(decoded.reason);
    const m = decoded.frame.messages[0]!;
    if (m.type !== "accept" || m.value.commands[0]!.op.op !== "put") throw new Error("unexpected message");
    const value = m.value.commands[0]!.op.value;
    expect(value.constructor).toBe(Uint8Array);
    expect(value.buffer.byteLength).toBe(100);
  });

  it("encodePeerFrames splits in order, each frame under the limit, with no re-encoding", () => {
    fc.assert(
      fc.property(fc.array(peerMessage, { maxLength: 40 }), fc.integer({ min: 200, max: 4000 }), (messages, limit) => {
        const { frames, oversized } = encodePeerFrames("n2", "dev", messages, limit);
        const back: PeerMessage[] = [];
        for (const f of frames) {
          expect(f.length).toBeLessThanOrEqual(limit);
          const d = decodePeerFrame(f);
          if (!d.ok) throw new Error(d.reason);
          expect(d.frame.from).toBe("n2");
          expect(d.frame.cluster).toBe("dev");
          back.push(...d.frame.messages);
        }
        const expected = messages.filter((m) => !oversized.includes(m));
        expect(back).toEqual(expected);
        for (const m of oversized) expect(encodePeerFrame(frameOf(m)).length).toBeGreaterThan(limit - 40);
      }),
      { numRuns: 200 },
    );
  });

  it("encodePeerFrames writes array headers of every size when it splits", () => {
    const limits = { ...DEFAULT_WIRE_LIMITS, frameBytesMax: 10_000_000 };
    for (const n of [1, 15, 16, 300, 65_535, 65_536, 70_000]) {
      const probes = Array.from({ length: n + 1 }, (_, i): PeerMessage => ({ type: "readProbe", group: "g", probe: i % 100 }));
      // Room for exactly n of them: the (n+1)th goes to a second frame.
      const limit = encodePeerFrame(frameOf(...probes.slice(0, n))).length + 4;
      const { frames, oversized } = encodePeerFrames("n1", "dev", probes, limit);
      expect(oversized).toEqual([]);
      expect(frames.length).toBe(2);
      const first = decodePeerFrame(frames[0]!, limits);
      const second = decodePeerFrame(frames[1]!, limits);
      if (!first.ok || !second.ok) throw new Error("undecodable split frame");
      expect(first.frame.messages).toEqual(probes.slice(0, n));
      expect(second.frame.messages).toEqual(probes.slice(n));
    }
  });

  it("the largest Accept (a largest write, and another as prev) fits in one frame", () => {
    const L = DEFAULT_WIRE_LIMITS;
    // Many small writes maximise the framing overhead per byte of payload.
    const n = L.txnWritesMax;
    const valueBytes = Math.floor((L.writeBytesMax - 2 * n * L.keyBytesMax) / (2 * n));
    const writes = (tag: string) =>
      Array.from({ length: n }, (_, i) => ({ op: "put" as const, key: `${tag}${i}`.padEnd(L.keyBytesMax, "k"), value: b(valueBytes) }));
    const compares = Array.from({ length: L.txnComparesMax }, (_, i) => ({ key: `c${i}`, target: "exists" as const, exists: true }));
    const biggest = (id: string) => ({
      id,
      commands: [{ requestId: "r".repeat(L.requestIdBytesMax), op: { op: "txn" as const, compares, success: writes("s"), failure: writes("f") } }],
    });
    const frame = frameOf({
      type: "accept",
      group: "g".repeat(L.groupBytesMax),
      index: Number.MAX_SAFE_INTEGER,
      ballot: { round: Number.MAX_SAFE_INTEGER, node: "n".repeat(64) },
      value: biggest("v2"),
      prev: { index: Number.MAX_SAFE_INTEGER - 1, ballot: { round: 1, node: "n".repeat(64) }, value: biggest("v1") },
    });
    const bytes = encodePeerFrame(frame);
    expect(bytes.length).toBeLessThanOrEqual(L.frameBytesMax);
    expect(decodePeerFrame(bytes).ok).toBe(true);
  });

  it("encoding a frame of 64 Accepts with 100-byte values is fast (measured, not asserted)", () => {
    const frame = frameOf(...Array.from({ length: 64 }, (_, i) => accept(i + 1)));
    const bytes = encodePeerFrame(frame);
    const rounds = 2000;
    for (let i = 0; i < 200; i++) decodePeerFrame(encodePeerFrame(frame)); // warm up
    let t = performance.now();
    for (let i = 0; i < rounds; i++) encodePeerFrame(frame);
    const encodeUs = ((performance.now() - t) * 1000) / rounds;
    t = performance.now();
    for (let i = 0; i < rounds; i++) encodePeerFrames("n1", "dev", frame.messages);
    const splitUs = ((performance.now() - t) * 1000) / rounds;
    t = performance.now();
    for (let i = 0; i < rounds; i++) decodePeerFrame(bytes);
    const decodeUs = ((performance.now() - t) * 1000) / rounds;
    console.log(
      `peer frame, 64 Accepts x 100-byte values, ${bytes.length} bytes: encode ${encodeUs.toFixed(1)} us, ` +
        `encodePeerFrames ${splitUs.toFixed(1)} us, decode+validate ${decodeUs.toFixed(1)} us`,
    );
    expect(decodePeerFrame(bytes).ok).toBe(true);
  });
});

/** A valid frame with one message, as a plain object to tamper with. */
function tampered(msg: Record<string, unknown>, frame: Record<string, unknown> = {}): Uint8Array {
  return plain.pack({ from: "n1", cluster: "dev", messages: [msg], ...frame });
}

const BALLOT = { round: 1, node: "n2" };
const VALUE = { id: "v1", commands: [{ requestId: "r1", op: { op: "put", key: "k", value: b(3) } }] };
const ENTRY = { index: 4, ballot: BALLOT, value: VALUE };

const REFUSED: [string, Uint8Array, RegExp][] = [
  ["garbage", new Uint8Array([0xc1, 0x00]), /msgpack/],
  ["empty", new Uint8Array(0), /msgpack/],
  ["JSON", new TextEncoder().encode('{"from":"n1"}'), /msgpack/],
  ["not a map", plain.pack([1, 2, 3]), /frame: must be a map/],
  ["bad from", plain.pack({ from: "n 1", cluster: "dev", messages: [] }), /^from: is not a valid node id/],
  ["from with a dot", plain.pack({ from: "n.1", cluster: "dev", messages: [] }), /^from/],
  ["missing cluster", plain.pack({ from: "n1", messages: [] }), /^cluster/],
  ["cluster with a wildcard", plain.pack({ from: "n1", cluster: "*", messages: [] }), /^cluster/],
  ["messages not an array", plain.pack({ from: "n1", cluster: "dev", messages: {} }), /^messages: must be an array/],
  ["message not a map", plain.pack({ from: "n1", cluster: "dev", messages: [7] }), /^messages\[0\]: must be a map/],
  ["unknown type", tampered({ type: "nack", group: "g" }), /^messages\[0\]\.type: unknown message type "nack"/],
  ["missing group", tampered({ type: "readProbe", probe: 1 }), /^messages\[0\]\.group: must be a string/],
  ["empty group", tampered({ type: "readProbe", group: "", probe: 1 }), /^messages\[0\]\.group: must not be empty/],
  ["huge group", tampered({ type: "readProbe", group: "g".repeat(2000), probe: 1 }), /group: is over 1024 bytes/],
  ["negative index", tampered({ type: "accepted", group: "g", index: -1, ballot: BALLOT }), /messages\[0\]\.index: must be a non-negative safe integer, got -1/],
  ["fractional index", tampered({ type: "accepted", group: "g", index: 1.5, ballot: BALLOT }), /index: .* got 1\.5/],
  ["NaN index", tampered({ type: "accepted", group: "g", index: NaN, ballot: BALLOT }), /index: .* got NaN/],
  ["string index", tampered({ type: "accepted", group: "g", index: "1", ballot: BALLOT }), /index: .* got a string/],
  ["unsafe index", tampered({ type: "accepted", group: "g", index: 2 ** 60, ballot: BALLOT }), /index/],
  ["missing ballot", tampered({ type: "accepted", group: "g", index: 1 }), /messages\[0\]\.ballot: must be a map/],
  ["negative round", tampered({ type: "accepted", group: "g", index: 1, ballot: { round: -1, node: "n2" } }), /ballot\.round/],
  ["bad ballot node", tampered({ type: "accepted", group: "g", index: 1, ballot: { round: 1, node: "" } }), /ballot\.node/],
  ["prepare prev not an entry", tampered({ type: "prepare", group: "g", index: 1, ballot: BALLOT, prev: 3 }), /prev: must be a map/],
  ["prepare missing prev", tampered({ type: "prepare", group: "g", index: 1, ballot: BALLOT }), /prev: must be a map, got nothing/],
  ["promise accepted without value", tampered({ type: "promise", group: "g", index: 1, ballot: BALLOT, accepted: { ballot: BALLOT } }), /accepted\.value: must be a map/],
  ["accept value without id", tampered({ type: "accept", group: "g", index: 1, ballot: BALLOT, value: { commands: [] }, prev: null }), /value\.id/],
  ["accept commands not an array", tampered({ type: "accept", group: "g", index: 1, ballot: BALLOT, value: { id: "v", commands: 1 }, prev: null }), /value\.commands: must be an array/],
  [
    "accept value as a string",
    tampered({ type: "accept", group: "g", index: 1, ballot: BALLOT, value: { id: "v", commands: [{ requestId: "r", op: { op: "put", key: "k", value: "text" } }] }, prev: null }),
    /value\.commands\[0\]\.op\.value: must be bytes, got a string/,
  ],
  [
    "accept value over the limit",
    tampered({ type: "accept", group: "g", index: 1, ballot: BALLOT, value: { id: "v", commands: [{ requestId: "r", op: { op: "put", key: "k", value: b(DEFAULT_WIRE_LIMITS.valueBytesMax + 1) } }] }, prev: null }),
    /op\.value: is 262145 bytes, over 262144/,
  ],
  [
    "command without request id",
    tampered({ type: "accept", group: "g", index: 1, ballot: BALLOT, value: { id: "v", commands: [{ op: { op: "delete", key: "k" } }] }, prev: null }),
    /commands\[0\]\.requestId/,
  ],
  [
    "unknown write op",
    tampered({ type: "accept", group: "g", index: 1, ballot: BALLOT, value: { id: "v", commands: [{ requestId: "r", op: { op: "incr", key: "k" } }] }, prev: null }),
    /commands\[0\]\.op\.op: unknown write op/,
  ],
  [
    "cas with a fractional version",
    tampered({ type: "accept", group: "g", index: 1, ballot: BALLOT, value: { id: "v", commands: [{ requestId: "r", op: { op: "cas", key: "k", version: 0.5, value: b(1) } }] }, prev: null }),
    /op\.version/,
  ],
  [
    "txn with a cas inside",
    tampered({
      type: "accept", group: "g", index: 1, ballot: BALLOT, prev: null,
      value: { id: "v", commands: [{ requestId: "r", op: { op: "txn", compares: [], success: [{ op: "cas", key: "k", version: 1, value: b(1) }], failure: [] } }] },
    }),
    /op\.success\[0\]\.op: must be put or delete/,
  ],
  [
    "txn compare with a bad cmp",
    tampered({
      type: "accept", group: "g", index: 1, ballot: BALLOT, prev: null,
      value: { id: "v", commands: [{ requestId: "r", op: { op: "txn", compares: [{ key: "k", target: "value", cmp: "<", value: b(1) }], success: [], failure: [] } }] },
    }),
    /op\.compares\[0\]\.cmp: must be = or !=/,
  ],
  [
    "txn without failure",
    tampered({
      type: "accept", group: "g", index: 1, ballot: BALLOT, prev: null,
      value: { id: "v", commands: [{ requestId: "r", op: { op: "txn", compares: [], success: [] } }] },
    }),
    /op\.failure: must be an array/,
  ],
  ["reject promised not a ballot", tampered({ type: "reject", group: "g", index: 1, ballot: BALLOT, promised: "x", chosen: 0 }), /promised: must be a map/],
  ["reject missing chosen", tampered({ type: "reject", group: "g", index: 1, ballot: BALLOT, promised: null }), /chosen: must be a non-negative/],
  ["chosen value id mismatch", tampered({ type: "chosen", group: "g", index: 1, ballot: BALLOT, valueId: "other", value: VALUE }), /value\.id: differs from valueId/],
  ["chosen without valueId", tampered({ type: "chosen", group: "g", index: 1, ballot: BALLOT, value: null }), /valueId/],
  ["catchupEntry without entry", tampered({ type: "catchupEntry", group: "g" }), /entry: must be a map/],
  ["catchupEntry bad entry index", tampered({ type: "catchupEntry", group: "g", entry: { ...ENTRY, index: -4 } }), /entry\.index/],
  [
    "snapshot item not a pair",
    tampered({ type: "catchupSnapshot", group: "g", at: ENTRY, after: null, items: [["k"]], requests: [], next: null }),
    /items\[0\]: must be a \[key, entry\] pair/,
  ],
  [
    "snapshot item key not a string",
    tampered({ type: "catchupSnapshot", group: "g", at: ENTRY, after: null, items: [[1, { value: b(1), version: 1 }]], requests: [], next: null }),
    /items\[0\]\[0\]: must be a string/,
  ],
  [
    "snapshot entry value not bytes",
    tampered({ type: "catchupSnapshot", group: "g", at: ENTRY, after: null, items: [["k", { value: [1], version: 1 }]], requests: [], next: null }),
    /items\[0\]\[1\]\.value: must be bytes, got an array/,
  ],
  [
    "snapshot request with a bad result",
    tampered({ type: "catchupSnapshot", group: "g", at: ENTRY, after: null, items: [], requests: [{ requestId: "r", seq: 1, index: 1, result: { type: "nope" } }], next: null }),
    /requests\[0\]\.result\.type/,
  ],
  [
    "snapshot request with a txn in a txn",
    tampered({
      type: "catchupSnapshot", group: "g", at: ENTRY, after: null, items: [], next: null,
      requests: [{ requestId: "r", seq: 1, index: 1, result: { type: "txn", succeeded: true, version: 1, currentVersions: [], results: [{ type: "txn", succeeded: true, version: 1, currentVersions: [], results: [] }] } }],
    }),
    /results\[0\]\.type: a txn result cannot hold a txn result/,
  ],
  ["readProbe with a bigint", plain.pack({ from: "n1", cluster: "dev", messages: [{ type: "readProbe", group: "g", probe: 2n ** 63n }] }), /probe: .* got a big integer/],
  ["readProbeReply accepted not boolean", tampered({ type: "readProbeReply", group: "g", probe: 1, chosen: 1, accepted: 1 }), /accepted: must be a boolean/],
  ["the second message is bad", plain.pack({ from: "n1", cluster: "dev", messages: [{ type: "readProbe", group: "g", probe: 1 }, { type: "readProbe", group: "g", probe: -1 }] }), /^messages\[1\]\.probe/],
  ["over the frame limit", new Uint8Array(DEFAULT_WIRE_LIMITS.frameBytesMax + 1), /over frameBytesMax/],
];

describe("membership fields (issue 13) round-trip and are checked", () => {
  const config = { epoch: 2, replicas: ["n4", "n1", "n2"] };
  const reconfig: PeerMessage = { type: "accept", group: "g", index: 9, ballot: { round: 1, node: "n1" }, value: { id: "n1/x/3", commands: [], config }, prev: null };
  const snapshot: PeerMessage = { type: "catchupSnapshot", group: "g", at: { index: 9, ballot: { round: 1, node: "n1" }, value: { id: "n1/x/3", commands: [], config } }, after: null, items: [], requests: [], next: null, config };
  const request: PeerMessage = { type: "catchupRequest", group: "g", chosen: 0, snapshotAt: null, after: null, snapshot: true };

  it("a reconfiguration value, a snapshot's configuration and a data-only request decode as sent", () => {
    const decoded = decodePeerFrame(encodePeerFrame(frameOf(reconfig, snapshot, request)));
    if (!decoded.ok) throw new Error(decoded.reason);
    expect(decoded.frame.messages).toEqual([reconfig, snapshot, request]);
  });

  it("refuses a configuration with duplicate or invalid replicas, or a reconfiguration with commands", () => {
    const bad = (value: unknown): string => {
      const raw = plain.pack({ from: "n1", cluster: "dev", messages: [{ ...reconfig, value }] });
      const d = decodePeerFrame(raw);
      return d.ok ? "accepted" : d.reason;
    };
    expect(bad({ id: "n1/x/3", commands: [], config: { epoch: 2, replicas: ["n1", "n1"] } })).toMatch(/replicas/);
    expect(bad({ id: "n1/x/3", commands: [], config: { epoch: 2, replicas: [] } })).toMatch(/replicas/);
    expect(bad({ id: "n1/x/3", commands: [], config: { epoch: -1, replicas: ["n1"] } })).toMatch(/epoch/);
    expect(bad({ id: "n1/x/3", commands: [{ requestId: "r", op: { op: "delete", key: "k" } }], config })).toMatch(/commands/);
  });
});

describe("decodePeerFrame refuses malformed frames, naming the field", () => {
  for (const [name, bytes, reason] of REFUSED) {
    it(name, () => {
      const d = decodePeerFrame(bytes);
      expect(d.ok).toBe(false);
      if (!d.ok) expect(d.reason).toMatch(reason);
    });
  }

  it("refuses msgpackr extensions where bytes belong", () => {
    const rich = new Packr({ structuredClone: true, moreTypes: true });
    for (const value of [new Date(0), new Set([1]), new Map([[1, 2]]), new Float32Array(2), /x/]) {
      const bytes = rich.pack({ from: "n1", cluster: "dev", messages: [{ type: "catchupSnapshot", group: "g", at: ENTRY, after: null, items: [["k", { value, version: 1 }]], requests: [], next: null }] });
      const d = decodePeerFrame(bytes);
      expect(d.ok).toBe(false);
    }
  });

  it("an encoded surrogate (invalid UTF-8) never decodes to a lone surrogate", () => {
    const bytes = tampered({ type: "catchupRequest", group: "g", chosen: 1, snapshotAt: null, after: "XYZ" });
    const at = Buffer.from(bytes).indexOf("XYZ");
    bytes.set([0xed, 0xa0, 0x80], at);
    const d = decodePeerFrame(bytes);
    if (d.ok) {
      const m = d.frame.messages[0]!;
      if (m.type !== "catchupRequest") throw new Error("unexpected message");
      expect(m.after).toBe("\ufffd\ufffd\ufffd");
    }
  });

  it("ignores unknown fields and does not pass them on", () => {
    const d = decodePeerFrame(tampered({ type: "readProbe", group: "g", probe: 1, extra: "x", __proto__x: 1 }, { trace: "abc" }));
    expect(d).toEqual({ ok: true, frame: { from: "n1", cluster: "dev", messages: [{ type: "readProbe", group: "g", probe: 1 }] } });
  });

  it("a __proto__ field cannot smuggle fields in", () => {
    // msgpack map { "__proto__": { "index": 5 }, ... } for an accepted message missing its index
    const bytes = tampered({ type: "accepted", group: "g", ballot: BALLOT, ["__proto__" as string]: { index: 5 } });
    const d = decodePeerFrame(bytes);
    expect(d.ok).toBe(false);
  });
});
