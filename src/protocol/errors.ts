// The errors of PaxosStore, as a typed hierarchy with stable wire codes (after nats.js'
// core/src/errors.ts and abstract-level's LEVEL_* codes): callers branch on the class or on
// `code`, never on the message. The codes are API: never rename one; add new ones instead.
//
// On the wire an error is `{ code, message, details? }` (see api.ts). `toWireError` and
// `errorFromWire` convert both ways; a code this version does not know becomes an
// InternalError that keeps the original code in its details, so an old client still works
// against a newer server.

import type { NodeId } from "./ballot.js";
import type { LimitName } from "./limits.js";

export const ERROR_CODES = [
  "bad_request",
  "too_large",
  "conflict",
  "unavailable",
  "timeout",
  "not_replica",
  "internal",
  "unauthorized",
] as const;

export type WireErrorCode = (typeof ERROR_CODES)[number];

/** An error as it travels in an answer: `{ ok: false, error: WireError }`. */
export interface WireError {
  readonly code: WireErrorCode;
  readonly message: string;
  readonly details?: Readonly<Record<string, unknown>>;
}

export type BadRequestDetails = {
  /** Where in the request, as a path: `key`, `success[2].value`, `Content-Type`, `(body)`. */
  readonly field: string;
  /** What is wrong with it, for a person. */
  readonly reason: string;
};

export type TooLargeDetails = {
  readonly field: string;
  /** The name of the limit in WireLimits (`valueBytesMax`, ...). */
  readonly limit: LimitName;
  readonly max: number;
  readonly size: number;
};

export type ConflictDetails = {
  readonly key: string;
  /** The version the request expected (a cas' `version`; 0: must not exist). */
  readonly expected: number;
  /** The key's version when the cas was applied (0: absent). Nothing was written. */
  readonly current: number;
};

export type UnavailableDetails = {
  readonly group?: string;
  readonly requestId?: string;
};

export type TimeoutDetails = {
  readonly group?: string;
  /** Retry with this id: a write already applied answers its first result, never twice. */
  readonly requestId?: string;
};

export type NotReplicaDetails = {
  readonly group: string;
  /** The replicas of the group, preferred first: send it there. */
  readonly replicas: readonly NodeId[];
};

export type DetailsOf<C extends WireErrorCode> = C extends "bad_request"
  ? BadRequestDetails
  : C extends "too_large"
    ? TooLargeDetails
    : C extends "conflict"
      ? ConflictDetails
      : C extends "unavailable"
        ? UnavailableDetails
        : C extends "timeout"
          ? TimeoutDetails
          : C extends "not_replica"
            ? NotReplicaDetails
            : Readonly<Record<string, unknown>>;

export class PaxosStoreError extends Error {
  readonly code: WireErrorCode;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: WireErrorCode, message: string, details?: Readonly<Record<string, unknown>>, options?: ErrorOptions) {
    super(message, options);
    this.name = "PaxosStoreError";
    this.code = code;
    this.details = details;
  }
}

/** The request is malformed: `details.field` says where and `details.reason` why. Do not retry. */
export class BadRequestError extends PaxosStoreError {
  declare readonly code: "bad_request";
  declare readonly details: BadRequestDetails;
  constructor(field: string, reason: string, options?: ErrorOptions) {
    super("bad_request", `bad request: ${field}: ${reason}`, { field, reason }, options);
    this.name = "BadRequestError";
  }
}

/** Something is bigger than a limit (limits.ts). Do not retry as is. */
export class TooLargeError extends PaxosStoreError {
  declare readonly code: "too_large";
  declare readonly details: TooLargeDetails;
  constructor(field: string, limit: LimitName, max: number, size: number, options?: ErrorOptions) {
    const unit = limit.endsWith("BytesMax") ? " bytes" : "";
    super("too_large", `too large: ${field} is ${size}${unit}, over ${limit} (${max}${unit})`, { field, limit, max, size }, options);
    this.name = "TooLargeError";
  }
}

/** A cas found another version than it expected; nothing was written. Re-read and retry. */
export class ConflictError extends PaxosStoreError {
  declare readonly code: "conflict";
  declare readonly details: ConflictDetails;
  constructor(key: string, expected: number, current: number, options?: ErrorOptions) {
    super(
      "conflict",
      `conflict: cas on ${JSON.stringify(key)} expected version ${expected}, the key is at version ${current}; nothing was written`,
      { key, expected, current },
      options,
    );
    this.name = "ConflictError";
  }
}

/**
 * No majority of the group's replicas could be reached. A write answered with this was NOT
 * applied and never will be: it is safe to retry, with any request id.
 */
export class UnavailableError extends PaxosStoreError {
  declare readonly code: "unavailable";
  declare readonly details: UnavailableDetails;
  constructor(message = "unavailable: no majority of the group's replicas is reachable; the write was not applied", details: UnavailableDetails = {}, options?: ErrorOptions) {
    super("unavailable", message, details, options);
    this.name = "UnavailableError";
  }
}

/**
 * The deadline passed with the outcome unknown: a write may or may not have been applied.
 * Retry with the same request id to learn which (it is applied at most once).
 */
