// `paxosstore node`: runs one node in the foreground until SIGTERM/SIGINT, then stops
// gracefully (stop taking requests, finish calls in flight, flush storage, close).

import type { Command } from "commander";
import { IdentityError } from "../actors/identity.js";
import { ConfigError, loadNodeConfig } from "../actors/nodeConfig.js";
import { breaksFromEnv } from "../actors/testHooks.js";

export function registerNodeCommand(program: Command): void {
  program
    .command("node")
    .description("run one node of a cluster (config from --config FILE, PAXOSSTORE_* env vars and flags)")
    .option("--config <file>", "JSON config file")
    .option("--node-id <id>", "this node's id (PAXOSSTORE_NODE_ID)")
    .option("--cluster <name>", "cluster name (PAXOSSTORE_CLUSTER, default dev)")
    .option("--members <ids>", "comma-separated node ids of every member (PAXOSSTORE_MEMBERS)")
    .option("--nats <urls>", "comma-separated NATS server URLs (PAXOSSTORE_NATS, default nats://127.0.0.1:4222)")
    .option("--data-dir <dir>", "LevelDB directory (PAXOSSTORE_DATA_DIR, default ./.data/<node-id>)")
    .option("--user <user>", "NATS user (PAXOSSTORE_NATS_USER)")
    .option("--pass <pass>", "NATS password (PAXOSSTORE_NATS_PASS)")
    .option("--token <token>", "NATS token (PAXOSSTORE_NATS_TOKEN)")
    .option("--creds <file>", "NATS .creds file (PAXOSSTORE_NATS_CREDS)")
    .option("--nkey <file>", "NATS nkey seed file (PAXOSSTORE_NATS_NKEY)")
    .option("--tls-ca <file>", "CA for the NATS TLS connection")
    .option("--tls-cert <file>", "client certificate for NATS TLS")
    .option("--tls-key <file>", "client key for NATS TLS")
    .option("--log-level <level>", "fatal|error|warn|info|debug (PAXOSSTORE_LOG_LEVEL, default info)")
    .option("--request-memory <n>", "request ids each key-group remembers for retries: the at-most-once window, in writes (PAXOSSTORE_REQUEST_MEMORY, default 1024; the SAME on every node)")
    .option("--new-node", "an EMPTY data dir is a brand-new node: do not ask the peers whether they have seen it (PAXOSSTORE_NEW_NODE; never after a lost disk: docs/OPERATIONS.md)")
    .option("--metrics-port <port>", "serve Prometheus metrics at http://<host>:<port>/metrics (PAXOSSTORE_METRICS_PORT, default 0 = off)")
    .option("--max-active-groups <n>", "key-groups held in memory at most; least recently used idle ones are passivated first (PAXOSSTORE_MAX_ACTIVE_GROUPS, default 50000)")
    .action(async (opts: Record<string, string | boolean | undefined>) => {
      let config;
      try {
        config = loadNodeConfig(opts.config as string | undefined, process.env, {
          nodeId: opts.nodeId,
          cluster: opts.cluster,
          members: opts.members,
          nats: opts.nats,
          dataDir: opts.dataDir,
          user: opts.user,
          pass: opts.pass,
          token: opts.token,
          creds: opts.creds,
          nkey: opts.nkey,
          tlsCa: opts.tlsCa,
          tlsCert: opts.tlsCert,
          tlsKey: opts.tlsKey,
          logLevel: opts.logLevel,
          newNode: opts.newNode,
          requestMemory: opts.requestMemory,
          ...capacityFlags(opts),
        });
        // TEST-ONLY deliberate bugs for `npm run verify` (docs/VERIFY.md); unset in production.
        const breaks = breaksFromEnv(process.env);
        if (breaks !== undefined) config = { ...config, breaks };
      } catch (e) {
        if (e instanceof ConfigError) {
          console.error(`paxosstore node: ${e.message}`);
          process.exit(2);
        }
        throw e;
      }
      // Loaded here, not at the top: client commands should not pay for the node side.
      const { startNode } = await import("../actors/node.js");
      let node;
      try {
        node = await startNode(config, { onFatal: () => (process.exitCode = 1) });
      } catch (e) {
        console.error(`paxosstore node ${config.nodeId}: cannot start: ${(e as Error).message}`);
        // A data directory that is not this node's (wrong mount) is a configuration error.
        process.exit(e instanceof IdentityError ? 2 : 1);
      }
      const shutdown = (signal: string): void => {
        console.error(`paxosstore node ${config.nodeId}: ${signal}: stopping`);
        void node.stop();
      };
      process.once("SIGTERM", () => shutdown("SIGTERM"));
      process.once("SIGINT", () => shutdown("SIGINT"));
      await node.stopped;
      process.exit(process.exitCode ?? 0);
    });
}

/** Metrics and memory-bound flags (issue 11). */
function capacityFlags(opts: Record<string, string | boolean | undefined>): Record<string, string | undefined> {
  return { metricsPort: opts.metricsPort as string | undefined, maxActiveGroups: opts.maxActiveGroups as string | undefined };
}
