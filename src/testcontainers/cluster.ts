// A PaxosStore cluster in containers, for tests: a nats-server and N nodes (3 by default) on
// one user-defined Docker network, each node with its own data volume.
//
//   const cluster = await new PaxosStoreCluster().start();
//   const store = await cluster.client();          // a connected PaxosStoreClient
//   await store.put("greeting", "hello");
//   await cluster.node("n1").pause();              // faults: pause, stop/start, kill, disconnect
//   await cluster.partition(["n1"], ["n2", "n3"]); // n1 cut from its peers, still reachable
//   await cluster.addNode();                        // n4's container, started to join
//   await cluster.members("add", "n4");             // the membership change, to its end
//   await cluster.stop();                           // containers, volumes, network, clients
//
// See docs/TESTCONTAINERS.md.

import { randomBytes } from "node:crypto";
import {
  getContainerRuntimeClient,
  getReaper,
  LABEL_TESTCONTAINERS_SESSION_ID,
  Network,
  Wait,
  type ContainerRuntimeClient,
  type StartedNetwork,
  type StartedTestContainer,
} from "testcontainers";
import { connect, type ConnectOptions, type PaxosStoreClient } from "../client/index.js";
import type { MembersAdminResult } from "../client/client.js";
import type { NatsConnection } from "@nats-io/transport-node";
import { NetworkedContainer } from "./container.js";
import { checkPartition, natsConfigText, NATS_CLIENT_PORT, NATS_MONITOR_PORT, type NatsNodeUser } from "./natsConfig.js";
import { PaxosStoreNode, startNodeContainer, type NodeSpec } from "./node.js";

/** Default images: the ones `infra/images/build.sh` builds. Override per cluster, or with these env vars. */
export const DEFAULT_NODE_IMAGE = process.env.PAXOSSTORE_NODE_IMAGE ?? "paxosstore/node:local";
export const DEFAULT_NATS_IMAGE = process.env.PAXOSSTORE_NATS_IMAGE ?? "paxosstore/nats-server:local";
export const DEFAULT_CLUSTER_NAME = "test";
export const DEFAULT_STARTUP_TIMEOUT_MS = 60_000;

const NATS_CONFIG_PATH = "/etc/nats/paxosstore-testcontainers.conf";
const NATS_ALIAS = "nats";
const TOKEN = /^[A-Za-z0-9_-]{1,64}$/;

export interface PaxosStoreClusterOptions {
  /** How many nodes (ids n1..nN), or their ids. Default 3. */
  readonly nodes?: number | readonly string[];
  /** The cluster name. Default "test". */
  readonly cluster?: string;
  /** Default paxosstore/node:local (or $PAXOSSTORE_NODE_IMAGE). */
  readonly nodeImage?: string;
  /** Default paxosstore/nats-server:local (or $PAXOSSTORE_NATS_IMAGE); any nats-server image whose entrypoint is nats-server. */
  readonly natsImage?: string;
  /** Join this network instead of creating one (then stop() leaves it). */
  readonly network?: StartedNetwork;
  /** Extra environment for every node (PAXOSSTORE_* settings, see docs/OPERATIONS.md). */
  readonly environment?: Readonly<Record<string, string>>;
  /** A node config file's content (e.g. `{ timing: { phaseTimeoutMs: 200 } }`), given to every node with --config. */
  readonly nodeConfig?: Readonly<Record<string, unknown>>;
  /** Node log level. Default "info" (the ready line is an info line: do not go above it). */
  readonly logLevel?: "debug" | "info";
  /** How long each container may take to log its ready line. Default 60 s. */
  readonly startupTimeoutMs?: number;
  /** Every log line of every node, as it comes (e.g. `(id, line) => console.log(id, line)`). */
  readonly logConsumer?: (nodeId: string, line: string) => void;
}

/** Builds and starts a cluster. Options may be given to the constructor or with the `with*` methods. */
export class PaxosStoreCluster {
  private options: PaxosStoreClusterOptions;

  constructor(options: PaxosStoreClusterOptions | number = {}) {
    this.options = typeof options === "number" ? { nodes: options } : { ...options };
  }

