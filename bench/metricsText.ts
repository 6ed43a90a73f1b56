// Reads the nodes' Prometheus text (/metrics) and turns two scrapes into the few numbers
// `npm run bench` prints beside its table: why a phase ran at the rate it did.

/** Sum over every node and label set, by `name{label="value",...}` without the node label. */
export type MetricSamples = Map<string, number>;

export function parseMetrics(texts: string[]): MetricSamples {
  const out: MetricSamples = new Map();
  for (const text of texts) {
    for (const line of text.split("\n")) {
      if (line === "" || line.startsWith("#")) continue;
      const sp = line.lastIndexOf(" ");
      const value = Number(line.slice(sp + 1));
      if (!Number.isFinite(value)) continue;
      const series = line
        .slice(0, sp)
        .replace(/(node|cluster)="[^"]*",?/g, "")
        .replace(/,}/, "}")
        .replace(/\{\}/, "");
      out.set(series, (out.get(series) ?? 0) + value);
    }
  }
  return out;
}

function delta(a: MetricSamples, b: MetricSamples, series: string): number {
  return (b.get(series) ?? 0) - (a.get(series) ?? 0);
}

/** Histogram quantile (linear inside the bucket) of the samples between two scrapes. */
function quantile(a: MetricSamples, b: MetricSamples, name: string, q: number): number | null {
  const buckets: [number, number][] = [];
  for (const series of b.keys()) {
    const m = series.match(new RegExp(`^${name}_bucket\\{le="([^"]+)"\\}$`));
    if (m === null) continue;
    buckets.push([m[1] === "+Inf" ? Infinity : Number(m[1]), delta(a, b, series)]);
  }
  buckets.sort((x, y) => x[0] - y[0]);
  const total = buckets.at(-1)?.[1] ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of buckets) {
    if (count >= rank) {
      if (le === Infinity) return prevLe;
      return prevLe + ((le - prevLe) * (rank - prevCount)) / Math.max(1, count - prevCount);
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}

/** The numbers worth showing per phase, as display strings. */
export function interestingMetrics(a: MetricSamples, b: MetricSamples): Record<string, string> {
  const d = (s: string): number => delta(a, b, s);
  const fast = d('paxosstore_proposals_total{round="fast"}');
  const prepare = d('paxosstore_proposals_total{round="prepare"}');
  const batches = d("paxosstore_storage_batch_records_count");
  const records = d("paxosstore_storage_batch_records_sum");
  const frames = d("paxosstore_peer_frames_sent_total");
  const msgs = d("paxosstore_peer_messages_sent_total");
  const fsyncP50 = quantile(a, b, "paxosstore_storage_commit_seconds", 0.5);
  const fsyncP99 = quantile(a, b, "paxosstore_storage_commit_seconds", 0.99);
  const out: Record<string, string> = {};
  out["fast%"] = fast + prepare > 0 ? `${((100 * fast) / (fast + prepare)).toFixed(0)}%` : "-";
  out["prepares"] = String(prepare);
  out["rejects"] = String(d("paxosstore_rejects_received_total"));
  out["forwards"] = String(d("paxosstore_forwards_total"));
  out["loads"] = String(d("paxosstore_group_loads_total"));
  out["batches"] = String(batches);
  out["rec/batch"] = batches > 0 ? (records / batches).toFixed(1) : "-";
  out["commit p50 ms"] = fsyncP50 === null ? "-" : (fsyncP50 * 1000).toFixed(2);
  out["commit p99 ms"] = fsyncP99 === null ? "-" : (fsyncP99 * 1000).toFixed(2);
  out["msg/frame"] = frames > 0 ? (msgs / frames).toFixed(1) : "-";
  out["bad frames"] = String(d("paxosstore_bad_frames_total"));
  out["groups"] = String(b.get("paxosstore_groups_active") ?? 0);
  out["rss MB"] = ((b.get("paxosstore_process_resident_memory_bytes") ?? 0) / 2 ** 20).toFixed(0);
  return out;
}
