// Small, stable renderings of protocol values for checker messages and digests.

import type { Ballot } from "../../../src/protocol/ballot.js";
import type { Entry } from "../../../src/protocol/ops.js";

export function bytesText(bytes: Uint8Array): string {
  // Workload values are short ASCII; anything else is shown escaped so digests stay exact.
  let out = "";
  for (const b of bytes) out += b >= 0x20 && b < 0x7f && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, "0")}`;
  return out;
}

export function entryText(entry: Entry | null | undefined): string {
  return entry == null ? "absent" : `${JSON.stringify(bytesText(entry.value))}@${entry.version}`;
}

export function ballotText(b: Ballot | null): string {
  return b === null ? "none" : `${b.round}.${b.node}`;
}

/** JSON with Uint8Array shown as text, for messages that show results. */
export function show(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (v instanceof Uint8Array ? `bytes:${bytesText(v)}` : v));
}

/** Structural equality for results and entries: plain objects, arrays, Uint8Array, primitives. */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    if (!(a instanceof Uint8Array) || !(b instanceof Uint8Array) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  // An absent optional field and `undefined` are the same answer.
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    if (!deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
}