export class TimeoutError extends PaxosStoreError {
  declare readonly code: "timeout";
  declare readonly details: TimeoutDetails;
  constructor(message = "timeout: the outcome is unknown, the write may or may not have been applied; retry with the same requestId to find out", details: TimeoutDetails = {}, options?: ErrorOptions) {
    super("timeout", message, details, options);
    this.name = "TimeoutError";
  }
}

/** The node that answered does not hold a replica of the group; `details.replicas` do. */
export class NotReplicaError extends PaxosStoreError {
  declare readonly code: "not_replica";
  declare readonly details: NotReplicaDetails;
  constructor(group: string, replicas: readonly NodeId[], options?: ErrorOptions) {
    super(
      "not_replica",
      `not a replica: this node does not hold group ${JSON.stringify(group)}; its replicas are ${replicas.join(", ")}`,
      { group, replicas: [...replicas] },
      options,
    );
    this.name = "NotReplicaError";
  }
}

/** A bug or an unexpected failure on the server. */
export class InternalError extends PaxosStoreError {
  declare readonly code: "internal";
  constructor(message = "internal error", details?: Readonly<Record<string, unknown>>, options?: ErrorOptions) {
    super("internal", message, details, options);
    this.name = "InternalError";
  }
}

/**
 * NATS refused the credentials, or this user may not publish or subscribe where the call
 * needs to (see the server's permissions). Retrying will not help: fix the configuration.
 * Only the client raises it (a node never answers with it).
 */
export class UnauthorizedError extends PaxosStoreError {
  declare readonly code: "unauthorized";
  constructor(message = "unauthorized: NATS refused the credentials or the permissions", details?: Readonly<Record<string, unknown>>, options?: ErrorOptions) {
    super("unauthorized", message, details, options);
    this.name = "UnauthorizedError";
  }
}

export function isWireErrorCode(code: unknown): code is WireErrorCode {
  return typeof code === "string" && (ERROR_CODES as readonly string[]).includes(code);
}

/** Any thrown thing as a wire error; a non-PaxosStoreError becomes `internal`. */
export function toWireError(err: unknown): WireError {
  if (err instanceof PaxosStoreError) {
    return err.details === undefined
      ? { code: err.code, message: err.message }
      : { code: err.code, message: err.message, details: err.details };
  }
  const what = err instanceof Error ? err.message : String(err);
  return { code: "internal", message: `internal error: ${what}` };
}

/**
 * A wire error (as decoded, so `unknown`) as the matching typed error. Never throws: a
 * malformed error object becomes an InternalError saying so.
 */
export function errorFromWire(obj: unknown): PaxosStoreError {
  if (typeof obj !== "object" || obj === null || Array.isArray(obj)) {
    return new InternalError("malformed error from server", { received: describe(obj) });
  }
  const rec = obj as Record<string, unknown>;
  const code = Object.hasOwn(rec, "code") ? rec["code"] : undefined;
  const message = Object.hasOwn(rec, "message") && typeof rec["message"] === "string" ? rec["message"] : undefined;
  const rawDetails = Object.hasOwn(rec, "details") ? rec["details"] : undefined;
  const details: Record<string, unknown> =
    typeof rawDetails === "object" && rawDetails !== null && !Array.isArray(rawDetails)
      ? { ...(rawDetails as Record<string, unknown>) }
      : {};
  const str = (k: string): string | undefined => (typeof details[k] === "string" ? (details[k] as string) : undefined);
  const num = (k: string): number => (typeof details[k] === "number" ? (details[k] as number) : 0);

  let err: PaxosStoreError;
  switch (code) {
    case "bad_request":
      err = new BadRequestError(str("field") ?? "(unknown)", str("reason") ?? message ?? "");
      break;
    case "too_large": {
      const limit = str("limit") ?? "frameBytesMax";
      err = new TooLargeError(str("field") ?? "(unknown)", limit as LimitName, num("max"), num("size"));
      break;
    }
    case "conflict":
      err = new ConflictError(str("key") ?? "", num("expected"), num("current"));
      break;
    case "unavailable":
      err = new UnavailableError(message, details as UnavailableDetails);
      break;
    case "timeout":
      err = new TimeoutError(message, details as TimeoutDetails);
      break;
    case "not_replica": {
      const replicas = Array.isArray(details["replicas"])
        ? (details["replicas"] as unknown[]).filter((r): r is string => typeof r === "string")
        : [];
      err = new NotReplicaError(str("group") ?? "", replicas);
      break;
    }
    case "internal":
      return new InternalError(message, rawDetails === undefined ? undefined : details);
    case "unauthorized":
      return new UnauthorizedError(message, rawDetails === undefined ? undefined : details);
    default:
      return new InternalError(message ?? "unknown error from server", { ...details, wireCode: describe(code) });
  }
  // The server's message wins: it may say more than the one we would compose.
  if (message !== undefined) err.message = message;
  return err;
}

function describe(x: unknown): string {
  try {
    const s = typeof x === "string" ? x : JSON.stringify(x);
    return (s ?? String(x)).slice(0, 200);
  } catch {
    return Object.prototype.toString.call(x);
  }
}
