// The API codec: every op round-trips in both encodings, requests from client to validated
// request, answers from the node to the client's typed answer; and the JSON forms a person
// types at a terminal decode as documented in docs/API.md.

import { describe, expect, it } from "vitest";

import type { ApiOp, ApiRequest, ApiResponse, ValidRequest } from "../../src/protocol/api.js";
import { answerRead, answerWrite } from "../../src/protocol/api.js";
import {
  CONTENT_TYPE_HEADER,
  CONTENT_TYPE_JSON,
  CONTENT_TYPE_MSGPACK,
  contentTypeOf,
  decodeResponse,
  encodeRequest,
  encodeResponse,
  encodingFromContentType,
  readRequest,
  valueAsText,
  type Encoding,
} from "../../src/protocol/codec.js";
import { ConflictError, NotReplicaError, TimeoutError } from "../../src/protocol/errors.js";
import { DEFAULT_WIRE_LIMITS } from "../../src/protocol/limits.js";

const ENCODINGS: Encoding[] = ["json", "msgpack"];
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const BINARY = new Uint8Array([0, 1, 2, 0xff, 0xfe, 0x80, 10]);
const json = (s: string): Uint8Array => bytes(s);

function valid(req: ApiRequest, enc: Encoding): ValidRequest {
  const v = readRequest(encodeRequest(req, enc), enc);
  if (!v.ok) throw v.error;
  return v.request;
}

describe("content type header", () => {
  it("names the header and its values", () => {
    expect(CONTENT_TYPE_HEADER).toBe("Content-Type");
    expect(contentTypeOf("json")).toBe(CONTENT_TYPE_JSON);
    expect(contentTypeOf("msgpack")).toBe(CONTENT_TYPE_MSGPACK);
  });

  it("defaults to JSON when absent or empty", () => {
    expect(encodingFromContentType(undefined)).toEqual({ ok: true, encoding: "json" });
    expect(encodingFromContentType(null)).toEqual({ ok: true, encoding: "json" });
    expect(encodingFromContentType("")).toEqual({ ok: true, encoding: "json" });
  });

  it("ignores case and parameters, accepts msgpack aliases", () => {
    expect(encodingFromContentType("Application/JSON; charset=utf-8")).toEqual({ ok: true, encoding: "json" });
    expect(encodingFromContentType("application/msgpack")).toEqual({ ok: true, encoding: "msgpack" });
    expect(encodingFromContentType("application/x-msgpack")).toEqual({ ok: true, encoding: "msgpack" });
    expect(encodingFromContentType("application/vnd.msgpack")).toEqual({ ok: true, encoding: "msgpack" });
  });

  it("refuses other encodings as a bad_request on Content-Type", () => {
    const r = encodingFromContentType("text/xml");
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.code).toBe("bad_request");
      expect(r.error.details).toMatchObject({ field: "Content-Type" });
    }
  });
});

