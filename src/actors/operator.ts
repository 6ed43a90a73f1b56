// The node's operator-facing side, kept out of node.ts: rate-limited warnings for bad input,
// peer up/down and group catch-up events, and the health endpoint with its numbers.

import type { Logger } from "pino";
import type { NodeId } from "../protocol/ballot.js";
import type { StatusResult } from "../protocol/api.js";
import { backupRoute, diskUsage, healthRoutes, startHttpEndpoint, type HttpEndpoint } from "./health.js";
import type { NatsState } from "./natsConnect.js";
import type { NodeConfig } from "./nodeConfig.js";
import { GroupActivity, PeerWatch } from "./observe.js";
import { RateLimitedLog } from "./rateLimitedLog.js";
import type { TransportStats } from "./transport.js";

export interface HealthInputs {
  readonly nats: NatsState;
  readonly transport: TransportStats;
  readonly api: { readonly requests: number; readonly badRequests: number; readonly badReplySubjects: number };
  groupsActive(): number;
  status(): StatusResult;
  /** A consistent copy of the node's data (backup.ts), for GET /backup. */
  backup?(): AsyncIterable<Uint8Array>;
  /** Extra numbers for /status.json (lost-disk progress, ...). */
  extra?(): Record<string, unknown>;
}

export interface OperatorHooks {
  storageOpen: boolean;
  stopping: boolean;
  readonly activity: GroupActivity;
  badFrame(reason: string): void;
  badReply(reply: string, problem: string): void;
  watchPeers(lastHeard: ReadonlyMap<NodeId, number>): PeerWatch;
  /** Starts the health endpoint when config.httpPort is set; null otherwise. */
  startHttp(inputs: HealthInputs): Promise<HttpEndpoint | null>;
}

export function operatorHooks(config: NodeConfig, log: Logger): OperatorHooks {
  const limited = new RateLimitedLog(log);
  const activity = new GroupActivity(log);
  let peers: PeerWatch | null = null;
  const disk = diskUsage(config.dataDir);
  const hooks: OperatorHooks = {
    storageOpen: false,
    stopping: false,
    activity,
    badFrame: (reason) => void limited.warn("bad_peer_frame", { reason }, "dropped a bad peer frame"),
    badReply: (reply, problem) =>
      void limited.warn("bad_reply_subject", { reply, problem }, `dropped a request whose reply subject ${reply} ${problem}`),
    watchPeers(lastHeard) {
      peers = new PeerWatch(config.members.filter((m) => m !== config.nodeId), lastHeard, log);
      peers.check();
      peers.start();
      return peers;
    },
    async startHttp(inputs) {
      if (config.httpPort === 0) return null;
      const majority = Math.floor(config.members.length / 2) + 1;
      const checks = () => ({
        natsConnected: inputs.nats.connected,
        storageOpen: hooks.storageOpen,
        // This node and enough peers to make a majority of the members.
        peersSeen: 1 + (peers?.seen.length ?? 0) >= majority,
        notStopping: !hooks.stopping,
      });
      const status = async () => ({
        ...inputs.status(),
        ready: Object.values(checks()).every(Boolean),
        checks: checks(),
        nats: { ...inputs.nats, user: config.nats.user ?? null, tls: config.nats.tls !== undefined },
        peersSeen: peers?.seen ?? [],
        groups: { active: inputs.groupsActive(), ...activity.snapshot() },
        peerFrames: { ...inputs.transport },
        requests: { ...inputs.api },
        dataDir: config.dataDir,
        diskBytes: await disk(),
        ...(inputs.extra?.() ?? {}),
      });
      const routes = [healthRoutes({ checks, status })];
      if (inputs.backup !== undefined) routes.push(backupRoute(() => inputs.backup!(), log));
      return startHttpEndpoint(config.httpHost, config.httpPort, routes, log);
    },
  };
  return hooks;
}
