// Which reply subjects a node answers on. A request's reply subject is chosen by whoever sent
// it; a node that published its answer wherever it was told would publish with the NODE's
// permissions: a client could make node n1 publish on `<prefix>.peer.n2` (a Paxos frame
// subject only nodes may use) or on any other subject the node's user may reach. So a node
// answers only subjects a client may own: inboxes.
//
// A reply subject is accepted when it starts with one of the configured reply prefixes
// followed by "." or "_" (default `_INBOX`: nats.js' `_INBOX.` and per-application prefixes
// such as `_INBOX_alice.`), has no wildcard, and is not under the cluster's own subject
// prefix (whatever the reply prefixes say).

export const DEFAULT_REPLY_PREFIXES: readonly string[] = ["_INBOX"];

/** Why a node must not answer on `reply`, or null when it may. */
export function replySubjectProblem(reply: string, clusterPrefix: string, replyPrefixes: readonly string[] = DEFAULT_REPLY_PREFIXES): string | null {
  if (reply === clusterPrefix || reply.startsWith(`${clusterPrefix}.`)) return `is under the cluster's prefix ${clusterPrefix}`;
  if (/[*>\s]/.test(reply)) return "has a wildcard or a space";
  for (const p of replyPrefixes) {
    if (reply.length > p.length && reply.startsWith(p) && (reply[p.length] === "." || reply[p.length] === "_")) return null;
  }
  return `is not an inbox (it must start with ${replyPrefixes.map((p) => `${p}. or ${p}_`).join(", ")})`;
}