describe("requests round-trip in both encodings", () => {
  for (const enc of ENCODINGS) {
    describe(enc, () => {
      it("get: the key is its own group by default, linearizable, auto values", () => {
        expect(valid({ op: "get", key: "greeting" }, enc)).toEqual({
          kind: "read",
          group: "greeting",
          query: { kind: "get", key: "greeting" },
          consistency: "linearizable",
          valueEncoding: "auto",
        });
        expect(valid({ op: "get", group: "user:42", key: "profile", consistency: "stale", valueEncoding: "base64" }, enc)).toEqual({
          kind: "read",
          group: "user:42",
          query: { kind: "get", key: "profile" },
          consistency: "stale",
          valueEncoding: "base64",
        });
      });

      it("put with a string value, with bytes, with a request id", () => {
        expect(valid({ op: "put", key: "k", value: "hello" }, enc)).toEqual({
          kind: "write",
          group: "k",
          op: { op: "put", key: "k", value: bytes("hello") },
          requestId: null,
        });
        expect(valid({ op: "put", group: "g", key: "k", value: BINARY, requestId: "r-1" }, enc)).toEqual({
          kind: "write",
          group: "g",
          op: { op: "put", key: "k", value: BINARY },
          requestId: "r-1",
        });
      });

      it("delete", () => {
        expect(valid({ op: "delete", key: "k", requestId: "r-2" }, enc)).toEqual({
          kind: "write",
          group: "k",
          op: { op: "delete", key: "k" },
          requestId: "r-2",
        });
      });

      it("cas, including version 0 (must not exist)", () => {
        expect(valid({ op: "cas", key: "k", version: 0, value: "v" }, enc)).toEqual({
          kind: "write",
          group: "k",
          op: { op: "cas", key: "k", version: 0, value: bytes("v") },
          requestId: null,
        });
        expect(valid({ op: "cas", group: "g", key: "k", version: 17, value: BINARY }, enc)).toMatchObject({
          op: { op: "cas", version: 17, value: BINARY },
          group: "g",
        });
      });

      it("txn with every kind of compare and both branches", () => {
        const req: ApiRequest = {
          op: "txn",
          group: "user:42",
          compares: [
            { key: "a", version: 3 },
            { key: "b", cmp: ">", version: 0 },
            { key: "c", value: "x" },
            { key: "d", target: "value", cmp: "!=", value: BINARY },
            { key: "e", exists: false },
          ],
          success: [
            { op: "put", key: "a", value: "1" },
            { op: "delete", key: "b" },
            { op: "put", key: "bin", value: BINARY },
          ],
          failure: [{ op: "put", key: "failed", value: "yes" }],
          requestId: "txn-1",
        };
        expect(valid(req, enc)).toEqual({
          kind: "write",
          group: "user:42",
          requestId: "txn-1",
          op: {
            op: "txn",
            compares: [
              { key: "a", target: "version", cmp: "=", version: 3 },
              { key: "b", target: "version", cmp: ">", version: 0 },
              { key: "c", target: "value", cmp: "=", value: bytes("x") },
              { key: "d", target: "value", cmp: "!=", value: BINARY },
              { key: "e", target: "exists", exists: false },
            ],
            success: [
              { op: "put", key: "a", value: bytes("1") },
              { op: "delete", key: "b" },
              { op: "put", key: "bin", value: BINARY },
            ],
            failure: [{ op: "put", key: "failed", value: bytes("yes") }],
          },
        });
      });

      it("txn with only success (an atomic multi-put)", () => {
        expect(valid({ op: "txn", group: "g", success: [{ op: "put", key: "a", value: "1" }] }, enc)).toMatchObject({
          op: { op: "txn", compares: [], success: [{ op: "put", key: "a" }], failure: [] },
        });
      });

      it("scan with defaults and with every option", () => {
        expect(valid({ op: "scan", group: "g" }, enc)).toEqual({
          kind: "read",
          group: "g",
          query: { kind: "scan", prefix: "", limit: DEFAULT_WIRE_LIMITS.scanLimitDefault },
          consistency: "linearizable",
          valueEncoding: "auto",
        });
        expect(
          valid({ op: "scan", group: "g", prefix: "contacts/", after: "contacts/17", limit: 5, consistency: "stale", valueEncoding: "base64" }, enc),
        ).toEqual({
          kind: "read",
          group: "g",
          query: { kind: "scan", prefix: "contacts/", after: "contacts/17", limit: 5 },
          consistency: "stale",
          valueEncoding: "base64",
        });
      });

      it("status", () => {
        expect(valid({ op: "status" }, enc)).toEqual({ kind: "status" });
      });
    });
  }
});

const STATUS: ApiResponse = {
  ok: true,
  node: "n1",
  cluster: "dev",
  version: "0.1.0",
  uptimeMs: 1234,
  members: ["n1", "n2", "n3"],
  membersSeen: ["n1", "n3"],
  groupsActive: 17,
  limits: DEFAULT_WIRE_LIMITS,
};

