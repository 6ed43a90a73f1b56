// One PaxosStore node of a test cluster: its container, its data volume, and the faults a test
// may inject (stop/start with its data, kill -9, pause, network disconnect, a new container on
// the same data).

import type { Readable } from "node:stream";
import {
  BoundPorts,
  Wait,
  type ContainerRuntimeClient,
  type StartedNetwork,
  type StartedTestContainer,
} from "testcontainers";
import { NetworkedContainer } from "./container.js";

/** The ready line a node logs once it takes requests (src/actors/node.ts). */
export function readyMessage(nodeId: string): RegExp {
  return new RegExp(`paxosstore node ${nodeId.replace(/[^A-Za-z0-9_-]/g, "")} ready`);
}

/** Where the node keeps its LevelDB data inside the container (the data volume's mount point). */
export const DATA_DIR = "/data";
export const NODE_CONFIG_PATH = "/etc/paxosstore/node.json";

/** Everything needed to (re)create a node's container. */
export interface NodeSpec {
  readonly nodeId: string;
  readonly image: string;
  readonly network: StartedNetwork;
  /** Network alias (the node id): other containers reach it by this name. */
  readonly alias: string;
  readonly volume: string;
  readonly environment: Record<string, string>;
  /** JSON config file content (timing etc.), or null. */
  readonly configJson: string | null;
  readonly labels: Record<string, string>;
  readonly startupTimeoutMs: number;
  readonly logConsumer: ((nodeId: string, line: string) => void) | null;
}

export type NodeState = "running" | "paused" | "stopped" | "removed";

export interface NodeStopOptions {
  /** Seconds docker waits after SIGTERM before SIGKILL. Default 15 (a node stops in well under a second). */
  readonly timeoutSeconds?: number;
}

export class PaxosStoreNode {
  private current: StartedTestContainer;
  private stateNow: NodeState = "running";
  private disconnected = false;
  private logStream: Readable | null = null;

  /** @internal Use PaxosStoreCluster.start(). */
  constructor(
    private readonly spec: NodeSpec,
    container: StartedTestContainer,
    private readonly client: ContainerRuntimeClient,
  ) {
    this.current = container;
    void this.followLogs();
  }

  /** The node id (also its hostname on the cluster's network). */
  get id(): string {
    return this.spec.nodeId;
  }

  /** The name other containers on the cluster's network reach this node by. */
  get hostname(): string {
    return this.spec.alias;
  }

  /** The Docker volume holding the node's data (mounted at /data); it outlives the container. */
  get volume(): string {
    return this.spec.volume;
  }

  get image(): string {
    return this.spec.image;
  }

  /**
   * The node's current container (testcontainers' handle: exec, logs, getId, ...). `recreate()`
   * replaces it. To stop/start/pause it, use this class's methods, which keep track of state.
   */
  get container(): StartedTestContainer {
    return this.current;
  }

  get containerId(): string {
    return this.current.getId();
  }

  /** What this handle last did to the container. */
  get state(): NodeState {
    return this.stateNow;
  }

  get isDisconnected(): boolean {
    return this.disconnected;
  }

  private docker() {
    return this.client.container.getById(this.current.getId());
  }

  /** Graceful stop: SIGTERM (the node finishes calls in flight and flushes), then docker waits. The container and its data stay. */
  async stop(options: NodeStopOptions = {}): Promise<void> {
    if (this.stateNow === "paused") await this.unpause();
    if (this.stateNow !== "running") return;
    await this.docker().stop({ t: options.timeoutSeconds ?? 15 }).catch(ignoreNotModified);
    this.stateNow = "stopped";
  }

  /** A crash: SIGKILL (or `signal`) to the node process. With SIGKILL the container stops; its data stays. */
  async kill(signal = "SIGKILL"): Promise<void> {
    if (this.stateNow === "paused") await this.unpause();
    if (this.stateNow !== "running") return;
    await this.docker().kill({ signal });
    if (signal === "SIGKILL" || signal === "KILL" || signal === "9") {
      await this.docker().wait().catch(() => undefined);
      this.stateNow = "stopped";
    }
  }

  /** Starts the stopped container again (same data, same network name) and waits for its ready line. */
  async start(): Promise<void> {
    if (this.stateNow === "running") return;
    if (this.stateNow === "paused") return this.unpause();
    if (this.stateNow === "removed") throw new Error(`node ${this.id}: its container was removed`);
    const startedAt = new Date();
    await this.docker().start();
    this.stateNow = "running";
    await this.waitReady(startedAt);
    void this.followLogs(startedAt);
  }

  /** Graceful stop, then start. */
  async restart(options: NodeStopOptions = {}): Promise<void> {
    await this.stop(options);
    await this.start();
  }

  /** docker pause: the node's process is frozen (its NATS connection stays open, nothing answers). */
  async pause(): Promise<void> {
    if (this.stateNow !== "running") throw new Error(`node ${this.id}: cannot pause a ${this.stateNow} container`);
    await this.docker().pause();
    this.stateNow = "paused";
  }

  async unpause(): Promise<void> {
    if (this.stateNow !== "paused") return;
    await this.docker().unpause();
    this.stateNow = "running";
  }

