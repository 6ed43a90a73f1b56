// Reading history.jsonl: one HistoryOp per line, validated so that the checker can trust the
// shape and a broken recorder is named at the line that broke rather than as a wrong verdict.

import type { HistoryCall, HistoryCompare, HistoryOp, HistoryResult, HistoryTxnWrite } from "./history.js";

/** A line of the history that is not a valid HistoryOp (the CLI exits 2 on it). */
export class HistoryFormatError extends Error {
  readonly code = "bad_history";
  constructor(
    readonly line: number,
    readonly reason: string,
  ) {
    super(`history line ${line}: ${reason}`);
    this.name = "HistoryFormatError";
  }
}

/** Parses and validates history.jsonl (blank lines are skipped); throws HistoryFormatError. */
export function readHistory(jsonlText: string): HistoryOp[] {
  const ops: HistoryOp[] = [];
  const ids = new Set<number>();
  const lines = jsonlText.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i]!.trim();
    if (text === "") continue;
    const lineNo = i + 1;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      throw new HistoryFormatError(lineNo, `not JSON (${(e as Error).message})`);
    }
    const op = validateOp(parsed, (reason) => new HistoryFormatError(lineNo, reason));
    if (ids.has(op.id)) throw new HistoryFormatError(lineNo, `id ${op.id} appears twice`);
    ids.add(op.id);
    ops.push(op);
  }
  return ops;
}

type Fail = (reason: string) => Error;

/** Checks one parsed object against HistoryOp (history.ts), including its cross-field rules. */
export function validateOp(x: unknown, fail: Fail): HistoryOp {
  const o = object(x, "the line", fail);
  integer(o.id, "id", fail);
  string(o.process, "process", fail);
  string(o.via, "via", fail);
  string(o.group, "group", fail);
  if (o.requestId !== undefined) string(o.requestId, "requestId", fail);
  finite(o.invokedAt, "invokedAt", fail);
  if (o.completedAt !== null) {
    finite(o.completedAt, "completedAt", fail);
    if ((o.completedAt as number) < (o.invokedAt as number)) throw fail(`completedAt ${o.completedAt} is before invokedAt ${o.invokedAt}`);
  }
  if (o.outcome !== "ok" && o.outcome !== "fail" && o.outcome !== "unknown") throw fail(`outcome must be ok, fail or unknown; got ${JSON.stringify(o.outcome)}`);
  if (o.note !== undefined) string(o.note, "note", fail);
  const call = validateCall(o.call, fail);
  if (o.outcome === "ok") {
    if (o.completedAt === null) throw fail("an ok operation needs completedAt");
    if (o.result === undefined) throw fail("an ok operation needs a result");
    validateResult(o.result, call, fail);
  } else if (o.result !== undefined) {
    throw fail(`result is present only when outcome is ok (outcome ${o.outcome})`);
  }
  return x as HistoryOp;
}

function validateCall(x: unknown, fail: Fail): HistoryCall {
  const c = object(x, "call", fail);
  switch (c.f) {
    case "get":
      string(c.key, "call.key", fail);
      if (c.consistency !== "linearizable" && c.consistency !== "stale") throw fail(`call.consistency must be linearizable or stale; got ${JSON.stringify(c.consistency)}`);
      break;
    case "put":
      string(c.key, "call.key", fail);
      string(c.value, "call.value", fail);
      break;
    case "delete":
      string(c.key, "call.key", fail);
      break;
    case "cas":
      string(c.key, "call.key", fail);
      integer(c.version, "call.version", fail);
      string(c.value, "call.value", fail);
      break;
    case "txn":
      array(c.compares, "call.compares", fail).forEach((cmp, i) => validateCompare(cmp, `call.compares[${i}]`, fail));
      array(c.success, "call.success", fail).forEach((w, i) => validateTxnWrite(w, `call.success[${i}]`, fail));
      array(c.failure, "call.failure", fail).forEach((w, i) => validateTxnWrite(w, `call.failure[${i}]`, fail));
      break;
    default:
      throw fail(`call.f must be get, put, delete, cas or txn; got ${JSON.stringify(c.f)}`);
  }
  return x as HistoryCall;
}

