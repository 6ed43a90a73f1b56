// Every kind of bad request answers the right code and names the right field.

import { pack } from "msgpackr";
import { describe, expect, it } from "vitest";

import { decodeBody, readRequest, type Encoding } from "../../src/protocol/codec.js";
import { BadRequestError, TooLargeError } from "../../src/protocol/errors.js";
import { DEFAULT_WIRE_LIMITS as L, resolveWireLimits } from "../../src/protocol/limits.js";
import { validateRequest } from "../../src/protocol/validate.js";

type Expect = { code: "bad_request" | "too_large"; field: string; limit?: string; reason?: RegExp };

function refused(decoded: unknown, want: Expect): void {
  const v = validateRequest(decoded);
  expect(v.ok, `accepted ${String(decoded).slice(0, 200)}`).toBe(false);
  if (v.ok) return;
  expect(v.error.code).toBe(want.code);
  expect(v.error.details).toMatchObject({ field: want.field });
  if (want.code === "bad_request") expect(v.error).toBeInstanceOf(BadRequestError);
  if (want.code === "too_large") expect(v.error).toBeInstanceOf(TooLargeError);
  if (want.limit !== undefined) expect(v.error.details).toMatchObject({ limit: want.limit });
  if (want.reason !== undefined) expect(String(v.error.details?.["reason"])).toMatch(want.reason);
}

const bad = (field: string, reason?: RegExp): Expect => (reason === undefined ? { code: "bad_request", field } : { code: "bad_request", field, reason });
const large = (field: string, limit: string): Expect => ({ code: "too_large", field, limit });

const big = (n: number): string => "x".repeat(n);
const txn = (extra: Record<string, unknown>): Record<string, unknown> => ({ op: "txn", group: "g", ...extra });

