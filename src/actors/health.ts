// The node's HTTP health endpoint (off unless httpPort is set):
//   GET /livez        200 while the process serves (the event loop turns)
//   GET /readyz       200 when NATS is connected, storage is open and a majority of the
//                     members (this node included) was heard from; 503 otherwise, with the
//                     failing checks in the JSON body
//   GET /status.json  the numbers `paxosstore status` lacks: NATS connection state, peers
//                     seen, groups catching up or lost, bad frames and requests, disk use
// The routes are a plain request handler (`healthRoutes`), so another endpoint (metrics) can
// share the same listener: call it first and fall through when it returns false.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "pino";

export interface HealthChecks {
  readonly natsConnected: boolean;
  readonly storageOpen: boolean;
  readonly peersSeen: boolean;
  [name: string]: boolean;
}

export interface HealthSource {
  checks(): HealthChecks;
  status(): Promise<Record<string, unknown>> | Record<string, unknown>;
}

/** Handles the health routes; false when the path is not one of them. */
export function healthRoutes(source: HealthSource): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    const url = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") return false;
    if (url === "/livez") {
      send(res, 200, { ok: true });
      return true;
    }
    if (url === "/readyz") {
      const checks = source.checks();
      const ok = Object.values(checks).every(Boolean);
      send(res, ok ? 200 : 503, { ok, checks });
      return true;
    }
    if (url === "/status.json") {
      Promise.resolve(source.status()).then(
        (body) => send(res, 200, body),
        (e: unknown) => send(res, 500, { ok: false, error: (e as Error).message }),
      );
      return true;
    }
    return false;
  };
}

/**
 * GET /backup: a consistent copy of the node's data (backup.ts), streamed. Only to loopback
 * clients: the copy holds every value, and the health port may listen on other addresses.
 */
export function backupRoute(stream: () => AsyncIterable<Uint8Array>, log: Logger): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    if ((req.url ?? "/").split("?")[0] !== "/backup" || req.method !== "GET") return false;
    const from = req.socket.remoteAddress ?? "";
    if (!(from === "127.0.0.1" || from === "::1" || from === "::ffff:127.0.0.1")) {
      send(res, 403, { ok: false, error: "backups are served to loopback clients only: run paxosstore backup on the node's machine" });
      return true;
    }
    res.writeHead(200, { "content-type": "application/octet-stream", "cache-control": "no-store" });
    const startedAt = Date.now();
    let bytes = 0;
    void (async () => {
      try {
        for await (const chunk of stream()) {
          bytes += chunk.length;
          if (!res.write(chunk)) await new Promise((r) => res.once("drain", r));
          if (res.destroyed) return;
        }
        res.end();
        log.info({ event: "backup", bytes, tookMs: Date.now() - startedAt }, "backup streamed");
      } catch (e) {
        log.error({ event: "backup_failed", err: e }, "backup failed");
        res.destroy(e as Error);
      }
    })();
    return true;
  };
}

export interface HttpEndpoint {
  readonly port: number;
  close(): Promise<void>;
}

/** Listens on host:port (port 0 in tests: any free port) with the given routes, 404 for the rest. */
export async function startHttpEndpoint(host: string, port: number, routes: ReadonlyArray<(req: IncomingMessage, res: ServerResponse) => boolean>, log: Logger): Promise<HttpEndpoint> {
  const server: Server = createServer((req, res) => {
    try {
      for (const route of routes) if (route(req, res)) return;
      send(res, 404, { ok: false, error: "not found: try /livez, /readyz, /status.json" });
    } catch (e) {
      send(res, 500, { ok: false, error: (e as Error).message });
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  const bound = typeof address === "object" && address !== null ? address.port : port;
  log.info({ event: "http_listening", host, port: bound }, `health endpoint on http://${host}:${bound}/readyz`);
  return {
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function send(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { "content-type": "application/json", "cache-control": "no-store" });
  res.end(text + "\n");
}

/** Bytes under `dir` (files only, not following links); cached for `maxAgeMs`. */
export function diskUsage(dir: string, maxAgeMs = 5_000): () => Promise<number> {
  let cached: { at: number; bytes: Promise<number> } | null = null;
  const walk = async (d: string): Promise<number> => {
    let total = 0;
    for (const entry of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = path.join(d, entry.name);
      if (entry.isDirectory()) total += await walk(p);
      else if (entry.isFile()) total += (await stat(p).catch(() => ({ size: 0 }))).size;
    }
    return total;
  };
  return () => {
    const now = Date.now();
    if (cached === null || now - cached.at > maxAgeMs) cached = { at: now, bytes: walk(dir) };
    return cached.bytes;
  };
}