  /** A number of nodes (n1..nN) or their ids. */
  withNodes(nodes: number | readonly string[]): this {
    return this.set({ nodes });
  }
  withClusterName(cluster: string): this {
    return this.set({ cluster });
  }
  withNodeImage(nodeImage: string): this {
    return this.set({ nodeImage });
  }
  withNatsImage(natsImage: string): this {
    return this.set({ natsImage });
  }
  withNetwork(network: StartedNetwork): this {
    return this.set({ network });
  }
  withEnvironment(environment: Readonly<Record<string, string>>): this {
    return this.set({ environment: { ...this.options.environment, ...environment } });
  }
  withNodeConfig(nodeConfig: Readonly<Record<string, unknown>>): this {
    return this.set({ nodeConfig });
  }
  withLogLevel(logLevel: "debug" | "info"): this {
    return this.set({ logLevel });
  }
  withStartupTimeout(startupTimeoutMs: number): this {
    return this.set({ startupTimeoutMs });
  }
  withLogConsumer(logConsumer: (nodeId: string, line: string) => void): this {
    return this.set({ logConsumer });
  }

  private set(more: Partial<PaxosStoreClusterOptions>): this {
    this.options = { ...this.options, ...more };
    return this;
  }

  /** Starts the network, the nats-server and the nodes; resolves when every node logged its ready line. */
  async start(): Promise<StartedPaxosStoreCluster> {
    const o = this.options;
    const nodeIds = typeof o.nodes === "object" ? [...o.nodes] : Array.from({ length: o.nodes ?? 3 }, (_, i) => `n${i + 1}`);
    const cluster = o.cluster ?? DEFAULT_CLUSTER_NAME;
    if (nodeIds.length === 0) throw new Error("PaxosStoreCluster: at least one node");
    for (const id of [cluster, ...nodeIds]) {
      if (!TOKEN.test(id)) throw new Error(`PaxosStoreCluster: "${id}" may use only letters, digits, "_" and "-" (1 to 64)`);
    }
    if (nodeIds.includes(NATS_ALIAS)) throw new Error(`PaxosStoreCluster: "${NATS_ALIAS}" is the nats-server's name on the network; pick other node ids`);
    if (new Set(nodeIds).size !== nodeIds.length) throw new Error(`PaxosStoreCluster: duplicate node ids: ${nodeIds.join(",")}`);
    const startupTimeoutMs = o.startupTimeoutMs ?? DEFAULT_STARTUP_TIMEOUT_MS;
    // The nodes' subject prefix: the default, unless the environment given to the nodes sets one.
    const prefix = o.environment?.PAXOSSTORE_PREFIX ?? `paxosstore.${cluster}`;

    const client = await getContainerRuntimeClient();
    const reaper = await getReaper(client);
    const run = randomBytes(4).toString("hex");
    const labels: Record<string, string> = {
      "org.testcontainers": "true",
      [LABEL_TESTCONTAINERS_SESSION_ID]: reaper.sessionId,
      "org.paxosstore.cluster": cluster,
      "org.paxosstore.run": run,
    };

    const cleanup = new Cleanup();
    try {
      let network = o.network;
      if (network === undefined) {
        const created = await new Network().start();
        cleanup.add(() => created.stop());
        network = created;
      }

      // One NATS user per node (addNode adds to this list, then reloads the server's config).
      const nodeUsers: NatsNodeUser[] = nodeIds.map(natsUser);
      const clientUser = { user: "client", password: randomBytes(12).toString("hex") };
      const natsConfig = (partition: readonly (readonly string[])[] | null): string =>
        natsConfigText({ prefix, nodes: nodeUsers, clientUser, partition });

      const nats = await new NetworkedContainer(o.natsImage ?? DEFAULT_NATS_IMAGE)
        .onNetwork(network, NATS_ALIAS)
        .withExposedPorts(NATS_CLIENT_PORT, NATS_MONITOR_PORT)
        .withCopyContentToContainer([{ content: natsConfig(null), target: NATS_CONFIG_PATH }])
        .withCommand(["-c", NATS_CONFIG_PATH])
        .withLabels({ ...labels, "org.paxosstore.role": "nats-server" })
        .withStartupTimeout(startupTimeoutMs)
        .withWaitStrategy(Wait.forLogMessage(/Server is ready/))
        .start()
        .catch((e: unknown) => {
          throw new Error(`the nats-server container (image ${o.natsImage ?? DEFAULT_NATS_IMAGE}) did not start: ${(e as Error).message}`, { cause: e });
        });
      cleanup.add(() => client.container.getById(nats.getId()).remove({ force: true, v: true }));

      // The data volumes, the founders' and those of nodes added later (addNode), removed after
      // the containers that use them (cleanup runs last-in first-out).
      const volumes: string[] = [];
      cleanup.add(() => removeVolumes(client, volumes));
      const template: NodeTemplate = {
        image: o.nodeImage ?? DEFAULT_NODE_IMAGE,
        network,
        environment: {
          ...o.environment,
          PAXOSSTORE_CLUSTER: cluster,
          PAXOSSTORE_MEMBERS: nodeIds.join(","),
          PAXOSSTORE_NATS: `nats://${NATS_ALIAS}:${NATS_CLIENT_PORT}`,
          PAXOSSTORE_LOG_LEVEL: o.logLevel ?? "info",
        },
        configJson: o.nodeConfig === undefined ? null : JSON.stringify(o.nodeConfig),
        labels,
        startupTimeoutMs,
        logConsumer: o.logConsumer ?? null,
        volumeName: (nodeId) => `paxosstore-${cluster}-${nodeId}-${run}`,
      };
      const specs: NodeSpec[] = [];
      for (const user of nodeUsers) {
        const volume = template.volumeName(user.nodeId);
        await client.container.dockerode.createVolume({ Name: volume, Labels: { ...labels, "org.paxosstore.node": user.nodeId } });
        volumes.push(volume);
        specs.push(nodeSpec(template, user, volume, {}));
      }

      const started = await Promise.allSettled(specs.map((spec) => startNodeContainer(spec)));
      const nodes: PaxosStoreNode[] = [];
      for (const [i, r] of started.entries()) {
        if (r.status === "fulfilled") nodes.push(new PaxosStoreNode(specs[i]!, r.value, client));
      }
      // Removed all at once (before their volumes, which are in use until then); nodes added
      // later join this list.
      cleanup.add(() => Promise.all(nodes.map((node) => node.remove())));
      const failed = started.find((r): r is PromiseRejectedResult => r.status === "rejected");
      if (failed !== undefined) throw failed.reason;

      return new StartedPaxosStoreCluster({ client, cluster, prefix, network, nats, nodes, nodeUsers, volumes, founders: nodeIds, template, natsConfig, cleanup, ownsNetwork: o.network === undefined });
    } catch (e) {
      await cleanup.run();
      throw e;
    }
  }
}