const CASES: [string, unknown, Expect][] = [
  // The body itself.
  ["null body", null, bad("(body)")],
  ["array body", [{ op: "get" }], bad("(body)")],
  ["string body", "get k", bad("(body)")],
  ["number body", 42, bad("(body)")],
  ["Date body", new Date(0), bad("(body)")],
  ["Map body", new Map([["op", "get"]]), bad("(body)")],
  ["class instance body", new (class Req { op = "status"; })(), bad("(body)")],
  ["bytes body", new Uint8Array([1]), bad("(body)")],
  // op.
  ["missing op", { key: "k" }, bad("op", /missing/)],
  ["unknown op", { op: "increment", key: "k" }, bad("op", /unknown op/)],
  ["op of the wrong case", { op: "GET", key: "k" }, bad("op")],
  ["numeric op", { op: 1 }, bad("op")],
  ["object with another prototype", Object.create({ op: "status" }), bad("(body)")],
  // Unknown fields, including prototype pollution.
  ["typo", { op: "put", key: "k", vaule: "v" }, bad("vaule", /unknown field/)],
  ["__proto__ key", JSON.parse('{"op":"status","__proto__":{"polluted":true}}'), bad("__proto__", /unknown field/)],
  ["constructor key", JSON.parse('{"op":"get","key":"k","constructor":{"prototype":{}}}'), bad("constructor")],
  ["status with a key", { op: "status", key: "k" }, bad("key")],
  // Keys.
  ["missing key", { op: "get" }, bad("key", /missing/)],
  ["null key", { op: "put", key: null, value: "v" }, bad("key", /missing/)],
  ["empty key", { op: "get", key: "" }, bad("key", /empty/)],
  ["numeric key", { op: "get", key: 42 }, bad("key", /string/)],
  ["object key", { op: "get", key: { toString: "k" } }, bad("key")],
  ["lone surrogate key", { op: "get", key: "a\ud800b" }, bad("key", /well-formed/)],
  ["huge key", { op: "get", key: big(L.keyBytesMax + 1) }, large("key", "keyBytesMax")],
  ["key huge in UTF-8 only", { op: "get", key: "é".repeat(L.keyBytesMax / 2 + 1) }, large("key", "keyBytesMax")],
  // Groups.
  ["empty group", { op: "get", group: "", key: "k" }, bad("group", /empty/)],
  ["numeric group", { op: "get", group: 7, key: "k" }, bad("group")],
  ["huge group", { op: "get", group: big(L.groupBytesMax + 1), key: "k" }, large("group", "groupBytesMax")],
  ["scan without group", { op: "scan", prefix: "a" }, bad("group", /missing/)],
  ["txn without group", { op: "txn", success: [] }, bad("group", /missing/)],
  // Values.
  ["put without value", { op: "put", key: "k" }, bad("value", /missing/)],
  ["put with both value forms", { op: "put", key: "k", value: "a", valueBase64: "YQ==" }, bad("value", /not both/)],
  ["numeric value", { op: "put", key: "k", value: 42 }, bad("value", /string/)],
  ["object value", { op: "put", key: "k", value: { a: 1 } }, bad("value")],
  ["array value", { op: "put", key: "k", value: [1, 2] }, bad("value")],
  ["Int32Array value", { op: "put", key: "k", value: new Int32Array(2) }, bad("value")],
  ["lone surrogate value", { op: "put", key: "k", value: "\udc00" }, bad("value", /valueBase64/)],
  ["bad base64", { op: "put", key: "k", valueBase64: "not base64!" }, bad("valueBase64", /base64/)],
  ["base64url is not base64", { op: "put", key: "k", valueBase64: "-_-_" }, bad("valueBase64")],
  ["base64 of impossible length", { op: "put", key: "k", valueBase64: "AAAAA" }, bad("valueBase64")],
  ["numeric base64", { op: "put", key: "k", valueBase64: 12 }, bad("valueBase64")],
  ["huge value", { op: "put", key: "k", value: big(L.valueBytesMax + 1) }, large("value", "valueBytesMax")],
  ["huge bytes value", { op: "put", key: "k", value: new Uint8Array(L.valueBytesMax + 1) }, large("value", "valueBytesMax")],
  ["huge base64 value", { op: "put", key: "k", valueBase64: "A".repeat(4 * Math.ceil((L.valueBytesMax + 1) / 3)) }, large("valueBase64", "valueBytesMax")],
  // Versions.
  ["cas without version", { op: "cas", key: "k", value: "v" }, bad("version", /missing/)],
  ["cas NaN version", { op: "cas", key: "k", version: NaN, value: "v" }, bad("version", /NaN/)],
  ["cas infinite version", { op: "cas", key: "k", version: Infinity, value: "v" }, bad("version", /infinity/)],
  ["cas negative version", { op: "cas", key: "k", version: -1, value: "v" }, bad("version", /-1/)],
  ["cas fractional version", { op: "cas", key: "k", version: 1.5, value: "v" }, bad("version", /fraction/)],
  ["cas unsafe version", { op: "cas", key: "k", version: 2 ** 53, value: "v" }, bad("version", /2\^53/)],
  ["cas string version", { op: "cas", key: "k", version: "3", value: "v" }, bad("version")],
  ["cas bigint version", { op: "cas", key: "k", version: 3n, value: "v" }, bad("version", /big integer/)],
  // Request ids.
  ["empty request id", { op: "delete", key: "k", requestId: "" }, bad("requestId", /empty/)],
  ["numeric request id", { op: "delete", key: "k", requestId: 7 }, bad("requestId")],
  ["request id with a newline", { op: "delete", key: "k", requestId: "a\nb" }, bad("requestId", /control/)],
  ["huge request id", { op: "delete", key: "k", requestId: big(L.requestIdBytesMax + 1) }, large("requestId", "requestIdBytesMax")],
  // Read options.
  ["bad consistency", { op: "get", key: "k", consistency: "strong" }, bad("consistency")],
  ["bad valueEncoding", { op: "get", key: "k", valueEncoding: "hex" }, bad("valueEncoding")],
  // Scans.
  ["scan limit 0", { op: "scan", group: "g", limit: 0 }, bad("limit", /at least 1/)],
  ["scan limit fraction", { op: "scan", group: "g", limit: 2.5 }, bad("limit")],
  ["scan limit string", { op: "scan", group: "g", limit: "10" }, bad("limit")],
  ["scan limit over the max", { op: "scan", group: "g", limit: L.scanLimitMax + 1 }, large("limit", "scanLimitMax")],
  ["scan numeric prefix", { op: "scan", group: "g", prefix: 1 }, bad("prefix")],
  ["scan huge after", { op: "scan", group: "g", after: big(L.keyBytesMax + 1) }, large("after", "keyBytesMax")],
  // Txns.
  ["txn compares not an array", txn({ compares: { key: "a" } }), bad("compares", /array/)],
  ["txn success not an array", txn({ success: "put a" }), bad("success")],
  ["txn too many compares", txn({ compares: Array.from({ length: L.txnComparesMax + 1 }, () => ({ key: "a", version: 0 })) }), large("compares", "txnComparesMax")],
  ["txn too many writes", txn({ success: Array.from({ length: L.txnWritesMax + 1 }, () => ({ op: "delete", key: "a" })) }), large("success", "txnWritesMax")],
  ["txn huge array", txn({ failure: new Array(1_000_000).fill(0) }), large("failure", "txnWritesMax")],
  ["txn compare not an object", txn({ compares: ["a"] }), bad("compares[0]")],
  ["txn compare without target", txn({ compares: [{ key: "a" }] }), bad("compares[0]", /exactly one/)],
  ["txn compare with two targets", txn({ compares: [{ key: "a", version: 1, exists: true }] }), bad("compares[0]", /exactly one/)],
  ["txn compare target mismatch", txn({ compares: [{ key: "a", target: "exists", version: 1 }] }), bad("compares[0].target")],
  ["txn compare bad target", txn({ compares: [{ key: "a", target: "size", version: 1 }] }), bad("compares[0].target")],
  ["txn compare bad cmp", txn({ compares: [{ key: "a", cmp: "==", version: 1 }] }), bad("compares[0].cmp")],
  ["txn value compare with <", txn({ compares: [{ key: "a", cmp: "<", value: "x" }] }), bad("compares[0].cmp")],
  ["txn exists compare with cmp", txn({ compares: [{ key: "a", cmp: "=", exists: true }] }), bad("compares[0].cmp")],
  ["txn exists not boolean", txn({ compares: [{ key: "a", exists: "yes" }] }), bad("compares[0].exists")],
  ["txn compare negative version", txn({ compares: [{ key: "a", version: -3 }] }), bad("compares[0].version")],
  ["txn compare missing key", txn({ compares: [{ version: 3 }] }), bad("compares[0].key", /missing/)],
  ["txn compare unknown field", txn({ compares: [{ key: "a", version: 3, op: "=" }] }), bad("compares[0].op")],
  ["txn write without op", txn({ success: [{ key: "a", value: "1" }] }), bad("success[0].op", /missing/)],
  ["txn write cas", txn({ success: [{ op: "cas", key: "a", version: 1, value: "1" }] }), bad("success[0].op")],
  ["txn put without value", txn({ failure: [{ op: "put", key: "a" }] }), bad("failure[0].value")],
  ["txn delete with value", txn({ success: [{ op: "delete", key: "a", value: "1" }] }), bad("success[0].value", /unknown field/)],
  ["txn write huge key", txn({ success: [{ op: "delete", key: big(L.keyBytesMax + 1) }] }), large("success[0].key", "keyBytesMax")],
  [
    "txn over writeBytesMax in total",
    txn({ success: Array.from({ length: 3 }, (_, i) => ({ op: "put", key: `k${i}`, value: big(L.valueBytesMax) })) }),
    large("txn", "writeBytesMax"),
  ],
];