  /**
   * Disconnects the container from the cluster's network: it loses NATS (so its peers AND the
   * clients), as a machine whose cable is pulled. Its NATS client notices by missed pings and
   * reconnects after connect().
   */
  async disconnect(): Promise<void> {
    if (this.disconnected) return;
    await this.client.network.getById(this.spec.network.getId()).disconnect({ Container: this.current.getId(), Force: true });
    this.disconnected = true;
  }

  /** Reconnects the container to the cluster's network, under its name. */
  async connect(): Promise<void> {
    if (!this.disconnected) return;
    await this.client.network.getById(this.spec.network.getId()).connect({
      Container: this.current.getId(),
      EndpointConfig: { Aliases: [this.spec.alias] },
    });
    this.disconnected = false;
  }

  /**
   * Replaces the container by a new one on the same data volume (optionally another image: an
   * upgrade test). The old container is stopped gracefully and removed.
   */
  async recreate(options: { readonly image?: string } & NodeStopOptions = {}): Promise<void> {
    await this.stop(options);
    await this.remove();
    if (options.image !== undefined) (this.spec as { image: string }).image = options.image;
    this.current = await startNodeContainer(this.spec);
    this.stateNow = "running";
    this.disconnected = false;
    void this.followLogs();
  }

  /** The container's whole log (stdout and stderr) so far, across its restarts. */
  async logs(options: { readonly tail?: number } = {}): Promise<string> {
    const out = await this.docker().logs({ stdout: true, stderr: true, follow: false, tail: options.tail ?? "all" } as never);
    return demux(out as unknown as Buffer);
  }

  /** @internal Removes the container (and follows no more logs). Its volume stays. */
  async remove(): Promise<void> {
    if (this.stateNow === "removed") return;
    this.logStream?.destroy();
    this.logStream = null;
    if (this.stateNow === "paused") await this.docker().unpause().catch(() => undefined);
    await this.docker().remove({ force: true, v: true }).catch(ignoreNotFound);
    this.stateNow = "removed";
  }

  private async waitReady(startedAt: Date): Promise<void> {
    const strategy = Wait.forLogMessage(readyMessage(this.id)).withStartupTimeout(this.spec.startupTimeoutMs);
    try {
      await strategy.waitUntilReady(this.docker(), new BoundPorts(), startedAt);
    } catch (e) {
      const tail = await this.logs({ tail: 30 }).catch(() => "(no logs)");
      throw new Error(`node ${this.id} did not log "${readyMessage(this.id).source}" after starting again: ${(e as Error).message}\n--- last log lines ---\n${tail}`);
    }
  }

  private async followLogs(since?: Date): Promise<void> {
    const consumer = this.spec.logConsumer;
    if (consumer === null) return;
    this.logStream?.destroy();
    try {
      const stream = await this.client.container.logs(this.docker(), { since: since === undefined ? 0 : since.getTime() / 1000 });
      this.logStream = stream;
      let rest = "";
      stream.on("data", (chunk: Buffer | string) => {
        rest += chunk.toString();
        const lines = rest.split("\n");
        rest = lines.pop() ?? "";
        for (const line of lines) if (line.length > 0) consumer(this.id, line);
      });
      stream.on("error", () => undefined);
    } catch {
      // Logs are a convenience; the node works without them.
    }
  }
}

/** Creates and starts a node's container from its spec, waiting for its ready line. */
export async function startNodeContainer(spec: NodeSpec): Promise<StartedTestContainer> {
  const environment: Record<string, string> = {
    PAXOSSTORE_DATA_DIR: DATA_DIR,
    ...spec.environment,
  };
  let container = new NetworkedContainer(spec.image)
    .onNetwork(spec.network, spec.alias)
    .withEnvironment(environment)
    .withBindMounts([{ source: spec.volume, target: DATA_DIR, mode: "rw" }])
    .withLabels({ ...spec.labels, "org.paxosstore.node": spec.nodeId })
    .withStartupTimeout(spec.startupTimeoutMs)
    .withWaitStrategy(Wait.forLogMessage(readyMessage(spec.nodeId)));
  if (spec.configJson !== null) {
    container = container
      .withCopyContentToContainer([{ content: spec.configJson, target: NODE_CONFIG_PATH }])
      .withCommand(["--config", NODE_CONFIG_PATH]);
  }
  try {
    return await container.start();
  } catch (e) {
    throw new Error(`node ${spec.nodeId} (image ${spec.image}) did not start: ${(e as Error).message}`, { cause: e });
  }
}

/** Docker multiplexes stdout and stderr in one stream with 8-byte frame headers (no TTY). */
function demux(buffer: Buffer | string): string {
  if (typeof buffer === "string") return buffer;
  const parts: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buffer.length) {
    const size = buffer.readUInt32BE(i + 4);
    parts.push(buffer.subarray(i + 8, i + 8 + size));
    i += 8 + size;
  }
  return Buffer.concat(parts).toString("utf8");
}

function ignoreNotModified(e: unknown): void {
  if ((e as { statusCode?: number }).statusCode === 304) return;
  throw e;
}

function ignoreNotFound(e: unknown): void {
  if ((e as { statusCode?: number }).statusCode === 404) return;
  throw e;
}
