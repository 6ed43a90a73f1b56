// Free TCP ports for servers that tests start (nats-server, nodes' metrics, ...).
//
// A port is found by binding port 0 on the host and closing the socket again; the kernel
// may hand the same port to someone else before the caller binds it, so callers that spawn
// a server should confirm it is theirs (natsServer.ts does, by server name) and retry.
import net from "node:net";

// Ports handed out by this process recently: never hand the same one out twice in a row,
// even if the kernel offers it again before the first caller bound it.
const recent = new Set<number>();
const RECENT_MAX = 512;

function bindZero(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen({ port: 0, host, exclusive: true }, () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      srv.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

/** A TCP port that was free on `host` (default 127.0.0.1) a moment ago. */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = await bindZero(host);
    if (port > 0 && !recent.has(port)) {
      recent.add(port);
      if (recent.size > RECENT_MAX) {
        const oldest = recent.values().next().value;
        if (oldest !== undefined) recent.delete(oldest);
      }
      return port;
    }
  }
  throw new Error(`freePort: no free port found on ${host}`);
}

/** `n` distinct free ports. */
export async function freePorts(n: number, host = "127.0.0.1"): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await freePort(host));
  return out;
}

/** True if something accepts TCP connections on host:port right now. */
export function canConnect(port: number, host = "127.0.0.1", timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host });
    const done = (ok: boolean) => {
      sock.removeAllListeners();
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once("connect", () => done(true));
    sock.once("error", () => done(false));
  });
}
