// The linearizability checker of `npm run verify`: black-box histories (history.ts) of a real
// cluster, checked per key-group with Wing & Gong / Lowe's search and memoisation.

import type { HistoryOp } from "./history.js";

export { readHistory, HistoryFormatError } from "./readHistory.js";

export interface CheckOptions {
  /** progress lines, e.g. every few thousand ops */
  onProgress?: (line: string) => void;
  /**
   * The most search states (memoised linearization points) explored for one group before the
   * group's verdict is "unknown" instead of hanging. Default 1,000,000.
   */
  searchBudget?: number;
}

/**
 * ok: true       every group is linearizable;
 * ok: false      a violation in `group`, with the smallest failing window found;
 * ok: "unknown"  no violation found, but the search in `group` exceeded its budget before it
 *                could decide (window: the ops it was placing); other groups were checked.
 */
export type CheckResult =
  | { ok: true; ops: number; groups: number }
  | {
      ok: false;
      ops: number;
      groups: number;
      group: string;
      message: string;
      /** the smallest failing window found: the ops a reader needs to see the violation, in invocation order */
      window: HistoryOp[];
    }
  | { ok: "unknown"; ops: number; groups: number; group: string; message: string; window: HistoryOp[] };

export function checkHistory(ops: readonly HistoryOp[], options?: CheckOptions): CheckResult {
  void options;
  throw new Error(`checkHistory: not implemented yet (${ops.length} ops)`);
}
