// Per-message warnings (a bad peer frame, a request with a forbidden reply subject) are
// rate-limited: a flood of bad messages must not become a flood of log lines (disk, CPU, the
// operator's attention). Each kind of event may log `burst` lines per `intervalMs`; the rest
// are counted, and the next line that passes says how many were left out (`suppressed`).
// Counting is the caller's job too (stats): the log is for people, the counters for graphs.

import type { Logger } from "pino";

export interface RateLimitOptions {
  /** Lines per kind per interval. Default 20. */
  readonly burst?: number;
  /** Default 10 s. */
  readonly intervalMs?: number;
  /** Clock in ms (tests). Default Date.now. */
  readonly now?: () => number;
}

interface Window {
  startedAt: number;
  logged: number;
  suppressed: number;
}

export class RateLimitedLog {
  private readonly windows = new Map<string, Window>();
  private readonly burst: number;
  private readonly intervalMs: number;
  private readonly now: () => number;

  constructor(
    private readonly log: Pick<Logger, "warn">,
    options: RateLimitOptions = {},
  ) {
    this.burst = options.burst ?? 20;
    this.intervalMs = options.intervalMs ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  /** Logs `message` at warn with `fields`, unless this kind already logged `burst` lines in this interval. Returns whether it logged. */
  warn(kind: string, fields: Record<string, unknown>, message: string): boolean {
    const now = this.now();
    let w = this.windows.get(kind);
    if (w === undefined || now - w.startedAt >= this.intervalMs) {
      const suppressed = w?.suppressed ?? 0;
      w = { startedAt: now, logged: 0, suppressed: 0 };
      this.windows.set(kind, w);
      w.logged++;
      this.log.warn(suppressed > 0 ? { ...fields, event: kind, suppressed } : { ...fields, event: kind }, message);
      return true;
    }
    if (w.logged >= this.burst) {
      w.suppressed++;
      return false;
    }
    w.logged++;
    this.log.warn({ ...fields, event: kind }, message);
    return true;
  }
}
