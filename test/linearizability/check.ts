// The checker's command line: `npx tsx test/linearizability/check.ts path/to/history.jsonl`
// prints progress and a verdict. Exit 0: linearizable; 1: a violation (message and window);
// 2: bad input (unreadable file, an invalid line, values not unique) or a search that ran
// out of budget (no verdict). The only I/O of the checker lives here.

import { readFileSync } from "node:fs";
import { checkHistory, DuplicateValueError, HistoryFormatError, readHistory } from "./checker.js";
import { describeOp } from "./describe.js";

const exitLinearizable = 0;
const exitViolation = 1;
const exitBadInput = 2;

function main(argv: readonly string[]): number {
  const args = argv.filter((a) => !a.startsWith("--"));
  const budgetFlag = argv.find((a) => a.startsWith("--search-budget="));
  if (args.length !== 1) {
    console.error("usage: npx tsx test/linearizability/check.ts [--search-budget=N] path/to/history.jsonl");
    return exitBadInput;
  }
  const path = args[0]!;
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    console.error(`check: cannot read ${path}: ${(e as Error).message}`);
    return exitBadInput;
  }
  try {
    const ops = readHistory(text);
    const searchBudget = budgetFlag === undefined ? undefined : Number(budgetFlag.slice("--search-budget=".length));
    const started = performance.now();
    const result = checkHistory(ops, { onProgress: (line) => console.log(`check: ${line}`), ...(searchBudget === undefined ? {} : { searchBudget }) });
    const ms = (performance.now() - started).toFixed(0);
    if (result.ok === true) {
      console.log(`check: linearizable (${result.ops} ops, ${result.groups} groups, ${ms} ms)`);
      return exitLinearizable;
    }
    console.log(result.ok === false ? `check: NOT linearizable (${result.ops} ops, ${result.groups} groups, ${ms} ms)` : `check: undecided (${result.ops} ops, ${result.groups} groups, ${ms} ms)`);
    console.log(result.message);
    console.log(`window (${result.window.length} ops):`);
    for (const op of result.window) console.log(`  ${describeOp(op)}`);
    return result.ok === false ? exitViolation : exitBadInput;
  } catch (e) {
    if (e instanceof HistoryFormatError || e instanceof DuplicateValueError) {
      console.error(`check: bad input: ${e.message}`);
      return exitBadInput;
    }
    throw e;
  }
}

process.exitCode = main(process.argv.slice(2));