function validateCompare(x: unknown, path: string, fail: Fail): HistoryCompare {
  const c = object(x, path, fail);
  string(c.key, `${path}.key`, fail);
  switch (c.target) {
    case "version":
      if (!["=", "!=", "<", ">"].includes(c.cmp as string)) throw fail(`${path}.cmp must be =, !=, < or >; got ${JSON.stringify(c.cmp)}`);
      integer(c.version, `${path}.version`, fail);
      break;
    case "value":
      if (c.cmp !== "=" && c.cmp !== "!=") throw fail(`${path}.cmp must be = or !=; got ${JSON.stringify(c.cmp)}`);
      string(c.value, `${path}.value`, fail);
      break;
    case "exists":
      if (typeof c.exists !== "boolean") throw fail(`${path}.exists must be a boolean`);
      break;
    default:
      throw fail(`${path}.target must be version, value or exists; got ${JSON.stringify(c.target)}`);
  }
  return x as HistoryCompare;
}

function validateTxnWrite(x: unknown, path: string, fail: Fail): HistoryTxnWrite {
  const w = object(x, path, fail);
  string(w.key, `${path}.key`, fail);
  if (w.op === "put") string(w.value, `${path}.value`, fail);
  else if (w.op !== "delete") throw fail(`${path}.op must be put or delete; got ${JSON.stringify(w.op)}`);
  return x as HistoryTxnWrite;
}

function validateResult(x: unknown, call: HistoryCall, fail: Fail): HistoryResult {
  const r = object(x, "result", fail);
  if (r.f !== call.f) throw fail(`result.f ${JSON.stringify(r.f)} does not match call.f ${JSON.stringify(call.f)}`);
  switch (r.f) {
    case "get":
      if (typeof r.found !== "boolean") throw fail("result.found must be a boolean");
      integer(r.index, "result.index", fail);
      if (r.found) {
        string(r.value, "result.value", fail);
        integer(r.version, "result.version", fail);
        if ((r.version as number) < 1) throw fail(`result.version of a found key must be >= 1; got ${r.version}`);
      } else if (r.value !== undefined || r.version !== undefined) {
        throw fail("result.value and result.version are present only when found");
      }
      break;
    case "put":
      integer(r.version, "result.version", fail);
      break;
    case "delete":
      integer(r.version, "result.version", fail);
      if (typeof r.existed !== "boolean") throw fail("result.existed must be a boolean");
      break;
    case "cas":
      if (r.ok === true) integer(r.version, "result.version", fail);
      else if (r.ok === false) integer(r.current, "result.current", fail);
      else throw fail("result.ok must be a boolean");
      break;
    case "txn": {
      if (typeof r.succeeded !== "boolean") throw fail("result.succeeded must be a boolean");
      integer(r.version, "result.version", fail);
      const current = array(r.currentVersions, "result.currentVersions", fail);
      current.forEach((v, i) => integer(v, `result.currentVersions[${i}]`, fail));
      const compares = (call as { compares: readonly unknown[] }).compares.length;
      if (current.length !== compares) throw fail(`result.currentVersions has ${current.length} entries for ${compares} compares`);
      break;
    }
  }
  return x as HistoryResult;
}

function object(x: unknown, path: string, fail: Fail): Record<string, unknown> {
  if (typeof x !== "object" || x === null || Array.isArray(x)) throw fail(`${path} must be an object`);
  return x as Record<string, unknown>;
}

function array(x: unknown, path: string, fail: Fail): unknown[] {
  if (!Array.isArray(x)) throw fail(`${path} must be an array`);
  return x;
}

function string(x: unknown, path: string, fail: Fail): void {
  if (typeof x !== "string") throw fail(`${path} must be a string; got ${JSON.stringify(x)}`);
}

function finite(x: unknown, path: string, fail: Fail): void {
  if (typeof x !== "number" || !Number.isFinite(x)) throw fail(`${path} must be a number; got ${JSON.stringify(x)}`);
}

function integer(x: unknown, path: string, fail: Fail): void {
  if (typeof x !== "number" || !Number.isSafeInteger(x) || x < 0) throw fail(`${path} must be a non-negative integer; got ${JSON.stringify(x)}`);
}