describe("validateRequest refuses bad input, naming the field", () => {
  for (const [name, input, want] of CASES) {
    it(name, () => refused(input, want));
  }

  it("does not pollute Object.prototype", () => {
    validateRequest(JSON.parse('{"op":"status","__proto__":{"polluted":true}}'));
    validateRequest(JSON.parse('{"op":"put","key":"__proto__","value":"x"}'));
    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined();
  });

  it("accepts __proto__ and constructor as ordinary keys and groups", () => {
    expect(validateRequest({ op: "put", group: "constructor", key: "__proto__", value: "x" })).toMatchObject({
      ok: true,
      request: { group: "constructor", op: { key: "__proto__" } },
    });
  });

  it("accepts keys and values exactly at the limits", () => {
    expect(validateRequest({ op: "put", key: big(L.keyBytesMax), value: big(L.valueBytesMax) }).ok).toBe(true);
    expect(validateRequest({ op: "scan", group: "g", limit: L.scanLimitMax }).ok).toBe(true);
  });

  it("follows configured limits", () => {
    const tight = resolveWireLimits({ keyBytesMax: 4, valueBytesMax: 8 });
    expect(validateRequest({ op: "put", key: "abcde", value: "v" }, tight)).toMatchObject({ ok: false, error: { code: "too_large" } });
    expect(validateRequest({ op: "put", key: "abcd", value: "123456789" }, tight)).toMatchObject({
      ok: false,
      error: { code: "too_large", details: { field: "value", limit: "valueBytesMax", max: 8, size: 9 } },
    });
  });

  it("names the limit, its value and the size in too_large", () => {
    const v = validateRequest({ op: "get", key: big(2000) });
    expect(v).toMatchObject({ ok: false, error: { details: { field: "key", limit: "keyBytesMax", max: 1024, size: 2000 } } });
  });
});