const ANSWERS: [ApiOp, ApiResponse][] = [
  ["get", { ok: true, found: true, value: bytes("hello"), version: 7, index: 9 }],
  ["get", { ok: true, found: true, value: BINARY, version: 7, index: 9 }],
  ["get", { ok: true, found: false, index: 9 }],
  ["put", { ok: true, version: 12 }],
  ["delete", { ok: true, version: 13, existed: true }],
  ["cas", { ok: true, version: 14 }],
  [
    "txn",
    {
      ok: true,
      succeeded: false,
      version: 15,
      currentVersions: [3, 0],
      results: [
        { op: "put", version: 15 },
        { op: "delete", version: 15, existed: false },
      ],
    },
  ],
  [
    "scan",
    {
      ok: true,
      items: [
        { key: "a", value: bytes("1"), version: 2 },
        { key: "b", value: BINARY, version: 3 },
      ],
      next: "b",
      index: 20,
    },
  ],
  ["scan", { ok: true, items: [], index: 20 }],
  ["status", STATUS],
  ["cas", { ok: false, error: { code: "conflict", message: new ConflictError("k", 3, 5).message, details: { key: "k", expected: 3, current: 5 } } }],
  ["put", { ok: false, error: { code: "timeout", message: new TimeoutError().message, details: { requestId: "r-1" } } }],
  ["get", { ok: false, error: { code: "not_replica", message: new NotReplicaError("g", ["n1", "n2"]).message, details: { group: "g", replicas: ["n1", "n2"] } } }],
];

describe("answers round-trip in both encodings", () => {
  for (const enc of ENCODINGS) {
    for (const [op, answer] of ANSWERS) {
      it(`${enc} ${op} ${answer.ok ? "ok" : answer.error.code}`, () => {
        expect(decodeResponse(encodeResponse(answer, enc), enc, op)).toEqual(answer);
        expect(decodeResponse(encodeResponse(answer, enc, "base64"), enc, op)).toEqual(answer);
      });
    }
  }

  it("a malformed answer becomes an internal error answer, never a throw", () => {
    expect(decodeResponse(json('{"ok":true}'), "json", "put")).toMatchObject({ ok: false, error: { code: "internal" } });
    expect(decodeResponse(json("nope"), "json", "get")).toMatchObject({ ok: false, error: { code: "internal" } });
    expect(decodeResponse(new Uint8Array([0xc1]), "msgpack", "get")).toMatchObject({ ok: false, error: { code: "internal" } });
    expect(decodeResponse(json('{"ok":false,"error":{"code":"brand_new","message":"m"}}'), "json", "get")).toMatchObject({
      ok: false,
      error: { code: "internal", message: "m", details: { wireCode: "brand_new" } },
    });
  });
});

describe("JSON as a person types and reads it", () => {
  it("answers text values as `value` and binary as `valueBase64`", () => {
    const text = JSON.parse(new TextDecoder().decode(encodeResponse({ ok: true, found: true, value: bytes("héllo\n"), version: 1, index: 2 }, "json")));
    expect(text).toEqual({ ok: true, found: true, value: "héllo\n", version: 1, index: 2 });
    const bin = JSON.parse(new TextDecoder().decode(encodeResponse({ ok: true, found: true, value: BINARY, version: 1, index: 2 }, "json")));
    expect(bin).toEqual({ ok: true, found: true, valueBase64: Buffer.from(BINARY).toString("base64"), version: 1, index: 2 });
    const asked = JSON.parse(new TextDecoder().decode(encodeResponse({ ok: true, found: true, value: bytes("hi"), version: 1, index: 2 }, "json", "base64")));
    expect(asked).toEqual({ ok: true, found: true, valueBase64: "aGk=", version: 1, index: 2 });
  });

  it("msgpack answers carry raw bytes", async () => {
    const { unpack } = await import("msgpackr");
    const decoded = unpack(encodeResponse({ ok: true, found: true, value: bytes("hi"), version: 1, index: 2 }, "msgpack")) as Record<string, unknown>;
    expect(decoded["value"]).toBeInstanceOf(Uint8Array);
  });

  it("text means valid UTF-8 without control characters but tab, CR and LF, BOM kept", () => {
    expect(valueAsText(bytes("plain"))).toBe("plain");
    expect(valueAsText(bytes("tab\tcr\rlf\n"))).toBe("tab\tcr\rlf\n");
    expect(valueAsText(new Uint8Array([0xef, 0xbb, 0xbf, 0x61]))).toBe("\ufeffa");
    expect(valueAsText(new Uint8Array([0x61, 0x00]))).toBeNull();
    expect(valueAsText(new Uint8Array([0xc3]))).toBeNull(); // truncated sequence
    expect(valueAsText(new Uint8Array([0xed, 0xa0, 0x80]))).toBeNull(); // encoded surrogate
    expect(valueAsText(new Uint8Array([0xc0, 0x80]))).toBeNull(); // overlong NUL
  });

  it("accepts a typed request with valueBase64, a BOM, and null for absent options", () => {
    const body = '\ufeff{"op":"put","key":"k","valueBase64":"AAEC/w==","group":null,"requestId":null}';
    expect(readRequest(json(body), "json")).toEqual({
      ok: true,
      request: { kind: "write", group: "k", op: { op: "put", key: "k", value: new Uint8Array([0, 1, 2, 255]) }, requestId: null },
    });
    const unpadded = readRequest(json('{"op":"put","key":"k","valueBase64":"AAEC/w"}'), "json");
    expect(unpadded.ok && unpadded.request.kind === "write" && unpadded.request.op.op === "put" && unpadded.request.op.value).toEqual(
      new Uint8Array([0, 1, 2, 255]),
    );
  });

  it("a msgpack request may give a value as a string", async () => {
    const { pack } = await import("msgpackr");
    expect(readRequest(pack({ op: "put", key: "k", value: "text" }), "msgpack")).toMatchObject({
      ok: true,
      request: { op: { value: bytes("text") } },
    });
  });
});

