// The report folder of a verify run and its picture: timeline.html, one self-contained page
// with an SVG of every operation over time (a row per client, a line from invocation to
// completion, coloured by outcome), the fault windows drawn across all rows and in a lane per
// node, and, on a violation, the failing window's operations in red with its time span shaded.

import { writeFileSync } from "node:fs";
import path from "node:path";
import type { HistoryOp } from "./history.js";
import type { FaultWindow } from "./nemesis.js";

export interface Verdict {
  readonly ok: boolean;
  /** The verdict line as printed. */
  readonly line: string;
  readonly group?: string;
  readonly message?: string;
  readonly window?: readonly HistoryOp[];
}

export interface ReportInput {
  readonly dir: string;
  readonly ops: readonly HistoryOp[];
  readonly faults: readonly FaultWindow[];
  readonly members: readonly string[];
  /** Which server each client is connected to (for row labels). */
  readonly clientServers: ReadonlyMap<string, string>;
  readonly verdict: Verdict;
  readonly summary: Record<string, unknown>;
}

export function writeHistory(dir: string, ops: readonly HistoryOp[]): string {
  const file = path.join(dir, "history.jsonl");
  writeFileSync(file, ops.map((op) => JSON.stringify(op)).join("\n") + (ops.length > 0 ? "\n" : ""));
  return file;
}

export function writeFaults(dir: string, faults: readonly FaultWindow[]): void {
  writeFileSync(path.join(dir, "faults.json"), JSON.stringify(faults, null, 2) + "\n");
}

/** Writes summary.json, violation.json (if any) and timeline.html; returns the picture's path. */
export function writeReport(r: ReportInput): string {
  writeFileSync(path.join(r.dir, "summary.json"), JSON.stringify({ ...r.summary, verdict: r.verdict.line }, null, 2) + "\n");
  if (!r.verdict.ok) writeFileSync(path.join(r.dir, "violation.json"), JSON.stringify({ group: r.verdict.group, message: r.verdict.message, window: r.verdict.window }, null, 2) + "\n");
  const file = path.join(r.dir, "timeline.html");
  writeFileSync(file, timelineHtml(r));
  return file;
}

const COLORS = {
  read: "#3b6fd4",
  write: "#2e9d4a",
  fail: "#9a9a9a",
  unknown: "#e08a1e",
  bad: "#d21f1f",
  kill: "#d21f1f",
  pause: "#8a5cd1",
  isolate: "#1f8fa8",
  partition: "#2aa198",
  "slow-disk": "#b58900",
  wipe: "#000000",
} as const;

function timelineHtml(r: ReportInput): string {
  // Loops, not Math.min(...xs): a long history has more operations than a call has arguments.
  let t0 = Infinity;
  let t1 = -Infinity;
  for (const o of r.ops) (t0 = Math.min(t0, o.invokedAt)), (t1 = Math.max(t1, o.completedAt ?? o.invokedAt));
  for (const f of r.faults) (t0 = Math.min(t0, f.startedAt)), (t1 = Math.max(t1, f.endedAt ?? f.startedAt));
  if (!Number.isFinite(t0)) (t0 = 0), (t1 = 1);
  t1 = Math.max(t1, t0 + 1);
  const head = r.verdict.ok ? r.verdict.line : r.verdict.line.split(": ")[0]!;
  const whole = timelineSvg(r, r.ops, t0, t1, t0, head);
  // A long run squeezes seconds into pixels: the failing window gets a picture of its own, its
  // group's operations only, from a second before it to a second after.
  let zoom = "";
  const w = r.verdict.window ?? [];
  if (!r.verdict.ok && w.length > 0) {
    let z0 = Infinity;
    let z1 = -Infinity;
    for (const o of w) (z0 = Math.min(z0, o.invokedAt)), (z1 = Math.max(z1, o.completedAt ?? o.invokedAt));
    z0 -= 1_000;
    z1 += 1_000;
    const near = r.ops.filter((o) => o.group === r.verdict.group && o.invokedAt < z1 && (o.completedAt ?? Infinity) > z0);
    zoom = `<h3>The failing window, closer: group ${esc(r.verdict.group ?? "")}, ${((z0 - t0) / 1000).toFixed(1)}-${((z1 - t0) / 1000).toFixed(1)} s</h3><div style="overflow-x:auto">${timelineSvg(r, near, z0, z1, t0, `group ${r.verdict.group ?? ""}: the failing window +- 1 s`)}</div>`;
  }
  return pageHtml(r, whole, zoom, t0);
}

