// A node: the supervisor of everything one process runs. It opens the storage, connects to
// NATS, starts the nact system with its sharded key-group actors, the Paxos transport and the
// client API, passivates idle groups, and shuts down in order:
//   stop taking requests -> let calls in flight finish -> flush storage -> flush sends -> close.

import { randomBytes } from "node:crypto";
import { mkdir } from "node:fs/promises";
import type { NatsConnection } from "@nats-io/transport-node";
import { start as startActorSystem, stop as stopActor, type ActorSystemRef } from "nact";
import pino, { type Logger } from "pino";
import type { NodeId } from "../protocol/ballot.js";
import { DEFAULT_LIMITS } from "../protocol/config.js";
import type { StatusResult } from "../protocol/api.js";
import { DEFAULT_WIRE_LIMITS } from "../protocol/limits.js";
import { subjectsFor } from "../protocol/subjects.js";
import { isStorageError } from "../storage/errors.js";
import { LevelStorage } from "../storage/leveldb.js";
import { StorageWriter } from "../storage/writer.js";
import { fsyncDelayFromEnv } from "./testHooks.js";
import { ApiHandler } from "./apiHandler.js";
import { GroupRegistry } from "./groupRegistry.js";
import type { NodeConfig } from "./nodeConfig.js";
import { connectWithRetry, natsConnectionOptions, watchNats } from "./natsConnect.js";
import { operatorHooks } from "./operator.js";
import { backupStream } from "./backup.js";
import { readIdentity } from "./identity.js";
import { LostDiskMode } from "./lostDisk.js";
import { startMembership, type Membership } from "./membership.js";
import { MembersAdmin } from "./membersAdmin.js";
import { MEMBERS_GROUP, MEMBERS_KEY, MEMBERS_WRITE_HEADER, MembersViewHolder, parseView } from "./membersView.js";
import { Mover } from "./mover.js";
import { Transport } from "./transport.js";
import { NodeMetrics } from "./metrics.js";
import type { Server } from "node:http";
import { fastRoundOwner } from "../protocol/fastRound.js";
import { VERSION } from "../version.js";

export { natsConnectionOptions } from "./natsConnect.js";

/** An idle link to a peer gets an empty frame this often. */
const HEARTBEAT_MS = 50;
/** A peer silent this long is taken for paused or cut off: requests are routed around it. */
const PEER_SILENCE_MS = 300;

export interface NodeHandle {
  readonly config: NodeConfig;
  /** The health endpoint's port, when config.httpPort is set. */
  readonly httpPort: number | null;
  status(): StatusResult;
  stats(): Record<string, unknown>;
  /** Graceful: finishes calls in flight, flushes, closes. */
  stop(): Promise<void>;
  /** Resolves when the node stopped (gracefully or after a fatal error). */
  readonly stopped: Promise<void>;
}

export interface StartNodeOptions {
  readonly logger?: Logger;
  /** Called after a fatal error (the disk failed); the CLI exits non-zero. */
  readonly onFatal?: (error: unknown) => void;
}

