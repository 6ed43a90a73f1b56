// One-line renderings of history operations for the checker's messages, so that a violation
// reads as the ops a person would look at: id, process, call, outcome and time span.

import type { HistoryCall, HistoryCompare, HistoryOp, HistoryResult, HistoryTxnWrite } from "./history.js";

export function describeOp(op: HistoryOp): string {
  const span = `t=${op.invokedAt}..${op.completedAt ?? "never"}`;
  const outcome = op.outcome === "ok" ? `ok ${describeResult(op.result!)}` : op.outcome + (op.note === undefined ? "" : ` (${op.note})`);
  return `#${op.id} ${op.process} ${describeCall(op.call)} -> ${outcome} [${span}]`;
}

export function describeCall(call: HistoryCall): string {
  switch (call.f) {
    case "get":
      return `get ${q(call.key)}${call.consistency === "stale" ? " (stale)" : ""}`;
    case "put":
      return `put ${q(call.key)}=${q(call.value)}`;
    case "delete":
      return `delete ${q(call.key)}`;
    case "cas":
      return `cas ${q(call.key)} if version ${call.version} =${q(call.value)}`;
    case "txn":
      return `txn if [${call.compares.map(describeCompare).join(", ")}] then [${call.success.map(describeTxnWrite).join(", ")}] else [${call.failure.map(describeTxnWrite).join(", ")}]`;
  }
}

export function describeResult(result: HistoryResult): string {
  switch (result.f) {
    case "get":
      return result.found ? `${q(result.value!)}@${result.version} index ${result.index}` : `absent index ${result.index}`;
    case "put":
      return `version ${result.version}`;
    case "delete":
      return `version ${result.version} existed=${result.existed}`;
    case "cas":
      return result.ok ? `version ${result.version}` : `conflict, current ${result.current}`;
    case "txn":
      return `${result.succeeded ? "succeeded" : "failed"} version ${result.version} currentVersions [${result.currentVersions.join(",")}]`;
  }
}

function describeCompare(c: HistoryCompare): string {
  switch (c.target) {
    case "version":
      return `${q(c.key)}.version ${c.cmp} ${c.version}`;
    case "value":
      return `${q(c.key)} ${c.cmp} ${q(c.value)}`;
    case "exists":
      return `${q(c.key)} ${c.exists ? "exists" : "absent"}`;
  }
}

function describeTxnWrite(w: HistoryTxnWrite): string {
  return w.op === "put" ? `put ${q(w.key)}=${q(w.value)}` : `delete ${q(w.key)}`;
}

function q(s: string): string {
  return JSON.stringify(s);
}

/** Every key an operation reads or writes (a txn's compares and both branches). */
export function keysOf(call: HistoryCall): string[] {
  if (call.f !== "txn") return [call.key];
  const keys = new Set<string>();
  for (const c of call.compares) keys.add(c.key);
  for (const w of call.success) keys.add(w.key);
  for (const w of call.failure) keys.add(w.key);
  return [...keys];
}