/** The picture of `ops` between t0 and t1; axis labels count seconds from `origin`. */
function timelineSvg(r: ReportInput, ops: readonly HistoryOp[], t0: number, t1: number, origin: number, heading: string): string {
  const width = 1600;
  const left = 170;
  const plotW = width - left - 20;
  const x = (t: number): number => left + ((t - t0) / (t1 - t0)) * plotW;
  const bad = new Set((r.verdict.window ?? []).map((o) => o.id));
  const withTitles = ops.length <= 20_000;
  const clip01 = (t: number): number => Math.min(Math.max(t, t0), t1);

  const clientOf = (process: string): string => process.split(".")[0]!;
  const clients = [...new Set(ops.map((o) => clientOf(o.process)))].sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)));
  const viaOf = new Map<string, string>();
  for (const o of ops) viaOf.set(clientOf(o.process), o.via);

  const laneH = 16;
  const top = 60;
  const nodeLanesY = top;
  const rowsY = top + r.members.length * laneH + 20;
  const rowH = 12;
  const height = rowsY + clients.length * rowH + 40;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="monospace" font-size="11">`);
  out.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#fff"/>`);
  // The verdict line is long on a violation: its head here, the whole message below the picture.
  out.push(`<text x="10" y="20" font-size="14" fill="${r.verdict.ok ? COLORS.write : COLORS.bad}">${esc(heading)}</text>`);
  if (!r.verdict.ok) out.push(`<text x="10" y="38" fill="${COLORS.bad}">${esc(clip(r.verdict.message?.split("\n")[0] ?? "", 230))}</text>`);

  // Time axis: a tick every "nice" number of seconds.
  const spanS = (t1 - t0) / 1000;
  const step = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300].find((s) => spanS / s <= 20) ?? 600;
  for (let s = Math.ceil((t0 - origin) / 1000 / step) * step; s <= (t1 - origin) / 1000; s += step) {
    const tx = x(origin + s * 1000);
    out.push(`<line x1="${tx.toFixed(1)}" y1="${nodeLanesY - 6}" x2="${tx.toFixed(1)}" y2="${height - 30}" stroke="#eee"/>`);
    out.push(`<text x="${tx.toFixed(1)}" y="${height - 15}" text-anchor="middle" fill="#666">${Number(s.toFixed(1))}s</text>`);
  }

  // Fault windows: across every row, and in the lane of each node they touch.
  for (const f of r.faults) {
    if (f.startedAt > t1 || (f.endedAt ?? t1) < t0) continue;
    const fx = x(clip01(f.startedAt));
    const fw = Math.max(1, x(clip01(f.endedAt ?? t1)) - fx);
    const color = COLORS[f.kind];
    out.push(`<rect x="${fx.toFixed(1)}" y="${rowsY - 4}" width="${fw.toFixed(1)}" height="${clients.length * rowH + 8}" fill="${color}" fill-opacity="0.08"><title>${esc(`#${f.id} ${f.kind}: ${f.detail}`)}</title></rect>`);
    for (const node of f.nodes) {
      const i = r.members.indexOf(node);
      if (i < 0) continue;
      out.push(`<rect x="${fx.toFixed(1)}" y="${nodeLanesY + i * laneH}" width="${fw.toFixed(1)}" height="${laneH - 3}" fill="${color}" fill-opacity="0.7"><title>${esc(`#${f.id} ${f.kind}: ${f.detail}`)}</title></rect>`);
      if (fw > 40) out.push(`<text x="${(fx + 2).toFixed(1)}" y="${nodeLanesY + i * laneH + 10}" fill="#fff" font-size="9">${esc(f.kind)}</text>`);
    }
  }
  r.members.forEach((node, i) => out.push(`<text x="10" y="${nodeLanesY + i * laneH + 10}">node ${esc(node)}</text>`));

  // The failing window's time span.
  if (!r.verdict.ok && (r.verdict.window?.length ?? 0) > 0) {
    const w = r.verdict.window!;
    const wx = x(clip01(Math.min(...w.map((o) => o.invokedAt))));
    const wEnd = x(clip01(Math.max(...w.map((o) => o.completedAt ?? t1))));
    out.push(`<rect x="${wx.toFixed(1)}" y="${rowsY - 4}" width="${Math.max(2, wEnd - wx).toFixed(1)}" height="${clients.length * rowH + 8}" fill="${COLORS.bad}" fill-opacity="0.15" stroke="${COLORS.bad}"/>`);
  }

  clients.forEach((c, i) => out.push(`<text x="10" y="${rowsY + i * rowH + 9}">${esc(`${c} via ${viaOf.get(c) ?? "?"} @${r.clientServers.get(c) ?? "?"}`)}</text>`));
  const rowOf = new Map(clients.map((c, i) => [c, i]));
  for (const o of ops) {
    const y = rowsY + rowOf.get(clientOf(o.process))! * rowH + 6;
    const x1 = x(clip01(o.invokedAt));
    const x2 = Math.max(x1 + 1, x(clip01(o.completedAt ?? t1)));
    const isBad = bad.has(o.id);
    const color = isBad ? COLORS.bad : o.outcome === "ok" ? (o.call.f === "get" ? COLORS.read : COLORS.write) : COLORS[o.outcome];
    const title = withTitles || isBad ? `<title>${esc(describeOp(o))}</title>` : "";
    out.push(`<line x1="${x1.toFixed(1)}" y1="${y}" x2="${x2.toFixed(1)}" y2="${y}" stroke="${color}" stroke-width="${isBad ? 5 : 3}">${title}</line>`);
  }
  out.push(`</svg>`);
  return out.join("\n");
}

function pageHtml(r: ReportInput, whole: string, zoom: string, t0: number): string {
  const legend = [
    ["ok read", COLORS.read],
    ["ok write", COLORS.write],
    ["fail", COLORS.fail],
    ["unknown", COLORS.unknown],
    ["in the failing window", COLORS.bad],
  ]
    .map(([name, color]) => `<span style="border-left:14px solid ${color};padding-left:4px;margin-right:14px">${name}</span>`)
    .join("");
  const faultRows = r.faults
    .map((f) => `<tr><td>${f.id}</td><td>${esc(f.kind)}</td><td>${((f.startedAt - t0) / 1000).toFixed(1)}s</td><td>${f.endedAt === null ? "-" : ((f.endedAt - t0) / 1000).toFixed(1) + "s"}</td><td>${esc(f.detail)}</td></tr>`)
    .join("\n");
  const windowRows = (r.verdict.window ?? []).map((o) => `<tr><td>${esc(describeOp(o))}</td></tr>`).join("\n");
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>verify: ${esc(r.verdict.line)}</title>
<style>body{font-family:sans-serif;margin:16px} table{border-collapse:collapse;font-size:12px} td{border:1px solid #ddd;padding:2px 6px;font-family:monospace}</style></head>
<body>
<h2>${esc(r.verdict.ok ? r.verdict.line : r.verdict.line.split(": ")[0]!)}</h2>
<p>${legend}</p>
<p>Times are seconds since the first operation. Each row is one client (its processes after an unknown outcome share the row); hover a line for the operation. Shaded columns are fault windows; the lanes at the top show which nodes each fault touched.</p>
<div style="overflow-x:auto">${whole}</div>
${zoom}
${windowRows ? `<h3>Failing window (group ${esc(r.verdict.group ?? "")})</h3><pre style="white-space:pre-wrap">${esc(r.verdict.message ?? "")}</pre><table>${windowRows}</table>` : ""}
<h3>Faults</h3>
<table><tr><td>#</td><td>kind</td><td>start</td><td>healed</td><td>what</td></tr>
${faultRows}
</table>
</body></html>
`;
}

function describeOp(o: HistoryOp): string {
  const dur = o.completedAt === null ? "never answered" : `${(o.completedAt - o.invokedAt).toFixed(1)} ms`;
  return `#${o.id} ${o.process} via ${o.via} [${o.group}] ${JSON.stringify(o.call)} -> ${o.outcome}${o.result ? " " + JSON.stringify(o.result) : ""}${o.note ? ` (${o.note})` : ""}, ${dur}`;
}

function clip(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

function esc(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);
}