export async function startNode(config: NodeConfig, options: StartNodeOptions = {}): Promise<NodeHandle> {
  const log = options.logger ?? pino({ level: config.logLevel, base: { node: config.nodeId } });
  const ops = operatorHooks(config, log);
  const startedAt = Date.now();
  const incarnation = `${startedAt.toString(36)}${randomBytes(3).toString("hex")}`;
  const subjects = subjectsFor(config.cluster, config.prefix);
  const now = (): number => performance.now();
  // eslint-disable-next-line prefer-const
  let view: MembersViewHolder;
  // Where to send a group's requests, preferred first, as clients route (membersView.ts).
  const replicasOf = (group: string): readonly NodeId[] => view.route(group);

  await mkdir(config.dataDir, { recursive: true });
  const storage = new LevelStorage(config.dataDir);
  try {
    await storage.open();
  } catch (e) {
    log.error({ event: "storage_error", dataDir: config.dataDir, err: e }, "cannot open the storage");
    throw e;
  }
  try {
    // A wrong mount is refused before anything else, even with NATS unreachable.
    await readIdentity(storage, config.dataDir, config.nodeId, config.cluster);
  } catch (e) {
    await storage.close();
    throw e;
  }
  ops.storageOpen = true;
  view = new MembersViewHolder(config.nodeId, config.members, config.replication, storage, log);
  await view.load();
  const faultDelayMs = fsyncDelayFromEnv(process.env);
  if (faultDelayMs !== undefined) log.warn("TEST-ONLY: PAXOSSTORE_FAULT_FSYNC_DELAY_FILE is set: storage commits can be delayed (slow-disk fault)");
  if (config.breaks !== undefined) log.warn({ breaks: [...config.breaks] }, "TEST-ONLY: PAXOSSTORE_BREAK is set: this node runs with DELIBERATE PROTOCOL BUGS and is not safe");
  // eslint-disable-next-line prefer-const
  let metrics: NodeMetrics | undefined;
  const writer = new StorageWriter(storage, { faultDelayMs, mayWaitMs: config.commitWaitMs, onBatch: (report) => metrics?.batch(report) });
  let nc: NatsConnection;
  try {
    nc = await connectWithRetry(natsConnectionOptions(config.nats, `paxosstore-${config.cluster}-${config.nodeId}`), { waitMs: config.natsWaitMs }, log);
  } catch (e) {
    await storage.close();
    ops.storageOpen = false;
    throw e;
  }
  const natsState = watchNats(nc, log);

  // Who this data directory belongs to, and whether it is a lost disk (newOrLost.ts): decided
  // before any Paxos traffic starts, so a lost disk never votes with forgotten promises.
  let membership: Membership;
  try {
    membership = await startMembership(config, storage, nc, subjects.prefix, replicasOf, log, () => view.known(), (group) => view.foundingBirth(group), () => view.view);
  } catch (e) {
    await nc.close().catch(() => undefined);
    await storage.close();
    throw e;
  }
  let lostDisk: LostDiskMode | null = null;

  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => (resolveStopped = r));
  let fatalError: unknown = null;
  const system: ActorSystemRef = startActorSystem();

  // eslint-disable-next-line prefer-const
  let api: ApiHandler;
  const transport = new Transport({
    nc,
    prefix: subjects.prefix,
    cluster: config.cluster,
    self: config.nodeId,
    members: config.members,
    known: () => view.known(),
    maxFrameBytes: DEFAULT_WIRE_LIMITS.frameBytesMax,
    silenceMs: PEER_SILENCE_MS,
    deliver: (from, msg) => {
      // Membership changes (issue 13): any group may be held here (a joiner, a removed copy
      // serving catch-up); the group's actor drops messages for a group it neither holds nor
      // may create (keyGroup.ts load).
      if (msg.type === "reject") metrics?.rejectReceived();
      ops.activity.received(from, msg);
      registry.dispatch(msg.group, { type: "message", from, msg });
    },
    onBadFrame: (reason) => ops.badFrame(reason),
  });
  const registry: GroupRegistry = new GroupRegistry(
    system,
    {
      nodeId: config.nodeId,
      incarnation,
      timing: config.timing,
      limits: { ...DEFAULT_LIMITS, requestMemory: config.requestMemory },
      breaks: config.breaks,
      storage,
      writer,
      birth: (group, initiating) => view.birth(group, initiating),
      membersLogWritten: () => view.view.version > 0,
      foundingBirth: (group) => view.foundingBirth(group),
      notHeld: (call, group) => api.notHeld(call, group),
      notLoadedYet: (call, group, outcome) => (mover.owns(call) ? mover.answer(call, outcome) : api.notLoadedYet(call, group, outcome)),
      dropGroup: (group) => storage.dropGroup(group),
      send: (to, msg) => {
        ops.activity.sent(to, msg);
        transport.send(to, msg);
      },
      loopback: (group, msg) => registry.dispatch(group, { type: "message", from: config.nodeId, msg }),
      restarted: !membership.firstLife,
      answer: (call, outcome) => (mover.owns(call) ? mover.answer(call, outcome) : api.answer(call, outcome)),
      dispatchTick: (group) => registry.dispatch(group, { type: "tick" }),
      fatal: (error) => fatal(error),
      recoveryPlan: (group) => lostDisk?.plan(group) ?? { kind: "none" },
      get metrics() {
        return metrics;
      },
      onLostGroup: (group, error) => {
        ops.activity.lostGroup(group);
        log.error({ event: "group_recovering", group, err: error }, "a stored record of this group failed its checksum: wiping the group locally and recovering it from the peers (not voting until safe)");
      },
      now,
    },
    (group, error) => log.error({ group, err: error }, "key-group actor crashed; it reloads from disk on its next message"),
    32,
    config.maxActiveGroups,
  );

  const mover: Mover = new Mover({
    nc,
    prefix: subjects.prefix,
    cluster: config.cluster,
    self: config.nodeId,
    view,
    storage,
    dispatch: (group, msg) => registry.dispatch(group, msg),
    liveGroups: () => registry.liveGroups(),
    ratePerSecond: config.moveRatePerSecond,
    log,
  });
  const admin = new MembersAdmin({ nc, prefix: subjects.prefix, view, log, peerAlive: (node) => transport.isAlive(node) });

  const status = (): StatusResult => {
    const seenSince = Date.now() - 10_000;
    const v = view.view;
    const everyone = [...new Set([...v.members, ...v.previous])];
    const membersSeen = everyone.filter((m) => m === config.nodeId || (transport.lastHeard.get(m) ?? 0) >= seenSince);
    const m = mover.stats;
    return {
      node: config.nodeId,
      cluster: config.cluster,
      version: VERSION,
      uptimeMs: Date.now() - startedAt,
      members: [...v.members],
      membersSeen,
      // The clients' key-groups: the membership log, read by every node now and then, is not counted.
      groupsActive: registry.size - (registry.isLive(MEMBERS_GROUP) ? 1 : 0),
      limits: DEFAULT_WIRE_LIMITS,
      membership: {
        epoch: v.epoch,
        members: [...v.members],
        previous: [...v.previous],
        phase: v.phase,
        version: v.version,
        moved: m.moved,
        left: m.left,
        sweptVersion: m.sweptVersion,
        held: m.held,
        removedHeld: m.removedHeld,
        removed: !v.members.includes(config.nodeId) && m.sweptVersion === v.version && m.held === 0 && m.removedHeld === 0,
      },
    };
  };
  api = new ApiHandler({
    nc,
    subjects,
    self: config.nodeId,
    incarnation,
    limits: DEFAULT_WIRE_LIMITS,
    requestTimeoutMs: config.requestTimeoutMs,
    replicasFor: replicasOf,
    touched: (group) => mover.touch(group),
    writeAllowed: (group, msg) => group !== MEMBERS_GROUP || msg.headers?.get(MEMBERS_WRITE_HEADER) === "1",
    peerAlive: (node) => transport.isAlive(node),
    selfSettled: () => transport.selfSettled(),
    returningFromCut: () => transport.returningFromCut(),
    fastRoundOwner: (group) => {
      const replica = registry.replicaOf(group);
      return replica === null ? null : fastRoundOwner(replica);
    },
    lastHeard: (node) => transport.lastHeard.get(node) ?? 0,
    markDown: (node) => transport.markDown(node),
    dispatch: (group, msg) => registry.dispatch(group, msg),
    status,
    now,
    onAnswered: (op, outcome, seconds) => metrics?.answered(op, outcome, seconds),
    replyPrefixes: config.replyPrefixes,
    onBadReply: (reply, problem) => ops.badReply(reply, problem),
  });
  const metricsServer = await startMetrics(config, registry, transport, () => api, writer, (m) => (metrics = m), log);

  if (membership.lostDisk !== null) {
    lostDisk = new LostDiskMode({
      nc,
      prefix: subjects.prefix,
      cluster: config.cluster,
      self: config.nodeId,
      members: config.members,
      // Whom to ask first; the peers' answers say which nodes the cluster has now (the view on
      // the lost disk is gone), and the newest view they hold is adopted at once.
      peers: () => [...view.known()],
      onView: (v) => void view.adopt(v).catch((e: unknown) => log.warn({ err: e }, "lost disk: could not store the membership view a peer holds")),
      log,
      storage,
      state: membership.lostDisk,
      replicaOf: (group) => registry.replicaOf(group),
      nudge: (group) => registry.dispatch(group, { type: "tick" }),
    });
  }

  transport.start();
  api.start();
  admin.start();
  mover.start();
  const refresher = refreshMembersView(nc, subjects.prefix, view, log);
  lostDisk?.start();
  membership.afterStart(transport);
  // Heartbeat: an empty frame on every link idle for HEARTBEAT_MS, so that `status` can tell
  // which members are up, and the api handler can tell a paused or cut-off peer by its silence
  // (transport.ts) in PEER_SILENCE_MS instead of seconds.
  const heartbeat = setInterval(() => transport.heartbeat(HEARTBEAT_MS), HEARTBEAT_MS);
  transport.heartbeat();
  const passivator = setInterval(() => registry.passivateIdle(now(), config.passivateAfterMs), Math.min(5_000, config.passivateAfterMs));
  const peers = ops.watchPeers(transport.lastHeard);
  let http: Awaited<ReturnType<typeof ops.startHttp>> = null;
  try {
    http = await ops.startHttp({
      nats: natsState,
      transport: transport.stats,
      api: api.stats,
      groupsActive: () => registry.size - (registry.isLive(MEMBERS_GROUP) ? 1 : 0),
      status,
      backup: () => backupStream(storage, { nodeId: config.nodeId, cluster: config.cluster, createdAt: new Date().toISOString(), version: VERSION }),
      extra: () => ({ identityId: membership.identity.identityId, lostDisk: lostDisk?.stats() ?? null }),
    });
  } catch (e) {
    log.error({ event: "http_error", err: e }, `cannot listen on ${config.httpHost}:${config.httpPort}`);
    throw e;
  }

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      clearInterval(heartbeat);
      clearInterval(passivator);
      peers.stop();
      ops.stopping = true;
      lostDisk?.stop();
      membership.stop();
      refresher.stop();
      admin.stop();
      mover.stop();
      metricsServer?.close();
      log.info({ event: "shutdown", phase: "stop_accepting", inFlight: api.inFlight }, "stopping: no new requests");
      await api.stopAccepting();
      // Let calls in flight finish (each has a deadline), but not forever.
      const until = Date.now() + config.requestTimeoutMs + 2_000;
      while (api.inFlight > 0 && Date.now() < until && fatalError === null) await sleep(20);
      log.info({ event: "shutdown", phase: "calls_done", unanswered: api.inFlight }, "stopping: calls in flight done");
      api.close();
      // Nothing new may reach a group actor once the writer is closed: stop peer traffic in,
      // let the mailboxes empty, stop the actors (and their timers), then flush the disk.
      transport.stopReceiving();
      const drained = Date.now() + 2_000;
      while (registry.mailboxesBusy() && Date.now() < drained) await sleep(5);
      registry.stopAll();
      log.info({ event: "shutdown", phase: "flush_storage" }, "stopping: flushing storage");
      await writer.close();
      await sleep(5); // releases that waited on the last batch run now
      await transport.stop();
      log.info({ event: "shutdown", phase: "drain_nats" }, "stopping: draining NATS");
      await nc.drain().catch(() => undefined);
      stopActor(system);
      await http?.close();
      await storage.close();
      ops.storageOpen = false;
      log.info({ event: "shutdown", phase: "stopped" }, "stopped");
      resolveStopped();
    })());

  function fatal(error: unknown): void {
    if (fatalError !== null) return;
    if (stopping !== null && isStorageError(error, "STORAGE_CLOSED")) {
      // A straggler after the writer closed during a graceful stop: nothing of it was revealed.
      log.warn({ err: error }, "a persist arrived after storage closed during shutdown; dropped, nothing revealed");
      return;
    }
    fatalError = error;
    log.fatal({ event: "storage_error", err: error }, "storage failed: stopping this node (nothing unpersisted was revealed)");
    options.onFatal?.(error);
    void stop();
  }

  // "ready" means reachable: a round trip to the server, so it has taken our subscriptions
  // (without it a request sent right after "ready" could find no responders).
  await nc.flush().catch(() => undefined);
  log.info(
    {
      event: "ready",
      version: VERSION,
      cluster: config.cluster,
      members: config.members,
      dataDir: config.dataDir,
      nats: nc.getServer(),
      natsServers: config.nats.servers,
      natsUser: config.nats.user ?? (config.nats.credsFile !== undefined ? "(creds file)" : config.nats.nkeySeedFile !== undefined ? "(nkey)" : config.nats.token !== undefined ? "(token)" : null),
      tls: config.nats.tls !== undefined,
      httpPort: http?.port ?? null,
      identityId: membership.identity.identityId,
      lostDisk: lostDisk?.stats().phase ?? null,
    },
    `paxosstore node ${config.nodeId} ready`,
  );
  return {
    config,
    httpPort: http?.port ?? null,
    status,
    stats: () => ({ transport: transport.stats, writer: writer.stats, api: api.stats, groups: registry.size, passivated: registry.passivated, passivatedOverCap: registry.passivatedOverCap, identity: membership.identity, lostDisk: lostDisk?.stats() ?? null }),
    stop,
    stopped,
  };
}

