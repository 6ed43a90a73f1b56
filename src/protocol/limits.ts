// The limits of the wire: every request, answer and peer frame stays inside them, and a request
// that does not is refused with a `too_large` error naming the limit (see errors.ts).
//
// Why they exist: a NATS message cannot exceed the server's max_payload (1 MiB by default), and
// a Paxos value that carries a write must itself fit in one peer frame, so every size below is
// chosen so that the largest legal write, once encoded (JSON with base64 inflates by 4/3), still
// fits in one frame with room to spare. Sizes are in bytes of UTF-8 unless the name says otherwise.
//
// These are the WIRE limits. The core's own knobs (commands per batch, catch-up chunk size,
// request-id memory) are `Limits` in config.ts; the two are unrelated.

/** NATS' default max_payload. A frame must stay below it. */
export const NATS_MAX_PAYLOAD_BYTES = 1024 * 1024;

export interface WireLimits {
  /** A key, in UTF-8 bytes. Keys are non-empty. */
  readonly keyBytesMax: number;
  /** A value, in bytes (after base64 decoding, when it travels as base64). */
  readonly valueBytesMax: number;
  /** A group name, in UTF-8 bytes. At least keyBytesMax: a key with no group is its own group. */
  readonly groupBytesMax: number;
  /** A client request id, in UTF-8 bytes. */
  readonly requestIdBytesMax: number;
  /** Writes in one branch (`success` or `failure`) of a txn. */
  readonly txnWritesMax: number;
  /** Compares in one txn. */
  readonly txnComparesMax: number;
  /**
   * Keys and values of one write op together (a txn's compares and both branches count). An
   * Accept carries its value AND the previous chosen value (`prev`), so two writes of this
   * size, plus framing, must fit in one frame; the core must also cap a batch at it.
   */
  readonly writeBytesMax: number;
  /** The largest `limit` a scan may ask for. */
  readonly scanLimitMax: number;
  /** The page size of a scan that gives no `limit`. */
  readonly scanLimitDefault: number;
  /**
   * The estimated encoded size of one scan page: a page stops early (with a `next` cursor) once
   * its items would pass it, so an answer always fits in a frame. See `scanItemBytesEstimate`.
   */
  readonly scanPageBytesMax: number;
  /** One encoded NATS message: a request, an answer or a peer frame. Below NATS_MAX_PAYLOAD_BYTES. */
  readonly frameBytesMax: number;
}

/** The `too_large` error names a limit by its field name here. */
export type LimitName = keyof WireLimits;

export const DEFAULT_WIRE_LIMITS: WireLimits = Object.freeze({
  keyBytesMax: 1024,
  valueBytesMax: 256 * 1024,
  groupBytesMax: 1024,
  requestIdBytesMax: 128,
  txnWritesMax: 128,
  txnComparesMax: 64,
  writeBytesMax: 448 * 1024,
  scanLimitMax: 1000,
  scanLimitDefault: 100,
  scanPageBytesMax: 512 * 1024,
  // 64 KiB of headroom under max_payload for NATS headers, the subject and frame overhead.
  frameBytesMax: NATS_MAX_PAYLOAD_BYTES - 64 * 1024,
});

/** The brief's name for the same type. Prefer `WireLimits`: config.ts has its own `Limits`. */
export type Limits = WireLimits;

/**
 * Merges overrides into the defaults and checks that the result is coherent; throws a plain
 * Error naming the offending limit (this runs at configuration time, not on a request path).
 */
export function resolveWireLimits(overrides: Partial<WireLimits> = {}): WireLimits {
  const limits: WireLimits = { ...DEFAULT_WIRE_LIMITS, ...overrides };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new Error(`wire limit ${name} must be a positive integer, got ${String(value)}`);
    }
  }
  const must = (ok: boolean, why: string): void => {
    if (!ok) throw new Error(`wire limits are incoherent: ${why}`);
  };
  must(limits.groupBytesMax >= limits.keyBytesMax, "groupBytesMax < keyBytesMax (a key may be its own group)");
  must(limits.scanLimitDefault <= limits.scanLimitMax, "scanLimitDefault > scanLimitMax");
  must(limits.frameBytesMax < NATS_MAX_PAYLOAD_BYTES, "frameBytesMax must be below NATS max_payload (1 MiB)");
  must(limits.valueBytesMax + limits.keyBytesMax <= limits.writeBytesMax, "one put must fit in writeBytesMax");
  must(
    2 * limits.writeBytesMax + 64 * 1024 <= limits.frameBytesMax,
    "an Accept (its value and the previous chosen value, each up to writeBytesMax) must fit in frameBytesMax",
  );
  // base64 inflates by 4/3; a JSON string escapes at most 2x for the values we send as text.
  must(
    Math.ceil((limits.writeBytesMax * 4) / 3) < limits.frameBytesMax,
    "writeBytesMax, base64-encoded, must fit in frameBytesMax",
  );
  // A page stops before passing scanPageBytesMax but always holds one item (see answerRead);
  // 8 KiB covers the rest of the answer (ok, index, the next cursor).
  must(
    Math.max(limits.scanPageBytesMax, scanItemBytesEstimate(limits.keyBytesMax, limits.valueBytesMax)) + 8 * 1024 <
      limits.frameBytesMax,
    "a scan page (or one largest item) must fit in frameBytesMax",
  );
  return Object.freeze(limits);
}

/**
 * A safe upper bound of the encoded size of one scan item in either encoding: JSON escapes a key
 * at most 6x (\u00XX), a text value at most 2x (only \t \n \r " \\ are escaped in text we send
 * as `value`, see codec.ts), and base64 is 4/3x; plus field names and punctuation.
 */
export function scanItemBytesEstimate(keyBytes: number, valueBytes: number): number {
  return 6 * keyBytes + 2 * valueBytes + 64;
}
