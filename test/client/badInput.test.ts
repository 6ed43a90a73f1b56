// Bad input of every kind, sent raw over NATS to a live node (no client library in the way):
// each request gets the right error code and field, in the request's encoding when it has a
// valid one, and the node keeps answering good requests afterwards.

import { headers as natsHeaders } from "@nats-io/transport-node";
import { Packr, Unpackr } from "msgpackr";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type TestCluster } from "../helpers/cluster.js";

let c: TestCluster;
const NODE = "n2";
beforeAll(async () => {
  c = await startCluster({ nodes: 3, cluster: "bad" });
});
afterAll(async () => {
  await c?.close();
});

// Plain msgpack both ways, as any other client would send it.
const packr = new Packr({ useRecords: false, moreTypes: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
const enc = new TextEncoder();

interface Answer {
  readonly contentType: string | undefined;
  readonly body: Record<string, unknown>;
}

async function raw(data: Uint8Array, contentType?: string, node: string = NODE): Promise<Answer> {
  const h = natsHeaders();
  if (contentType !== undefined) h.set("Content-Type", contentType);
  const m = await c.nc.request(`paxosstore.${c.cluster}.api.${node}`, data, { timeout: 10_000, headers: h });
  const ct = m.headers?.get("Content-Type") || undefined;
  const body = ct === "application/msgpack" ? (unpackr.unpack(m.data) as Record<string, unknown>) : (JSON.parse(new TextDecoder().decode(m.data)) as Record<string, unknown>);
  return { contentType: ct, body };
}

const json = (o: unknown): Promise<Answer> => raw(enc.encode(JSON.stringify(o)), "application/json");
const msgpack = (o: unknown): Promise<Answer> => raw(packr.pack(o), "application/msgpack");

function expectError(a: Answer, code: string, field?: string): void {
  expect(a.body.ok, JSON.stringify(a.body)).toBe(false);
  const error = a.body.error as { code: string; message: string; details?: Record<string, unknown> };
  expect(error.code, JSON.stringify(a.body)).toBe(code);
  expect(typeof error.message).toBe("string");
  if (field !== undefined) expect(error.details?.field, JSON.stringify(a.body)).toBe(field);
}

async function nodeStillAnswers(tag: string): Promise<void> {
  const put = await json({ op: "put", key: `alive-${tag}`, value: tag });
  expect(put.body).toMatchObject({ ok: true, version: expect.any(Number) });
  const get = await json({ op: "get", key: `alive-${tag}` });
  expect(get.body).toMatchObject({ ok: true, found: true, value: tag });
}

describe("garbage and wrong encodings", () => {
  it("garbage bytes with a JSON header, with no header, and with a msgpack header", async () => {
    const garbage = new Uint8Array([0xc1, 0xff, 0x00, 0x13, 0x37, 0xde, 0xad]);
    const a = await raw(garbage, "application/json");
    expectError(a, "bad_request", "(body)");
    expect(a.contentType).toBe("application/json");
    expectError(await raw(garbage), "bad_request", "(body)");
    expectError(await raw(enc.encode("{not json")), "bad_request", "(body)");
    const m = await raw(garbage, "application/msgpack");
    expectError(m, "bad_request", "(body)");
    expect(m.contentType).toBe("application/msgpack"); // answered in the request's encoding
    // 0xc1 is never valid msgpack; a truncated map neither.
    expectError(await raw(new Uint8Array([0x82, 0xa2, 0x6f, 0x70]), "application/msgpack"), "bad_request", "(body)");
    await nodeStillAnswers("garbage");
  });

  it("an empty body, and bodies that are not objects", async () => {
    expectError(await raw(new Uint8Array(0), "application/json"), "bad_request", "(body)");
    expectError(await raw(new Uint8Array(0), "application/msgpack"), "bad_request", "(body)");
    for (const body of [null, 42, "put", [], [{ op: "status" }], true]) {
      expectError(await json(body), "bad_request", "(body)");
      expectError(await msgpack(body), "bad_request", "(body)");
    }
  });

  it("a wrong Content-Type is refused, in JSON, naming the header", async () => {
    for (const ct of ["text/plain", "application/xml", "application/cbor", "garbage;;"]) {
      const a = await raw(enc.encode(JSON.stringify({ op: "status" })), ct);
      expectError(a, "bad_request", "Content-Type");
      expect(a.contentType).toBe("application/json");
    }
    // Case and parameters do not matter; the aliases work.
    for (const ct of ["Application/JSON; charset=utf-8", "text/json"]) expect((await raw(enc.encode('{"op":"status"}'), ct)).body.ok).toBe(true);
    for (const ct of ["application/x-msgpack", "application/vnd.msgpack", "APPLICATION/MSGPACK"]) {
      const a = await raw(packr.pack({ op: "status" }), ct);
      expect(a.body.ok).toBe(true);
    }
  });

  it("msgpack with a JSON header, and JSON with a msgpack header", async () => {
    const a = await raw(packr.pack({ op: "put", key: "k", value: new Uint8Array([1, 2]) }), "application/json");
    expectError(a, "bad_request", "(body)");
    const b = await raw(enc.encode(JSON.stringify({ op: "put", key: "k", value: "v" })), "application/msgpack");
    expectError(b, "bad_request");
    expect(b.contentType).toBe("application/msgpack");
    await nodeStillAnswers("mixed");
  });

  it("JSON that is not valid UTF-8, and strings with lone surrogates", async () => {
    const bad = new Uint8Array([...enc.encode('{"op":"put","key":"k","value":"'), 0xff, 0xfe, ...enc.encode('"}')]);
    expectError(await raw(bad, "application/json"), "bad_request", "(body)");
    expectError(await raw(enc.encode('{"op":"put","key":"k","value":"\\ud800"}'), "application/json"), "bad_request", "value");
    expectError(await raw(enc.encode('{"op":"put","key":"\\udc00","value":"v"}'), "application/json"), "bad_request", "key");
  });
});

describe("wrong shapes", () => {
  it("missing and unknown ops", async () => {
    expectError(await json({ key: "k" }), "bad_request", "op");
    expectError(await json({ op: "frobnicate", key: "k" }), "bad_request", "op");
    expectError(await json({ op: 7 }), "bad_request", "op");
    expectError(await msgpack({ op: "GET", key: "k" }), "bad_request", "op");
    expectError(await json({ op: "__proto__" }), "bad_request", "op");
  });

  it("missing fields", async () => {
    expectError(await json({ op: "get" }), "bad_request", "key");
    expectError(await json({ op: "put", key: "k" }), "bad_request");
    expectError(await json({ op: "put", value: "v" }), "bad_request", "key");
    expectError(await json({ op: "cas", key: "k", value: "v" }), "bad_request", "version");
    expectError(await json({ op: "txn", success: [] }), "bad_request", "group");
    expectError(await json({ op: "scan" }), "bad_request", "group");
    expectError(await msgpack({ op: "delete" }), "bad_request", "key");
    expectError(await json({ op: "txn", group: "g", success: [{ key: "k", value: "v" }] }), "bad_request", "success[0].op");
    expectError(await json({ op: "txn", group: "g", success: [{ op: "put", key: "k" }] }), "bad_request");
    expectError(await json({ op: "txn", group: "g", compares: [{ key: "k" }] }), "bad_request", "compares[0]");
  });

  it("wrong types", async () => {
    expectError(await json({ op: "get", key: 5 }), "bad_request", "key");
    expectError(await json({ op: "get", key: "" }), "bad_request", "key");
    expectError(await json({ op: "get", key: "k", group: ["g"] }), "bad_request", "group");
    expectError(await json({ op: "get", key: "k", consistency: "eventual" }), "bad_request", "consistency");
    expectError(await json({ op: "put", key: "k", value: 5 }), "bad_request", "value");
    expectError(await json({ op: "put", key: "k", value: { a: 1 } }), "bad_request", "value");
    expectError(await json({ op: "put", key: "k", valueBase64: "not base64!!" }), "bad_request", "valueBase64");
    expectError(await json({ op: "put", key: "k", value: "v", valueBase64: "dg==" }), "bad_request");
    expectError(await json({ op: "cas", key: "k", version: -1, value: "v" }), "bad_request", "version");
    expectError(await json({ op: "cas", key: "k", version: 1.5, value: "v" }), "bad_request", "version");
    expectError(await json({ op: "cas", key: "k", version: "3", value: "v" }), "bad_request", "version");
    expectError(await json({ op: "cas", key: "k", version: 2 ** 60, value: "v" }), "bad_request", "version");
    expectError(await json({ op: "scan", group: "g", limit: 0 }), "bad_request", "limit");
    expectError(await json({ op: "scan", group: "g", limit: "10" }), "bad_request", "limit");
    expectError(await json({ op: "txn", group: "g", success: {} }), "bad_request", "success");
    expectError(await json({ op: "txn", group: "g", compares: [{ key: "k", version: 1, cmp: "~" }] }), "bad_request", "compares[0].cmp");
    expectError(await json({ op: "txn", group: "g", compares: [{ key: "k", exists: "yes" }] }), "bad_request", "compares[0].exists");
    expectError(await json({ op: "put", key: "k", value: "v", requestId: "" }), "bad_request", "requestId");
    expectError(await json({ op: "put", key: "k", value: "v", requestId: "a\nb" }), "bad_request", "requestId");
    // msgpack: a value of the wrong kind, an extension type, a 64-bit integer past 2^53.
    expectError(await msgpack({ op: "put", key: "k", value: 12 }), "bad_request", "value");
    expectError(await msgpack({ op: "put", key: "k", value: new Date(0) }), "bad_request", "value");
    expectError(await msgpack({ op: "cas", key: "k", version: 2n ** 60n, value: "v" }), "bad_request", "version");
    expectError(await msgpack({ op: "get", key: new Uint8Array([107]) }), "bad_request", "key");
    await nodeStillAnswers("types");
  });

  it("unknown fields are refused by name", async () => {
    expectError(await json({ op: "put", key: "k", vaule: "v" }), "bad_request", "vaule");
    expectError(await json({ op: "status", verbose: true }), "bad_request", "verbose");
    expectError(await msgpack({ op: "get", key: "k", extra: 1 }), "bad_request", "extra");
    expectError(await json({ op: "txn", group: "g", success: [{ op: "delete", key: "k", value: "v" }] }), "bad_request", "success[0].value");
  });
});

describe("sizes", () => {
  it("huge keys, groups, values, request ids, txns and frames get too_large naming the limit", async () => {
    const tooLarge = (a: Answer, limit: string): void => {
      expectError(a, "too_large");
      expect((a.body.error as { details: Record<string, unknown> }).details.limit).toBe(limit);
    };
    tooLarge(await json({ op: "get", key: "k".repeat(1025) }), "keyBytesMax");
    tooLarge(await json({ op: "get", key: "é".repeat(513) }), "keyBytesMax"); // 1026 UTF-8 bytes
    tooLarge(await json({ op: "get", group: "g".repeat(1025), key: "k" }), "groupBytesMax");
    tooLarge(await json({ op: "put", key: "k", value: "v".repeat(256 * 1024 + 1) }), "valueBytesMax");
    tooLarge(await msgpack({ op: "put", key: "k", value: new Uint8Array(256 * 1024 + 1) }), "valueBytesMax");
    tooLarge(await json({ op: "put", key: "k", value: "v", requestId: "r".repeat(129) }), "requestIdBytesMax");
    tooLarge(await json({ op: "scan", group: "g", limit: 1001 }), "scanLimitMax");
    const many = Array.from({ length: 129 }, (_, i) => ({ op: "delete", key: `k${i}` }));
    tooLarge(await json({ op: "txn", group: "g", success: many }), "txnWritesMax");
    const compares = Array.from({ length: 65 }, (_, i) => ({ key: `k${i}`, exists: true }));
    tooLarge(await json({ op: "txn", group: "g", compares }), "txnComparesMax");
    // Two values of 200 KiB and one of 100 KiB: each is fine, together over writeBytesMax.
    const v = new Uint8Array(200 * 1024);
    tooLarge(
      await msgpack({ op: "txn", group: "g", success: [{ op: "put", key: "a", value: v }, { op: "put", key: "b", value: v }, { op: "put", key: "c", value: new Uint8Array(100 * 1024) }] }),
      "writeBytesMax",
    );
    // A body over frameBytesMax (but under NATS' max_payload).
    tooLarge(await raw(enc.encode(JSON.stringify({ op: "put", key: "k", value: "x".repeat(1_000_000) })), "application/json"), "frameBytesMax");
    await nodeStillAnswers("sizes");
  });
});

describe("the node after all that", () => {
  it("requests without a reply subject are dropped quietly; every node still answers", async () => {
    c.nc.publish(`paxosstore.${c.cluster}.api.${NODE}`, enc.encode("garbage"));
    c.nc.publish(`paxosstore.${c.cluster}.api.${NODE}`, enc.encode(JSON.stringify({ op: "put", key: "noreply", value: "v" })));
    await c.nc.flush();
    for (const node of c.members) {
      const s = await raw(enc.encode('{"op":"status"}'), undefined, node);
      expect(s.body).toMatchObject({ ok: true, node });
    }
    await nodeStillAnswers("end");
    // The node processes are still the ones started at the beginning: nothing crashed.
    for (const node of c.nodes.values()) expect(node.child?.exitCode ?? null).toBeNull();
  });
});
