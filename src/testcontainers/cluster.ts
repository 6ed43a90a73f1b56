// A PaxosStore cluster in containers, for tests: a nats-server and N nodes (3 by default) on
// one user-defined Docker network, each node with its own data volume.
//
//   const cluster = await new PaxosStoreCluster().start();
//   const store = await cluster.client();          // a connected PaxosStoreClient
//   await store.put("greeting", "hello");
//   await cluster.node("n1").pause();              // faults: pause, stop/start, kill, disconnect
//   await cluster.partition(["n1"], ["n2", "n3"]); // n1 cut from its peers, still reachable
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

      const nodeUsers: NatsNodeUser[] = nodeIds.map((nodeId) => ({ nodeId, user: `node-${nodeId}`, password: randomBytes(12).toString("hex") }));
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

      const specs: NodeSpec[] = [];
      for (const user of nodeUsers) {
        const volume = `paxosstore-${cluster}-${user.nodeId}-${run}`;
        await client.container.dockerode.createVolume({ Name: volume, Labels: { ...labels, "org.paxosstore.node": user.nodeId } });
        cleanup.add(() => client.container.dockerode.getVolume(volume).remove({ force: true }));
        specs.push({
          nodeId: user.nodeId,
          image: o.nodeImage ?? DEFAULT_NODE_IMAGE,
          network,
          alias: user.nodeId,
          volume,
          environment: {
            ...o.environment,
            PAXOSSTORE_NODE_ID: user.nodeId,
            PAXOSSTORE_CLUSTER: cluster,
            PAXOSSTORE_MEMBERS: nodeIds.join(","),
            PAXOSSTORE_NATS: `nats://${NATS_ALIAS}:${NATS_CLIENT_PORT}`,
            PAXOSSTORE_NODE_NATS_USER: user.user,
            PAXOSSTORE_NODE_NATS_PASS: user.password,
            PAXOSSTORE_LOG_LEVEL: o.logLevel ?? "info",
          },
          configJson: o.nodeConfig === undefined ? null : JSON.stringify(o.nodeConfig),
          labels,
          startupTimeoutMs,
          logConsumer: o.logConsumer ?? null,
        });
      }

      const started = await Promise.allSettled(specs.map((spec) => startNodeContainer(spec)));
      const nodes: PaxosStoreNode[] = [];
      for (const [i, r] of started.entries()) {
        if (r.status === "fulfilled") nodes.push(new PaxosStoreNode(specs[i]!, r.value, client));
      }
      // Removed all at once (before their volumes, which are in use until then).
      cleanup.add(() => Promise.all(nodes.map((node) => node.remove())));
      const failed = started.find((r): r is PromiseRejectedResult => r.status === "rejected");
      if (failed !== undefined) throw failed.reason;

      return new StartedPaxosStoreCluster({ client, cluster, prefix, network, nats, nodes, natsConfig, cleanup, ownsNetwork: o.network === undefined });
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
  readonly members: readonly string[];
}

interface StartedParts {
  readonly client: ContainerRuntimeClient;
  readonly cluster: string;
  readonly prefix: string;
  readonly network: StartedNetwork;
  readonly nats: StartedTestContainer;
  readonly nodes: readonly PaxosStoreNode[];
  readonly natsConfig: (partition: readonly (readonly string[])[] | null) => string;
  readonly cleanup: Cleanup;
  readonly ownsNetwork: boolean;
}

export class StartedPaxosStoreCluster {
  private readonly clients = new Set<PaxosStoreClient>();
  private partitionNow: readonly (readonly string[])[] | null = null;
  private stopping: Promise<void> | null = null;

  /** @internal Use PaxosStoreCluster.start(). */
  constructor(private readonly parts: StartedParts) {}

  /** The cluster name. */
  get cluster(): string {
    return this.parts.cluster;
  }

  /** The subject prefix (`paxosstore.<cluster>`). */
  get prefix(): string {
    return this.parts.prefix;
  }

  /** The nodes, in member order. */
  get nodes(): readonly PaxosStoreNode[] {
    return this.parts.nodes;
  }

  get nodeIds(): string[] {
    return this.parts.nodes.map((n) => n.id);
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

  getConnectionOptions(): PaxosStoreConnectionOptions {
    return { servers: this.getNatsUrl(), cluster: this.cluster, prefix: this.prefix, members: this.nodeIds };
  }

  /**
   * A connected PaxosStore client (with failover across the nodes). Options override the
   * defaults, e.g. `{ node: "n1" }` to send every call to n1 alone, `{ timeoutMs: 2000 }`.
   * stop() closes it; you may close it earlier.
   */
  async client(options: ConnectOptions = {}): Promise<PaxosStoreClient> {
    const c = await connect({ ...this.getConnectionOptions(), name: `paxosstore-testcontainers-${this.cluster}`, ...options });
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

  private async reloadNats(partition: readonly (readonly string[])[] | null): Promise<void> {
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
      await Promise.allSettled([...this.clients].map((c) => c.close()));
      this.clients.clear();
      await this.parts.cleanup.run();
    })());
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
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