/** Connection details a client needs (pass them to `connect()` from the PaxosStore client). */
export interface PaxosStoreConnectionOptions {
  readonly servers: string;
  readonly cluster: string;
  /** The subject prefix (`paxosstore.<cluster>` unless PAXOSSTORE_PREFIX was given to the nodes). */
  readonly prefix: string;
  /**
   * The members as this handle last saw them (`memberIds`). Given to `connect()`, the client
   * routes by this list for good and does not follow later membership changes (it still
   * follows `not_replica` answers); leave it out and the client learns the members from `status`.
   */
  readonly members: readonly string[];
}

/** A membership change action (the members admin op, docs/API.md). */
export type MembersAction = "add" | "remove" | "replace";

export interface MembersChangeOptions {
  /** How long the change may take, from the first request to `stable`. Default 120 s. */
  readonly timeoutMs?: number;
  /** Pause between two `advance` requests. Default 500 ms. */
  readonly pollMs?: number;
  /** Every answer of the admin op along the way (the view, each node's report, what it waits for). */
  readonly onProgress?: (reply: MembersAdminResult) => void;
}

export type { MembersAdminResult };

export const DEFAULT_MEMBERS_TIMEOUT_MS = 120_000;

/** What every node's container spec shares; a node's own parts are added by nodeSpec(). */
interface NodeTemplate {
  readonly image: string;
  readonly network: StartedNetwork;
  /** The cluster's environment for every node (the user's, the cluster, the founding members, NATS, log level). */
  readonly environment: Readonly<Record<string, string>>;
  readonly configJson: string | null;
  readonly labels: Record<string, string>;
  readonly startupTimeoutMs: number;
  readonly logConsumer: ((nodeId: string, line: string) => void) | null;
  readonly volumeName: (nodeId: string) => string;
}

interface StartedParts {
  readonly client: ContainerRuntimeClient;
  readonly cluster: string;
  readonly prefix: string;
  readonly network: StartedNetwork;
  readonly nats: StartedTestContainer;
  /** Every node container started, founders first (addNode appends). */
  readonly nodes: PaxosStoreNode[];
  /** Their NATS users, which natsConfig() writes into the server's config (addNode appends). */
  readonly nodeUsers: NatsNodeUser[];
  /** Their data volumes, removed by the cleanup (addNode appends). */
  readonly volumes: string[];
  /** The founding member list (every node's PAXOSSTORE_MEMBERS, also of nodes added later). */
  readonly founders: readonly string[];
  readonly template: NodeTemplate;
  readonly natsConfig: (partition: readonly (readonly string[])[] | null) => string;
  readonly cleanup: Cleanup;
  readonly ownsNetwork: boolean;
}

type AdminAnswer =
  | { readonly kind: "ok"; readonly reply: MembersAdminResult }
  | { readonly kind: "error"; readonly code: string; readonly message: string }
  | { readonly kind: "noAnswer"; readonly message: string };