describe("from core results to answers", () => {
  it("a failed cas is a conflict naming the key, the expected and the current version", () => {
    const r = answerWrite({ op: "cas", key: "k", version: 3, value: bytes("v") }, { type: "cas", ok: false, current: 5 });
    expect(r).toMatchObject({ ok: false, error: { code: "conflict", details: { key: "k", expected: 3, current: 5 } } });
  });

  it("a txn answer names each write's result", () => {
    const r = answerWrite(
      { op: "txn", compares: [], success: [], failure: [] },
      {
        type: "txn",
        succeeded: true,
        version: 4,
        currentVersions: [],
        results: [
          { type: "put", version: 4 },
          { type: "delete", version: 4, existed: true },
        ],
      },
    );
    expect(r).toEqual({
      ok: true,
      succeeded: true,
      version: 4,
      currentVersions: [],
      results: [
        { op: "put", version: 4 },
        { op: "delete", version: 4, existed: true },
      ],
    });
  });

  it("a scan page that would not fit in a frame is cut, with a next cursor, keeping at least one item", () => {
    const big = new Uint8Array(DEFAULT_WIRE_LIMITS.valueBytesMax);
    const items = Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, value: big, version: i + 1 }));
    const r = answerRead({ kind: "scan", index: 30, items }, DEFAULT_WIRE_LIMITS);
    if (!r.ok || !("items" in r)) throw new Error("expected a scan answer");
    expect(r.items.length).toBe(1);
    expect(r.next).toBe("k0");
    for (const enc of ENCODINGS) {
      expect(encodeResponse(r, enc, "base64").length).toBeLessThan(DEFAULT_WIRE_LIMITS.frameBytesMax);
    }
    const small = answerRead({ kind: "scan", index: 30, items: items.slice(0, 1).map((i) => ({ ...i, value: bytes("x") })) }, DEFAULT_WIRE_LIMITS);
    expect(small).toEqual({ ok: true, items: [{ key: "k0", value: bytes("x"), version: 1 }], index: 30 });
  });

  it("the largest legal answers fit in a frame in both encodings", () => {
    const worstText = new Uint8Array(DEFAULT_WIRE_LIMITS.valueBytesMax).fill(0x22); // '"' escapes to 2 bytes
    const worstKey = "\u0001".repeat(DEFAULT_WIRE_LIMITS.keyBytesMax); // escapes to 6 bytes
    const items = Array.from({ length: 40 }, (_, i) => ({ key: `${worstKey.slice(4)}${String(i).padStart(4, "0")}`, value: worstText, version: 1 }));
    const page = answerRead({ kind: "scan", index: 1, items }, DEFAULT_WIRE_LIMITS);
    const get = answerRead({ kind: "get", index: 1, entry: { value: worstText, version: 1 } }, DEFAULT_WIRE_LIMITS);
    for (const enc of ENCODINGS) {
      for (const r of [page, get]) {
        expect(encodeResponse(r, enc).length).toBeLessThan(DEFAULT_WIRE_LIMITS.frameBytesMax);
        expect(encodeResponse(r, enc, "base64").length).toBeLessThan(DEFAULT_WIRE_LIMITS.frameBytesMax);
      }
    }
  });
});
