// One-line renderings of messages, answers and queries for the --verbose trace.

import type { Outcome } from "../../src/protocol/io.js";
import type { PeerMessage } from "../../src/protocol/messages.js";
import type { ReadQuery, Value } from "../../src/protocol/ops.js";
import { ballotText, entryText, show } from "./checkers/format.js";

function valueText(v: Value | null): string {
  return v === null ? "(no value)" : `${v.id}[${v.commands.map((c) => c.requestId).join(",")}]`;
}

export function describeMessage(m: PeerMessage): string {
  const at = `${m.group}`;
  switch (m.type) {
    case "prepare":
      return `prepare ${at}#${m.index} b=${ballotText(m.ballot)} prev=${m.prev?.index ?? "-"}`;
    case "promise":
      return `promise ${at}#${m.index} b=${ballotText(m.ballot)} acc=${m.accepted === null ? "-" : `${ballotText(m.accepted.ballot)}:${valueText(m.accepted.value)}`}`;
    case "accept":
      return `accept ${at}#${m.index} b=${ballotText(m.ballot)} v=${valueText(m.value)} prev=${m.prev?.index ?? "-"}`;
    case "accepted":
      return `accepted ${at}#${m.index} b=${ballotText(m.ballot)}`;
    case "reject":
      return `reject ${at}#${m.index} b=${ballotText(m.ballot)} promised=${ballotText(m.promised)} chosen=${m.chosen}`;
    case "chosen":
      return `chosen ${at}#${m.index} b=${ballotText(m.ballot)} v=${m.valueId}${m.value === null ? "" : "+value"}`;
    case "catchupRequest":
      return `catchupRequest ${at} chosen=${m.chosen} snapshotAt=${m.snapshotAt ?? "-"} after=${m.after ?? "-"}`;
    case "catchupEntry":
      return `catchupEntry ${at}#${m.entry.index} v=${valueText(m.entry.value)}`;
    case "catchupSnapshot":
      return `catchupSnapshot ${at}@${m.at.index} after=${m.after ?? "-"} items=${m.items.length} next=${m.next ?? "-"}`;
    case "readProbe":
      return `readProbe ${at} probe=${m.probe}${m.settle === undefined ? "" : ` settle=${m.settle}`}`;
    case "readProbeReply":
      return `readProbeReply ${at} probe=${m.probe} chosen=${m.chosen} accepted=${m.accepted}`;
  }
}

export function describeOutcome(o: Outcome): string {
  switch (o.kind) {
    case "write":
      return `ok ${show(o.result)}`;
    case "read":
      return o.result.kind === "get"
        ? `ok get@${o.result.index} ${entryText(o.result.entry)}`
        : `ok scan@${o.result.index} ${o.result.items.map((i) => `${i.key}=${entryText(i)}`).join(" ")}${o.result.next === undefined ? "" : ` next=${o.result.next}`}`;
    case "error":
      return `error ${o.code}${o.config === undefined ? "" : ` (replicas ${o.config.replicas.join(",")} epoch ${o.config.epoch})`}`;
    case "reconfigured":
      return `reconfigured to epoch ${o.config.epoch} [${o.config.replicas.join(",")}] at #${o.index}`;
  }
}

export function describeQuery(q: ReadQuery): string {
  return q.kind === "get" ? `get ${q.key}` : `scan "${q.prefix}"${q.after === undefined ? "" : ` after ${q.after}`} limit ${q.limit}`;
}