export class StartedPaxosStoreCluster {
  private readonly clients = new Set<PaxosStoreClient>();
  private partitionNow: readonly (readonly string[])[] | null = null;
  private stopping: Promise<void> | null = null;
  private membersNow: readonly string[];
  private membersVersion = 0;
  /** Node ids being added (addNode in flight), and those calls: stop() waits for them. */
  private readonly adding = new Map<string, Promise<unknown>>();
  /** nats-server config reloads, one at a time. */
  private reloads: Promise<unknown> = Promise.resolve();
  /** The connection the members admin op goes through (opened on first use). */
  private adminClient: Promise<PaxosStoreClient> | null = null;

  /** @internal Use PaxosStoreCluster.start(). */
  constructor(private readonly parts: StartedParts) {
    this.membersNow = [...parts.founders];
  }

  /** The cluster name. */
  get cluster(): string {
    return this.parts.cluster;
  }

  /** The subject prefix (`paxosstore.<cluster>`). */
  get prefix(): string {
    return this.parts.prefix;
  }

  /**
   * Every node this handle started, in the order it started them: the founders, then those
   * addNode() added. Members or not: a node added but not (yet) made a member by members(), or
   * removed from the members, is still here while its container exists (until stop()).
   */
  get nodes(): readonly PaxosStoreNode[] {
    return this.parts.nodes;
  }

  /** The ids of `nodes` (not the members: see `memberIds`). */
  get nodeIds(): string[] {
    return this.parts.nodes.map((n) => n.id);
  }

  /** The founding member list: the nodes start() started, and every node's PAXOSSTORE_MEMBERS. */
  get founders(): readonly string[] {
    return this.parts.founders;
  }

  /**
   * The members as this handle last saw them: the founders until a members() or membership()
   * answer says otherwise. A change made without this handle (the CLI, your own admin request)
   * shows here after the next membership().
   */
  get memberIds(): string[] {
    return [...this.membersNow];
  }

  /** The nats-server container (pause it, stop it, read its logs...). */
  get nats(): StartedTestContainer {
    return this.parts.nats;
  }

  /** The Docker network every container of the cluster is on. */
  get network(): StartedNetwork {
    return this.parts.network;
  }

  /** The current peer partition (see partition()), or null. */
  get currentPartition(): readonly (readonly string[])[] | null {
    return this.partitionNow;
  }

  node(id: string): PaxosStoreNode {
    const node = this.parts.nodes.find((n) => n.id === id);
    if (node === undefined) throw new Error(`no node "${id}" (nodes: ${this.nodeIds.join(", ")})`);
    return node;
  }

  /** The NATS URL clients on the host use: nats://<host>:<mapped port>. */
  getNatsUrl(): string {
    return `nats://${this.parts.nats.getHost()}:${this.parts.nats.getMappedPort(NATS_CLIENT_PORT)}`;
  }

  /** nats-server's monitoring endpoint (http://<host>:<mapped port>, e.g. + "/connz"). */
  getMonitoringUrl(): string {
    return `http://${this.parts.nats.getHost()}:${this.parts.nats.getMappedPort(NATS_MONITOR_PORT)}`;
  }

  /** The NATS URL other containers on the cluster's network use (your app under test, say). */
  getInternalNatsUrl(): string {
    return `nats://${NATS_ALIAS}:${NATS_CLIENT_PORT}`;
  }

  /** `members` is `memberIds`: see PaxosStoreConnectionOptions.members before you pass it to connect(). */
  getConnectionOptions(): PaxosStoreConnectionOptions {
    return { servers: this.getNatsUrl(), cluster: this.cluster, prefix: this.prefix, members: this.memberIds };
  }

  /**
   * A connected PaxosStore client (with failover across the nodes). It learns the members from
   * a node's `status` and follows membership changes (the epoch in `status`, `not_replica`
   * answers). Options override the defaults, e.g. `{ node: "n1" }` to send every call to n1
   * alone, `{ timeoutMs: 2000 }`, `{ members: [...] }` to route by a fixed list. stop() closes
   * it; you may close it earlier.
   */
  async client(options: ConnectOptions = {}): Promise<PaxosStoreClient> {
    const { members: _members, ...rest } = this.getConnectionOptions();
    const c = await connect({ ...rest, name: `paxosstore-testcontainers-${this.cluster}`, ...options });
    this.clients.add(c);
    return c;
  }

