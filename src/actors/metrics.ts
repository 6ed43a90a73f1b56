// A node's Prometheus metrics (prom-client, one registry per node so that several nodes in one
// process, as in tests, do not share counters) and the HTTP listener that serves them at
// /metrics. docs/OPERATIONS.md says what each one means.
//
// Counting stays on the live side: the actors and the driver count what the core's Ready
// asks for (a Prepare sent, a fast-round Accept sent) and what arrives (a Reject); the core
// itself is not touched. Counters that other parts already keep (transport frames, api
// forwards) are read at scrape time instead of being counted twice.

import { createServer, type Server } from "node:http";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { NodeId } from "../protocol/ballot.js";
import { FAST_ROUND } from "../protocol/ballot.js";
import type { Ready } from "../protocol/io.js";
import type { BatchReport } from "../storage/writer.js";

/** What the group actors and the registry report (a no-op when metrics are off). */
export interface GroupMetrics {
  groupLoaded(seconds: number): void;
  groupPassivated(reason: "idle" | "cap"): void;
  /** One step's Ready, as the driver is about to perform it. */
  stepped(ready: Ready, self: NodeId): void;
}

export const NO_GROUP_METRICS: GroupMetrics = { groupLoaded() {}, groupPassivated() {}, stepped() {} };

/** Read at scrape time from the parts that keep their own counters. */
export interface MetricSources {
  groupsActive(): number;
  transport(): { framesOut: number; messagesOut: number; framesIn: number; messagesIn: number; badFrames: number };
  api(): { requests: number; badRequests: number; forwarded: number; relayed: number; hedged: number; refusedBacklog: number };
  writerQueued(): number;
}

const LATENCY_BUCKETS_S = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5];

