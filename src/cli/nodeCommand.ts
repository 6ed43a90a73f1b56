// `paxosstore node`: runs one node in the foreground until SIGTERM/SIGINT, then stops
// gracefully (stop taking requests, finish calls in flight, flush storage, close).
//
// Output is JSON log lines (pino) on stdout, from the first line to the last. A configuration
// error is also one plain line on stderr and exit code 2 (before the logger exists, the log
// level itself may be what is wrong; after it, a data directory of another node, or a
// setting that differs from the peers'): stderr carries nothing else.
// Exit codes: 0 stopped cleanly, 1 failed (storage, NATS unreachable after natsWaitMs),
// 2 bad configuration (also a data directory of another node, or a setting that differs from
// the peers'), 6 NATS refused the node's credentials (do not restart in a loop).

import type { Command } from "commander";
import pino from "pino";
import { IdentityError } from "../actors/identity.js";
import { breaksFromEnv } from "../actors/testHooks.js";
import { ConfigError, describeSettings, flagOption, loadNodeConfig, SETTINGS, settingsHelp } from "../actors/nodeConfig.js";
import { VERSION } from "../version.js";

export const NODE_EXIT = { ok: 0, failed: 1, config: 2, unauthorized: 6 } as const;

export function registerNodeCommand(program: Command): void {
  const cmd = program
    .command("node")
    .description("run one node of a cluster (config from --config FILE, PAXOSSTORE_* env vars and flags)")
    .option("--config <file>", "JSON config file (keys: the file keys below)");
  for (const s of SETTINGS) {
    if (s.flag === null) continue;
    cmd.option(s.kind === "bool" ? s.flag : `${s.flag} <value>`, `${s.help} (${s.env}; default ${s.defaultText})`);
  }
  cmd
    .addHelpText("after", `\n${settingsHelp()}\n\nExit codes: 0 stopped cleanly, 1 failed to start or storage failed, 2 bad configuration, 6 NATS refused the credentials.`)
    // Commander's own usage errors (unknown flag, missing value) are configuration errors too.
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : NODE_EXIT.config))
    .action(async (opts: Record<string, string | boolean | undefined>) => {
      let config;
      try {
        const flags: Record<string, unknown> = {};
        for (const s of SETTINGS) if (s.flag !== null) flags[flagOption(s.flag)] = opts[flagOption(s.flag)];
        config = loadNodeConfig(opts.config as string | undefined, process.env, flags);
        // TEST-ONLY deliberate bugs for `npm run verify` (docs/VERIFY.md); unset in production.
        const breaks = breaksFromEnv(process.env);
        if (breaks !== undefined) config = { ...config, breaks };
      } catch (e) {
        if (e instanceof ConfigError) {
          process.stderr.write(`paxosstore node: ${e.message}\n`);
          process.exit(NODE_EXIT.config);
        }
        throw e;
      }
      const log = pino({ level: config.logLevel, base: { node: config.nodeId } });
      const { settings, ignoredEnv } = describeSettings(config, process.env);
      log.info({ event: "config", version: VERSION, configFile: opts.config ?? null, settings }, "configuration (value and source of each setting)");
      if (ignoredEnv.length > 0) {
        log.warn({ event: "config_ignored_env", ignored: ignoredEnv }, `ignored the CLI's variables ${ignoredEnv.join(", ")}: a node reads PAXOSSTORE_NODE_NATS_* for its own NATS identity`);
      }
      // Loaded here, not at the top: client commands should not pay for the node side.
      const { startNode } = await import("../actors/node.js");
      const { NatsAuthorizationError } = await import("../actors/natsConnect.js");
      let node;
      try {
        node = await startNode(config, { logger: log, onFatal: () => (process.exitCode = NODE_EXIT.failed) });
      } catch (e) {
        log.fatal({ event: "start_failed", err: (e as Error).message }, `cannot start: ${(e as Error).message}`);
        log.flush();
        if (e instanceof IdentityError) {
          // A data directory that is not this node's (wrong mount), or a setting that differs
          // from the peers': a configuration error, told like the others (one line, exit 2).
          process.stderr.write(`paxosstore node: ${(e as Error).message}\n`);
          process.exit(NODE_EXIT.config);
        }
        process.exit(e instanceof NatsAuthorizationError ? NODE_EXIT.unauthorized : NODE_EXIT.failed);
      }
      const shutdown = (signal: string): void => {
        log.info({ event: "shutdown", phase: "signal", signal }, `${signal}: stopping`);
        void node.stop();
      };
      process.once("SIGTERM", () => shutdown("SIGTERM"));
      process.once("SIGINT", () => shutdown("SIGINT"));
      await node.stopped;
      log.flush();
      process.exit(process.exitCode ?? NODE_EXIT.ok);
    });
}