  /**
   * Cuts the nodes into groups that cannot exchange Paxos messages, while every node stays
   * connected to NATS and so reachable by clients (it answers, typically `unavailable` or
   * `timeout`, when it lacks a majority). The nodes named in no group are one more group:
   * `partition(["n1"])` isolates n1 from n2 and n3 (which still talk to each other), as does
   * `partition(["n1"], ["n2", "n3"])`; `partition(["n1"], ["n2"])` cuts all three apart.
   * Done by reloading nats-server's config with per-node publish permissions.
   */
  async partition(...groups: (readonly string[])[]): Promise<void> {
    checkPartition(groups, this.nodeIds);
    await this.reloadNats(groups.length === 0 ? null : groups.map((g) => [...g]));
  }

  /** Ends a partition(): every node may reach every other again. */
  async heal(): Promise<void> {
    await this.reloadNats(null);
  }

  // ---- Membership changes (docs/DESIGN.md "Membership changes") ------------------------------

  /**
   * Starts one more node container, to be added to the running cluster: its own NATS user (the
   * nats-server's config is reloaded, as partition() does), its own data volume, the cluster's
   * environment with `PAXOSSTORE_JOIN=1` and `PAXOSSTORE_MEMBERS` = the founding list. Resolves
   * with its handle once it logged its ready line. It is NOT a member yet: `members("add", id)`
   * makes it one. Default id: `n<k>`, k one above the highest `n<k>` this handle ever started
   * (so a removed node's id is not taken again). stop() removes its container and volume.
   * During a partition() the new node is in the group of the nodes named in no group.
   */
  async addNode(id?: string): Promise<PaxosStoreNode> {
    if (this.stopping !== null) throw new Error(`addNode(${id ?? ""}): the cluster is stopping or stopped`);
    const nodeId = id ?? this.nextNodeId();
    if (typeof nodeId !== "string" || !TOKEN.test(nodeId)) throw new Error(`addNode: "${String(nodeId)}" is not a node id: letters, digits, "_" and "-" only (1 to 64)`);
    if (nodeId === NATS_ALIAS) throw new Error(`addNode: "${NATS_ALIAS}" is the nats-server's name on the network; pick another node id`);
    if (this.parts.nodes.some((n) => n.id === nodeId)) throw new Error(`addNode: node id "${nodeId}" is taken (nodes: ${this.nodeIds.join(", ")})`);
    if (this.adding.has(nodeId)) throw new Error(`addNode: node "${nodeId}" is being added already`);
    const adding = this.startAddedNode(nodeId);
    this.adding.set(nodeId, adding);
    try {
      return await adding;
    } finally {
      this.adding.delete(nodeId);
    }
  }

  private nextNodeId(): string {
    let k = 0;
    for (const id of [...this.nodeIds, ...this.adding.keys()]) {
      const m = /^n(\d+)$/.exec(id);
      if (m !== null) k = Math.max(k, Number(m[1]));
    }
    return `n${k + 1}`;
  }

  private async startAddedNode(nodeId: string): Promise<PaxosStoreNode> {
    const { client, template, nodeUsers, volumes, nodes } = this.parts;
    const user = natsUser(nodeId);
    const volume = template.volumeName(nodeId);
    let volumeMade = false;
    nodeUsers.push(user);
    try {
      // Its NATS user first: the node connects as soon as its container runs.
      await this.reloadNats("current");
      await client.container.dockerode.createVolume({ Name: volume, Labels: { ...template.labels, "org.paxosstore.node": nodeId } });
      volumeMade = true;
      volumes.push(volume);
      const spec = nodeSpec(template, user, volume, { PAXOSSTORE_JOIN: "1" });
      // On failure testcontainers removes the container that did not get ready.
      const container = await startNodeContainer(spec);
      const node = new PaxosStoreNode(spec, container, client);
      nodes.push(node);
      return node;
    } catch (e) {
      const at = nodeUsers.indexOf(user);
      if (at >= 0) nodeUsers.splice(at, 1); // gone from the config at the next reload
      if (volumeMade) {
        await client.container.dockerode.getVolume(volume).remove({ force: true }).catch(() => undefined);
        const v = volumes.indexOf(volume);
        if (v >= 0) volumes.splice(v, 1);
      }
      throw new Error(`addNode(${nodeId}): ${(e as Error).message}`, { cause: e });
    }
  }

