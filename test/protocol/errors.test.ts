import { describe, expect, it } from "vitest";

import {
  BadRequestError,
  ConflictError,
  ERROR_CODES,
  InternalError,
  NotReplicaError,
  PaxosStoreError,
  TimeoutError,
  TooLargeError,
  UnauthorizedError,
  UnavailableError,
  errorFromWire,
  toWireError,
} from "../../src/protocol/errors.js";
import { DEFAULT_WIRE_LIMITS, NATS_MAX_PAYLOAD_BYTES, resolveWireLimits } from "../../src/protocol/limits.js";

const EXAMPLES: PaxosStoreError[] = [
  new BadRequestError("key", "must not be empty"),
  new TooLargeError("value", "valueBytesMax", 262144, 300000),
  new ConflictError("k", 3, 5),
  new UnavailableError(undefined, { group: "g" }),
  new TimeoutError(undefined, { requestId: "r-1" }),
  new NotReplicaError("g", ["n1", "n2", "n3"]),
  new InternalError("boom"),
  new UnauthorizedError("unauthorized: Authorization Violation"),
];

describe("errors", () => {
  it("has one class per stable code", () => {
    expect(EXAMPLES.map((e) => e.code)).toEqual([...ERROR_CODES]);
    for (const e of EXAMPLES) {
      expect(e).toBeInstanceOf(PaxosStoreError);
      expect(e).toBeInstanceOf(Error);
    }
  });

  it("round-trips through the wire as the same class, code, message and details", () => {
    for (const e of EXAMPLES) {
      const back = errorFromWire(JSON.parse(JSON.stringify(toWireError(e))));
      expect(back.constructor).toBe(e.constructor);
      expect(back.code).toBe(e.code);
      expect(back.message).toBe(e.message);
      expect(back.details ?? {}).toEqual(e.details ?? {});
    }
  });

  it("says what each failure means for the write", () => {
    expect(new TimeoutError().message).toMatch(/outcome is unknown/);
    expect(new TimeoutError().message).toMatch(/same requestId/);
    expect(new UnavailableError().message).toMatch(/not applied/);
    expect(new ConflictError("k", 1, 2).message).toMatch(/nothing was written/);
  });

  it("turns anything else into internal", () => {
    expect(toWireError(new Error("oops"))).toEqual({ code: "internal", message: "internal error: oops" });
    expect(toWireError("str")).toMatchObject({ code: "internal" });
    expect(errorFromWire(null)).toBeInstanceOf(InternalError);
    expect(errorFromWire({ code: "new_code", message: "m" })).toMatchObject({ code: "internal", message: "m", details: { wireCode: "new_code" } });
    expect(errorFromWire({ code: "conflict" })).toBeInstanceOf(ConflictError);
  });
});

describe("limits", () => {
  it("defaults are coherent and below NATS max_payload", () => {
    expect(resolveWireLimits()).toEqual(DEFAULT_WIRE_LIMITS);
    expect(DEFAULT_WIRE_LIMITS.frameBytesMax).toBeLessThan(NATS_MAX_PAYLOAD_BYTES);
  });

  it("refuses incoherent overrides", () => {
    expect(() => resolveWireLimits({ frameBytesMax: NATS_MAX_PAYLOAD_BYTES })).toThrow(/max_payload/);
    expect(() => resolveWireLimits({ groupBytesMax: 10 })).toThrow(/groupBytesMax/);
    expect(() => resolveWireLimits({ scanLimitDefault: 5000 })).toThrow(/scanLimitDefault/);
    expect(() => resolveWireLimits({ valueBytesMax: 0 })).toThrow(/positive integer/);
    expect(() => resolveWireLimits({ valueBytesMax: 600 * 1024 })).toThrow(/writeBytesMax/);
  });
});
