// A node's NATS connection: options from the config, the first connect with retries (a
// service started before NATS waits for it instead of exiting at once), and the connection's
// events as log lines an operator can alert on.

import { readFileSync } from "node:fs";
import { connect, credsAuthenticator, errors as natsErrors, nkeyAuthenticator, type ConnectionOptions, type NatsConnection, type Status } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { NatsOptions } from "./nodeConfig.js";

export function natsConnectionOptions(nats: NatsOptions, name: string): ConnectionOptions {
  const opts: ConnectionOptions = {
    servers: [...nats.servers],
    name,
    noAsyncTraces: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    pingInterval: 5_000,
  };
  if (nats.user !== undefined) Object.assign(opts, { user: nats.user, pass: nats.pass });
  if (nats.token !== undefined) opts.token = nats.token;
  if (nats.credsFile !== undefined) opts.authenticator = credsAuthenticator(readFileSync(nats.credsFile));
  else if (nats.nkeySeedFile !== undefined) opts.authenticator = nkeyAuthenticator(new TextEncoder().encode(readFileSync(nats.nkeySeedFile, "utf8").trim()));
  if (nats.tls !== undefined) opts.tls = { caFile: nats.tls.caFile, certFile: nats.tls.certFile, keyFile: nats.tls.keyFile };
  if (nats.inboxPrefix !== undefined) opts.inboxPrefix = nats.inboxPrefix;
  return opts;
}

/** NATS refused who we are: retrying cannot help. */
export class NatsAuthorizationError extends Error {
  readonly code = "NATS_UNAUTHORIZED";
}

export function isAuthorizationFailure(e: unknown): boolean {
  for (let x: unknown = e, depth = 0; x instanceof Error && depth < 5; x = x.cause, depth++) {
    if (x instanceof natsErrors.AuthorizationError || x instanceof natsErrors.UserAuthenticationExpiredError) return true;
    if (/authorization violation|authentication/i.test(x.message)) return true;
  }
  return false;
}

export interface ConnectRetry {
  /** Keep trying this long after the first failure (0: one attempt). */
  readonly waitMs: number;
  /** First pause between attempts; doubles up to `backoffMaxMs`. */
  readonly backoffMs?: number;
  readonly backoffMaxMs?: number;
  /** Stop early (the node is being stopped). */
  readonly cancelled?: () => boolean;
}

/**
 * Connects, retrying with backoff while NATS cannot be reached (one warn line per attempt),
 * up to `retry.waitMs`. An authorization failure is not retried: it throws
 * NatsAuthorizationError at once (credentials do not get better by waiting).
 */
export async function connectWithRetry(options: ConnectionOptions, retry: ConnectRetry, log: Logger): Promise<NatsConnection> {
  const startedAt = Date.now();
  let pause = retry.backoffMs ?? 250;
  for (let attempt = 1; ; attempt++) {
    try {
      const nc = await connect(options);
      if (attempt > 1) log.info({ event: "nats_connected", attempt, server: nc.getServer() }, "connected to NATS");
      return nc;
    } catch (e) {
      const message = (e as Error).message;
      if (isAuthorizationFailure(e)) throw new NatsAuthorizationError(`NATS refused this node's credentials: ${message}`, { cause: e });
      const waited = Date.now() - startedAt;
      if (waited + pause > retry.waitMs || retry.cancelled?.() === true) {
        throw new Error(`cannot connect to NATS at ${String(options.servers)} (${attempt} attempt${attempt === 1 ? "" : "s"} in ${waited} ms): ${message}`, { cause: e });
      }
      log.warn({ event: "nats_connect_retry", attempt, retryInMs: pause, waitedMs: waited, waitMs: retry.waitMs, servers: options.servers, err: message }, "NATS is not reachable yet: retrying");
      await new Promise((r) => setTimeout(r, pause));
      pause = Math.min(pause * 2, retry.backoffMaxMs ?? 5_000);
    }
  }
}

/** Connection state for health checks, kept up to date from the connection's events. */
export interface NatsState {
  connected: boolean;
  server: string | null;
  disconnects: number;
  reconnects: number;
  lastChangeAt: number;
}

/** Logs the connection's events (disconnect, reconnect, server errors, slow consumer) and tracks its state. */
export function watchNats(nc: NatsConnection, log: Logger): NatsState {
  const state: NatsState = { connected: true, server: nc.getServer(), disconnects: 0, reconnects: 0, lastChangeAt: Date.now() };
  void (async () => {
    for await (const s of nc.status() as AsyncIterable<Status>) {
      switch (s.type) {
        case "disconnect":
          state.connected = false;
          state.disconnects++;
          state.lastChangeAt = Date.now();
          log.warn({ event: "nats_disconnect", server: s.server }, "disconnected from NATS: reconnecting");
          break;
        case "reconnect":
          state.connected = true;
          state.server = s.server;
          state.reconnects++;
          state.lastChangeAt = Date.now();
          log.info({ event: "nats_reconnect", server: s.server }, "reconnected to NATS");
          break;
        case "error":
          log.error({ event: "nats_error", err: s.error.message }, "NATS server error");
          break;
        case "ldm":
          log.warn({ event: "nats_lame_duck", server: s.server }, "the NATS server is going away (lame duck mode)");
          break;
        case "slowConsumer":
          log.warn({ event: "nats_slow_consumer", pending: s.pending }, "slow consumer: NATS may drop messages to this node");
          break;
        case "close":
          state.connected = false;
          state.lastChangeAt = Date.now();
          break;
        default:
          break;
      }
    }
  })().catch(() => undefined);
  return state;
}