  /**
   * Runs one membership change and follows it to its end, as `paxosstore members <action>
   * --wait` does: the admin op `{op: "members", action, node, with}` on `<prefix>.admin`, then
   * `advance` every `pollMs` until the membership log's phase is `stable` again. Resolves with
   * the last answer (the view at the new epoch, each node's report). `add` and `replace` need
   * a node this handle started (addNode()); `replace` needs `withNode`, the replacement.
   * Throws, saying what the change was waiting for, when it is refused (a bad node, a change
   * already under way) or not stable within `timeoutMs`; then advanceMembers() may finish it.
   * An answer lost on the way is looked up (`show`), not blindly retried.
   */
  async members(action: MembersAction, node: string, withNode?: string, options: MembersChangeOptions = {}): Promise<MembersAdminResult> {
    const what = `members(${[action, node, ...(withNode === undefined ? [] : [withNode])].map((x) => JSON.stringify(x)).join(", ")})`;
    this.checkNotStopping(what);
    if (action !== "add" && action !== "remove" && action !== "replace") throw new Error(`${what}: the action is "add", "remove" or "replace"`);
    for (const id of [node, ...(withNode === undefined ? [] : [withNode])]) {
      if (typeof id !== "string" || !TOKEN.test(id)) throw new Error(`${what}: "${String(id)}" is not a node id: letters, digits, "_" and "-" only (1 to 64)`);
    }
    if (action === "replace" && withNode === undefined) throw new Error(`${what}: replace needs the replacement node (withNode)`);
    if (action !== "replace" && withNode !== undefined) throw new Error(`${what}: only replace takes a second node`);
    const joining = action === "add" ? node : action === "replace" ? withNode! : null;
    if (joining !== null) {
      const handle = this.parts.nodes.find((n) => n.id === joining);
      if (handle === undefined) throw new Error(`${what}: this cluster has no node "${joining}": start it first with addNode(${JSON.stringify(joining)}) (nodes: ${this.nodeIds.join(", ")})`);
      if (handle.state === "removed") throw new Error(`${what}: node "${joining}"'s container was removed`);
    }
    if (withNode === node) throw new Error(`${what}: a node cannot replace itself`);
    const { timeoutMs, pollMs } = waitOptions(what, options);
    const deadline = Date.now() + timeoutMs;

    // The view first: its members say whether the change makes sense, and its version tells
    // an attempt whose answer was lost from one that did not happen.
    const before = await this.showUntil(what, deadline);
    const view = before.view;
    if (view.phase !== "stable") throw new Error(`${what}: a change to epoch ${view.epoch} is under way (${view.phase}, waiting for ${before.waitingFor ?? "nothing"}): finish it first (advanceMembers())`);
    let target: string[];
    if (action === "add") {
      if (view.members.includes(node)) throw new Error(`${what}: ${node} is a member already (members: ${view.members.join(", ")})`);
      target = [...view.members, node];
    } else {
      if (!view.members.includes(node)) throw new Error(`${what}: ${node} is not a member (members: ${view.members.join(", ")})`);
      if (action === "remove") {
        if (view.members.length === 1) throw new Error(`${what}: the last member cannot be removed`);
        target = view.members.filter((m) => m !== node);
      } else {
        if (view.members.includes(withNode!)) throw new Error(`${what}: ${withNode} is a member already (members: ${view.members.join(", ")})`);
        target = view.members.map((m) => (m === node ? withNode! : m));
      }
    }

    const body = { action, node, ...(withNode === undefined ? {} : { with: withNode }) };
    let started: MembersAdminResult | null = null;
    let problem = "";
    while (started === null) {
      this.checkNotStopping(what);
      if (Date.now() > deadline) throw new Error(`${what}: not started within ${timeoutMs} ms (last: ${problem})`);
      const a = await this.adminOnce(body, deadline);
      if (a.kind === "ok") {
        started = a.reply;
        break;
      }
      if (a.kind === "error" && a.code === "bad_request") throw new Error(`${what}: refused: ${a.message}`);
      problem = a.kind === "error" ? `${a.code}: ${a.message}` : a.message;
      // Did it happen anyway (the answer was lost; or this is a retry that met its own change)?
      const now = await this.showUntil(what, deadline);
      if (now.view.version !== view.version) {
        if (now.view.epoch === view.epoch + 1 && sameSet(now.view.members, target)) started = now;
        else throw new Error(`${what}: the membership changed meanwhile (now epoch ${now.view.epoch} ${now.view.phase}: ${now.view.members.join(", ")}); last error ${problem}`);
      } else {
        await sleep(pollMs);
      }
    }
    return this.followToStable(what, started, deadline, timeoutMs, pollMs, options.onProgress);
  }

  /**
   * Follows a membership change under way to its end (`advance` until `stable`), e.g. after
   * members() gave up; resolves at once with the view when none is under way.
   */
  async advanceMembers(options: MembersChangeOptions = {}): Promise<MembersAdminResult> {
    const what = "advanceMembers()";
    this.checkNotStopping(what);
    const { timeoutMs, pollMs } = waitOptions(what, options);
    const deadline = Date.now() + timeoutMs;
    return this.followToStable(what, await this.showUntil(what, deadline), deadline, timeoutMs, pollMs, options.onProgress);
  }

