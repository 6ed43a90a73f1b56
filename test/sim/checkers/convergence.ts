// Convergence: every replica applies the same values in the same order, so replicas at equal
// `chosen` hold equal data and equal request-id records, and the same configuration for the
// next instance (membership.ts: config(i+1) is a function of the log up to i). The first
// replica to reach (group, index) sets the digest; every later one (after a step, a catch-up
// or a restart) must match it.

import type { Configuration, Entry } from "../../../src/protocol/ops.js";
import type { RequestRecord } from "../../../src/protocol/messages.js";
import { fail } from "./failure.js";
import { bytesText, show } from "./format.js";

export function groupDigest(data: ReadonlyMap<string, Entry>, requests: ReadonlyMap<string, RequestRecord>): string {
  // Keys sorted: a data catch-up may rebuild the map in another insertion order, which is not
  // a difference. Request records keep their order: it decides which ones are forgotten first.
  const keys = [...data.keys()].sort();
  let out = "data:";
  for (const k of keys) {
    const e = data.get(k)!;
    out += `${JSON.stringify(k)}=${JSON.stringify(bytesText(e.value))}@${e.version};`;
  }
  out += "|requests:";
  for (const r of requests.values()) out += `${r.requestId}#${r.seq}@${r.index}=${show(r.result)};`;
  return out;
}

export class ConvergenceChecker {
  /** group -> index -> digest and who set it. */
  private readonly digests = new Map<string, Map<number, { digest: string; setBy: string }>>();

  observe(
    node: string,
    group: string,
    index: number,
    data: ReadonlyMap<string, Entry>,
    requests: ReadonlyMap<string, RequestRecord>,
    where: string,
    config?: Configuration,
  ): void {
    let g = this.digests.get(group);
    if (g === undefined) {
      g = new Map();
      this.digests.set(group, g);
    }
    const digest = groupDigest(data, requests) + (config === undefined ? "" : `|config:${config.epoch}[${config.replicas.join(",")}]`);
    const known = g.get(index);
    if (known === undefined) {
      g.set(index, { digest, setBy: `${node} ${where}` });
      return;
    }
    if (known.digest !== digest) {
      fail(
        "convergence",
        `group ${group} at chosen ${index}: ${node} (${where}) holds\n    ${digest}\n  but ${known.setBy} held\n    ${known.digest}`,
      );
    }
  }
}
