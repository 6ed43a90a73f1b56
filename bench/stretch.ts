// The measure of bench/failover.ts and bench/failoverEtcd.ts: per fault, the longest stretch
// within WINDOW_MS after it in which no client got a decided answer; and the bench process's
// own event-loop stalls, which delay every client at once and are not the store's.

import { createServer } from "node:net";

export const WINDOW_MS = 3_000;

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
    s.on("error", rej);
  });
}

/**
 * The longest gap in [from, from + WINDOW_MS] between `from`, the decided answers, and the
 * window's end; and where it began, in ms after `from` (to tell the fault from the restart).
 */
export function longestStretch(sorted: readonly number[], from: number, windowMs = WINDOW_MS): { ms: number; atMs: number } {
  const to = from + windowMs;
  let prev = from;
  let longest = { ms: 0, atMs: 0 };
  const see = (t: number): void => {
    if (t - prev > longest.ms) longest = { ms: t - prev, atMs: prev - from };
    prev = t;
  };
  for (const t of sorted) {
    if (t <= from) continue;
    if (t > to) break;
    see(t);
  }
  see(to);
  return longest;
}

/**
 * The bench's own event-loop stalls (GC, a starved CPU): a stall here delays every client's
 * answers at once and shows as a stretch that is not the cluster's. Reported beside them.
 */
const stalls: { at: number; ms: number }[] = [];
{
  let last = performance.now();
  setInterval(() => {
    const now = performance.now();
    if (now - last > 30) stalls.push({ at: last, ms: now - last - 10 });
    last = now;
  }, 10).unref();
}

export function worstStall(from: number, windowMs = WINDOW_MS): number {
  let worst = 0;
  for (const s of stalls) if (s.at >= from && s.at <= from + windowMs) worst = Math.max(worst, s.ms);
  return Math.round(worst);
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