  /**
   * The membership log's current value (`{op: "members", action: "show"}`): the view (epoch,
   * members, previous, phase, version), each node's report (its `status`.membership, null if it
   * did not answer), the groups moved and left, and what a change under way waits for.
   */
  async membership(options: { readonly timeoutMs?: number } = {}): Promise<MembersAdminResult> {
    const what = "membership()";
    this.checkNotStopping(what);
    const { timeoutMs } = waitOptions(what, { timeoutMs: options.timeoutMs ?? 30_000 });
    return this.showUntil(what, Date.now() + timeoutMs);
  }

  private async followToStable(what: string, first: MembersAdminResult, deadline: number, timeoutMs: number, pollMs: number, onProgress?: (r: MembersAdminResult) => void): Promise<MembersAdminResult> {
    let last = first;
    let problem: string | null = null;
    onProgress?.(last);
    while (last.view.phase !== "stable") {
      this.checkNotStopping(what);
      if (Date.now() + pollMs > deadline) {
        const v = last.view;
        throw new Error(
          `${what}: not stable within ${timeoutMs} ms: epoch ${v.epoch} ${v.phase} (members ${v.members.join(", ")}${v.previous.length > 0 ? ` from ${v.previous.join(", ")}` : ""}), ` +
            `waiting for ${last.waitingFor ?? "?"}; groups left ${last.left}${problem === null ? "" : `; last error ${problem}`}. advanceMembers() follows it further`,
        );
      }
      await sleep(pollMs);
      const a = await this.adminOnce({ action: "advance" }, deadline);
      if (a.kind === "ok") {
        last = a.reply;
        problem = null;
        onProgress?.(last);
      } else if (a.kind === "error" && a.code === "bad_request") {
        throw new Error(`${what}: advance refused: ${a.message}`);
      } else {
        problem = a.kind === "error" ? `${a.code}: ${a.message}` : a.message; // a step raced, a slow answer: ask again
      }
    }
    return last;
  }

  private checkNotStopping(what: string): void {
    if (this.stopping !== null) throw new Error(`${what}: the cluster is stopping or stopped`);
  }

  /** `show`, asked again on errors until the deadline. */
  private async showUntil(what: string, deadline: number): Promise<MembersAdminResult> {
    for (;;) {
      this.checkNotStopping(what);
      const a = await this.adminOnce({ action: "show" }, deadline);
      if (a.kind === "ok") return a.reply;
      const problem = a.kind === "error" ? `${a.code}: ${a.message}` : a.message;
      if (a.kind === "error" && a.code === "bad_request") throw new Error(`${what}: show refused: ${problem}`);
      if (Date.now() + 500 > deadline) throw new Error(`${what}: the members admin op did not answer in time (last: ${problem})`);
      await sleep(500);
    }
  }

  /** One members admin request on `<prefix>.admin` (any node answers). Never throws. */
  private async adminOnce(body: Record<string, unknown>, deadline: number): Promise<AdminAnswer> {
    const timeout = Math.max(1_000, Math.min(15_000, deadline - Date.now()));
    try {
      const nc = await this.adminConnection();
      const m = await nc.request(`${this.prefix}.admin`, new TextEncoder().encode(JSON.stringify({ op: "members", ...body })), { timeout });
      const answer = JSON.parse(new TextDecoder().decode(m.data)) as { ok?: boolean; error?: { code?: unknown; message?: unknown } } & Partial<MembersAdminResult>;
      if (answer.ok !== true) return { kind: "error", code: String(answer.error?.code ?? "internal"), message: String(answer.error?.message ?? JSON.stringify(answer)) };
      const { ok: _ok, ...reply } = answer;
      const result = reply as MembersAdminResult;
      // The membership log's versions only grow: an older view does not undo a newer one.
      if (result.view.version >= this.membersVersion) {
        this.membersVersion = result.view.version;
        this.membersNow = [...result.view.members];
      }
      return { kind: "ok", reply: result };
    } catch (e) {
      return { kind: "noAnswer", message: `no answer on ${this.prefix}.admin: ${(e as Error).message}` };
    }
  }

  /** The NATS connection of a client of its own (opened on first use; closed by stop()). */
  private async adminConnection(): Promise<NatsConnection> {
    let c = this.adminClient;
    if (c === null) {
      const opening = connect({ ...this.getConnectionOptions(), members: this.parts.founders, name: `paxosstore-testcontainers-${this.cluster}-admin` });
      this.adminClient = c = opening;
      // One that could not open is tried again next time.
      opening.catch(() => {
        if (this.adminClient === opening) this.adminClient = null;
      });
    }
    return (await c).connection;
  }