export class NodeMetrics implements GroupMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<"op" | "outcome">;
  private readonly requestSeconds: Histogram<"op">;
  private readonly proposals: Counter<"round">;
  private readonly rejects: Counter;
  private readonly loads: Counter;
  private readonly loadSeconds: Histogram;
  private readonly passivations: Counter<"reason">;
  private readonly batchRecords: Histogram;
  private readonly commitSeconds: Histogram;
  private readonly failedBatches: Counter;
  private readonly requestChildren = new Map<string, { count: { inc(): void }; seconds: { observe(v: number): void } }>();
  private readonly fastProposals: { inc(): void };
  private readonly prepareProposals: { inc(): void };

  constructor(nodeId: string, cluster: string, sources: MetricSources) {
    const r = this.registry;
    r.setDefaultLabels({ node: nodeId, cluster });
    collectDefaultMetrics({ register: r, prefix: "paxosstore_" });
    this.requests = new Counter({ name: "paxosstore_requests_total", help: "Client requests answered by this node's key-groups, by op and outcome", labelNames: ["op", "outcome"], registers: [r] });
    this.requestSeconds = new Histogram({ name: "paxosstore_request_duration_seconds", help: "Time from a request's arrival at this node to its answer", labelNames: ["op"], buckets: LATENCY_BUCKETS_S, registers: [r] });
    this.proposals = new Counter({ name: "paxosstore_proposals_total", help: "Instances this node proposed: round=fast (round-0 Accept, no Prepare) or round=prepare (a Prepare round)", labelNames: ["round"], registers: [r] });
    this.fastProposals = this.proposals.labels("fast");
    this.prepareProposals = this.proposals.labels("prepare");
    this.rejects = new Counter({ name: "paxosstore_rejects_received_total", help: "Reject messages received: a peer promised a higher ballot (proposers dueling)", registers: [r] });
    this.loads = new Counter({ name: "paxosstore_group_loads_total", help: "Key-groups loaded from LevelDB into memory", registers: [r] });
    this.loadSeconds = new Histogram({ name: "paxosstore_group_load_seconds", help: "Time to read one key-group from LevelDB", buckets: [0.0001, 0.0005, 0.001, 0.005, 0.02, 0.1, 0.5], registers: [r] });
    this.passivations = new Counter({ name: "paxosstore_group_passivations_total", help: "Key-group actors stopped: reason=idle (idle timeout) or cap (over maxActiveGroups)", labelNames: ["reason"], registers: [r] });
    this.batchRecords = new Histogram({ name: "paxosstore_storage_batch_records", help: "Persist records per synced LevelDB batch (group commit)", buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512], registers: [r] });
    this.commitSeconds = new Histogram({ name: "paxosstore_storage_commit_seconds", help: "Time to write and fsync one batch", buckets: LATENCY_BUCKETS_S, registers: [r] });
    this.failedBatches = new Counter({ name: "paxosstore_storage_failed_batches_total", help: "Batches that failed (the node stops)", registers: [r] });
    const gauge = (name: string, help: string, read: () => number): void => {
      new Gauge({ name, help, registers: [r], collect() { this.set(read()); } });
    };
    gauge("paxosstore_groups_active", "Key-group actors in memory", () => sources.groupsActive());
    gauge("paxosstore_storage_queued_records", "Persist records waiting for the next batch", () => sources.writerQueued());
    // Counters kept elsewhere, exposed as counters (monotonic since start).
    const counter = (name: string, help: string, read: () => number): void => {
      const c = new Counter({ name, help, registers: [r], collect() { c.reset(); c.inc(read()); } });
    };
    counter("paxosstore_peer_frames_sent_total", "NATS messages sent to peers (each batches many Paxos messages)", () => sources.transport().framesOut);
    counter("paxosstore_peer_messages_sent_total", "Paxos messages sent to peers", () => sources.transport().messagesOut);
    counter("paxosstore_peer_frames_received_total", "Valid peer frames received", () => sources.transport().framesIn);
    counter("paxosstore_peer_messages_received_total", "Paxos messages received", () => sources.transport().messagesIn);
    counter("paxosstore_bad_frames_total", "Peer frames dropped: undecodable, invalid, from a non-member or another cluster", () => sources.transport().badFrames);
    counter("paxosstore_bad_requests_total", "Client requests refused as malformed", () => sources.api().badRequests);
    counter("paxosstore_forwards_total", "Requests relayed to another node (a write to the group's live fast-round owner or preferred replica, a read at a node that has just started, or a group this node holds no replica of)", () => sources.api().forwarded + sources.api().relayed);
    counter("paxosstore_backlog_refused_total", "Queue-subject requests answered at once, unserved, in the 250 ms after this node came back from a cut or pause of a second or more (NATS's backlog for it)", () => sources.api().refusedBacklog);
    counter("paxosstore_relay_hedges_total", "Relayed writes whose target stayed silent for the hedge delay, so that a second copy went to the next replica", () => sources.api().hedged);
  }

  /** A client call answered: `op` get|get_stale|scan|put|delete|cas|txn; `outcome` ok or an error code. */
  answered(op: string, outcome: string, seconds: number): void {
    // Label children are looked up once per (op, outcome): prom-client hashes labels per call.
    const key = `${op}\u0000${outcome}`;
    let c = this.requestChildren.get(key);
    if (c === undefined) {
      c = { count: this.requests.labels(op, outcome), seconds: this.requestSeconds.labels(op) };
      this.requestChildren.set(key, c);
    }
    c.count.inc();
    c.seconds.observe(seconds);
  }

  groupLoaded(seconds: number): void {
    this.loads.inc();
    this.loadSeconds.observe(seconds);
  }

  groupPassivated(reason: "idle" | "cap"): void {
    this.passivations.inc({ reason });
  }

  rejectReceived(): void {
    this.rejects.inc();
  }

  stepped(ready: Ready, self: NodeId): void {
    // One Ready sends a round's Prepare (or Accept) to every peer: count the round once.
    let prepare = false;
    let fast = false;
    for (const o of ready.send) if (o.msg.type === "prepare") prepare = true;
    // A spare peer's late copy of an Accept is not a proposal (Ready.proposed).
    const m = ready.proposed;
    if (m !== null && m.ballot.round === FAST_ROUND && m.ballot.node === self) fast = true;
    if (prepare) this.prepareProposals.inc();
    if (fast) this.fastProposals.inc();
  }

  batch(report: BatchReport): void {
    this.batchRecords.observe(report.records);
    this.commitSeconds.observe(report.durationMs / 1000);
    if (report.error !== undefined) this.failedBatches.inc();
  }

  /** Serves /metrics on `port` (0.0.0.0 unless `host`); resolves once listening. */
  async listen(port: number, host = "0.0.0.0"): Promise<Server> {
    const server = createServer((req, res) => {
      if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== "/metrics") {
        res.writeHead(404).end("not found: try /metrics\n");
        return;
      }
      this.registry.metrics().then(
        (text) => res.writeHead(200, { "Content-Type": this.registry.contentType }).end(text),
        (e: unknown) => res.writeHead(500).end(String(e)),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    return server;
  }
}