describe("decoding refuses what is not a request", () => {
  const cases: [string, Uint8Array, Encoding, Expect][] = [
    ["empty JSON body", new Uint8Array(0), "json", bad("(body)", /empty/)],
    ["garbage JSON", new TextEncoder().encode("{op: get}"), "json", bad("(body)", /JSON/)],
    ["truncated JSON", new TextEncoder().encode('{"op":"get","key":"k"'), "json", bad("(body)", /JSON/)],
    ["invalid UTF-8 JSON", new Uint8Array([0x7b, 0xff, 0x7d]), "json", bad("(body)", /UTF-8/)],
    ["msgpack sent as JSON", pack({ op: "get", key: "k" }), "json", bad("(body)")],
    ["JSON sent as msgpack", new TextEncoder().encode('{"op":"get","key":"k"}'), "msgpack", bad("(body)", /msgpack/)],
    ["truncated msgpack", pack({ op: "get", key: "k" }).subarray(0, 5), "msgpack", bad("(body)", /msgpack/)],
    ["msgpack with trailing bytes", new Uint8Array([...pack({ op: "status" }), 0x01]), "msgpack", bad("(body)", /msgpack/)],
    ["reserved msgpack byte", new Uint8Array([0xc1]), "msgpack", bad("(body)")],
    ["over the frame limit", new Uint8Array(L.frameBytesMax + 1), "json", large("(body)", "frameBytesMax")],
  ];
  for (const [name, bytes, enc, want] of cases) {
    it(name, () => {
      const r = readRequest(bytes, enc);
      expect(r.ok).toBe(false);
      if (r.ok) return;
      expect(r.error.code).toBe(want.code);
      expect(r.error.details).toMatchObject({ field: want.field });
      if (want.reason) expect(String(r.error.details?.["reason"])).toMatch(want.reason);
    });
  }

  it("deep nesting is an error, not a crash", () => {
    const deep = "[".repeat(200_000) + "]".repeat(200_000);
    expect(readRequest(new TextEncoder().encode(deep), "json").ok).toBe(false);
    const deepPack = new Uint8Array(200_000).fill(0x91); // fixarray(1) of fixarray(1) of ...
    expect(decodeBody(deepPack, "msgpack").ok).toBe(false);
  });

  it("msgpack extensions (Date, Set, RegExp, records) are refused as values", async () => {
    const { Packr } = await import("msgpackr");
    const rich = new Packr({ structuredClone: true, moreTypes: true });
    for (const value of [new Date(0), new Set([1]), /re/, new Map([[1, 2]]), new Float64Array(2)]) {
      const r = readRequest(rich.pack({ op: "put", key: "k", value }), "msgpack");
      expect(r).toMatchObject({ ok: false, error: { code: "bad_request", details: { field: "value" } } });
    }
    const records = new Packr({ useRecords: true });
    expect(readRequest(records.pack({ op: "put", key: "k", value: "v" }), "msgpack")).toMatchObject({ ok: true });
  });
});