  /** Rewrites the nats-server's config (the node users, `partition`, or the partition in force: "current") and reloads it. */
  private reloadNats(partition: readonly (readonly string[])[] | null | "current"): Promise<void> {
    // One at a time: a reload is told done by the server's config load time changing.
    const next = this.reloads.then(() => this.reloadNatsNow(partition === "current" ? this.partitionNow : partition));
    this.reloads = next.catch(() => undefined);
    return next;
  }

  private async reloadNatsNow(partition: readonly (readonly string[])[] | null): Promise<void> {
    const before = await this.natsConfigLoadTime();
    await this.parts.nats.copyContentToContainer([{ content: this.parts.natsConfig(partition), target: NATS_CONFIG_PATH }]);
    await this.parts.client.container.getById(this.parts.nats.getId()).kill({ signal: "SIGHUP" });
    const deadline = Date.now() + 10_000;
    for (;;) {
      await sleep(50);
      if ((await this.natsConfigLoadTime()) !== before) break;
      if (Date.now() > deadline) throw new Error("nats-server did not reload its config within 10 s (see its logs: cluster.nats.logs())");
    }
    this.partitionNow = partition;
  }

  private async natsConfigLoadTime(): Promise<string> {
    const res = await fetch(`${this.getMonitoringUrl()}/varz`);
    const varz = (await res.json()) as { config_load_time?: string };
    return varz.config_load_time ?? "";
  }

  /** Closes the clients, removes every container (data is discarded), the volumes and the network. */
  stop(): Promise<void> {
    return (this.stopping ??= (async () => {
      // A node being added ends first (its container and volume are then in the lists).
      await Promise.allSettled([...this.adding.values()]);
      const admin = this.adminClient;
      this.adminClient = null;
      await Promise.allSettled([...this.clients].map((c) => c.close()));
      if (admin !== null) await admin.then((c) => c.close()).catch(() => undefined);
      this.clients.clear();
      await this.parts.cleanup.run();
    })());
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

function natsUser(nodeId: string): NatsNodeUser {
  return { nodeId, user: `node-${nodeId}`, password: randomBytes(12).toString("hex") };
}

function nodeSpec(t: NodeTemplate, user: NatsNodeUser, volume: string, more: Readonly<Record<string, string>>): NodeSpec {
  return {
    nodeId: user.nodeId,
    image: t.image,
    network: t.network,
    alias: user.nodeId,
    volume,
    environment: {
      ...t.environment,
      ...more,
      PAXOSSTORE_NODE_ID: user.nodeId,
      PAXOSSTORE_NODE_NATS_USER: user.user,
      PAXOSSTORE_NODE_NATS_PASS: user.password,
    },
    configJson: t.configJson,
    labels: t.labels,
    startupTimeoutMs: t.startupTimeoutMs,
    logConsumer: t.logConsumer,
  };
}

async function removeVolumes(client: ContainerRuntimeClient, volumes: readonly string[]): Promise<void> {
  const results = await Promise.allSettled(volumes.map((v) => client.container.dockerode.getVolume(v).remove({ force: true })));
  const errors = results.flatMap((r) => (r.status === "rejected" && (r.reason as { statusCode?: number }).statusCode !== 404 ? [r.reason as unknown] : []));
  if (errors.length > 0) throw new AggregateError(errors, `removing volumes: ${errors.map((e) => (e as Error).message).join("; ")}`);
}

function waitOptions(what: string, o: MembersChangeOptions): { timeoutMs: number; pollMs: number } {
  const timeoutMs = o.timeoutMs ?? DEFAULT_MEMBERS_TIMEOUT_MS;
  const pollMs = o.pollMs ?? 500;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new Error(`${what}: timeoutMs must be a positive number, got ${String(timeoutMs)}`);
  if (!Number.isFinite(pollMs) || pollMs < 0) throw new Error(`${what}: pollMs must be a number >= 0, got ${String(pollMs)}`);
  return { timeoutMs, pollMs };
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}

/** Undo steps, run last-in first-out; every step runs even if one fails. Nodes are removed in parallel. */
class Cleanup {
  private readonly steps: (() => Promise<unknown>)[] = [];
  add(step: () => Promise<unknown>): void {
    this.steps.push(step);
  }
  async run(): Promise<void> {
    const errors: unknown[] = [];
    while (this.steps.length > 0) {
      const step = this.steps.pop()!;
      try {
        await step();
      } catch (e) {
        if ((e as { statusCode?: number }).statusCode !== 404) errors.push(e);
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, `cleanup: ${errors.length} step(s) failed: ${errors.map((e) => (e as Error).message).join("; ")}`);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