/** The Prometheus endpoint (metrics.ts), when `metricsPort` is set; counts nothing otherwise. */
async function startMetrics(
  config: NodeConfig,
  registry: GroupRegistry,
  transport: Transport,
  api: () => ApiHandler,
  writer: StorageWriter,
  install: (m: NodeMetrics) => void,
  log: Logger,
): Promise<Server | null> {
  if (config.metricsPort === 0) return null;
  const m = new NodeMetrics(config.nodeId, config.cluster, {
    groupsActive: () => registry.size - (registry.isLive(MEMBERS_GROUP) ? 1 : 0),
    transport: () => transport.stats,
    api: () => api().stats,
    writerQueued: () => writer.stats.queued,
  });
  install(m);
  try {
    return await m.listen(config.metricsPort);
  } catch (e) {
    // The store works without its metrics: say so loudly rather than refuse to serve.
    log.error({ err: e, port: config.metricsPort }, "cannot serve metrics on this port; running without the /metrics endpoint");
    return null;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Reads the membership log at once when the admin op says it changed (a NATS message to every
 * node), and by itself every second while a change is under way, every 5 s when stable (for a
 * node that missed the message). A peer frame carrying the epoch, as the design has it, would
 * tell sooner; not built.
 */
function refreshMembersView(nc: NatsConnection, prefix: string, view: MembersViewHolder, log: Logger): { stop(): void } {
  let stopped = false;
  let running = false;
  const once = async (): Promise<void> => {
    if (running || stopped) return;
    running = true;
    try {
      const m = await nc.request(`${prefix}.api`, new TextEncoder().encode(JSON.stringify({ op: "get", group: MEMBERS_GROUP, key: MEMBERS_KEY })), { timeout: 3_000 });
      const r = JSON.parse(new TextDecoder().decode(m.data)) as { ok?: boolean; found?: boolean; value?: string; version?: number };
      if (r.ok === true && r.found === true && typeof r.value === "string" && typeof r.version === "number") {
        const v = parseView(JSON.parse(r.value), r.version);
        if (v !== null) await view.adopt(v);
      }
    } catch (e) {
      log.debug({ err: e }, "membership log not readable now");
    } finally {
      running = false;
    }
  };
  let lastAt = 0;
  const timer = setInterval(() => {
    if (Date.now() - lastAt < (view.view.phase === "stable" ? 5_000 : 1_000)) return;
    lastAt = Date.now();
    void once();
  }, 250);
  const sub = nc.subscribe(`${prefix}.admin.changed`, { callback: () => void once() });
  void once();
  return {
    stop() {
      stopped = true;
      clearInterval(timer);
      sub.unsubscribe();
    },
  };
}
