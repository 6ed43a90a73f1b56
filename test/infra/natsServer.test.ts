// The nats-server test helper and the shipped nats-server configs, against real servers.
import { randomBytes } from "node:crypto";
import { connect, errors, type NatsConnection, type Status } from "@nats-io/transport-node";
import { afterEach, describe, expect, it } from "vitest";
import { NATS_CONFIGS, startNatsServer, type NatsServer } from "../helpers/natsServer.js";
import { canConnect } from "../helpers/ports.js";

const enc = new TextEncoder();
const dec = new TextDecoder();

// Everything a test opens, closed after it whatever happens.
const servers: NatsServer[] = [];
const conns: NatsConnection[] = [];
afterEach(async () => {
  await Promise.all(conns.splice(0).map((c) => c.close().catch(() => {})));
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

async function server(opts?: Parameters<typeof startNatsServer>[0]): Promise<NatsServer> {
  const s = await startNatsServer(opts);
  servers.push(s);
  return s;
}

async function conn(opts: Parameters<typeof connect>[0]): Promise<NatsConnection> {
  const c = await connect({ noAsyncTraces: true, maxReconnectAttempts: 0, ...opts });
  conns.push(c);
  return c;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Collects the server errors (-ERR) a connection reports. */
function serverErrors(nc: NatsConnection): Error[] {
  const seen: Error[] = [];
  void (async () => {
    for await (const s of nc.status() as AsyncIterable<Status>) {
      if (s.type === "error") seen.push(s.error);
    }
  })();
  return seen;
}

async function until(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("startNatsServer (plain.conf)", () => {
  it("starts a server on a free port, serves request/reply, and stops it", async () => {
    const s = await server();
    expect(s.url).toBe(`nats://127.0.0.1:${s.port}`);
    expect(s.port).not.toBe(4222);
    expect(alive(s.pid)).toBe(true);

    const nc = await conn({ servers: s.url });
    expect(nc.info?.max_payload).toBe(1024 * 1024); // plain.conf: max_payload 1MB
    expect(nc.info?.jetstream ?? false).toBe(false); // no JetStream
    const sub = nc.subscribe("echo", {
      callback: (_err, msg) => {
        msg.respond(enc.encode(`echo:${dec.decode(msg.data)}`));
      },
    });
    await nc.flush();
    const reply = await nc.request("echo", enc.encode("hi"), { timeout: 2000 });
    expect(dec.decode(reply.data)).toBe("echo:hi");
    sub.unsubscribe();
    await nc.close();

    await s.stop();
    expect(s.running()).toBe(false);
    expect(alive(s.pid)).toBe(false);
    expect(await canConnect(s.port)).toBe(false);
    await s.stop(); // idempotent
  });

  it("gives parallel servers distinct ports, and kill9 kills at once", async () => {
    const [a, b] = await Promise.all([server(), server()]);
    expect(a!.port).not.toBe(b!.port);
    await a!.kill9();
    expect(alive(a!.pid)).toBe(false);
    expect(await canConnect(a!.port)).toBe(false);
    expect(await canConnect(b!.port)).toBe(true);
  });

  it("fails with a clear message when nats-server is not installed", async () => {
    const saved = process.env.NATS_SERVER_BIN;
    process.env.NATS_SERVER_BIN = "/nonexistent/nats-server";
    try {
      await expect(startNatsServer()).rejects.toThrow(/install-nats-server\.sh/);
    } finally {
      if (saved === undefined) delete process.env.NATS_SERVER_BIN;
      else process.env.NATS_SERVER_BIN = saved;
    }
  });

  it("reports a config that does not parse, with the server's own words", async () => {
    await expect(startNatsServer({ config: NATS_CONFIGS.secured })).rejects.toThrow(
      /PAXOSSTORE_N1_PASSWORD/,
    );
  });
});

describe("infra/nats/secured.conf", () => {
  // Random, and with characters an unquoted config value would mangle (#, space, $).
  const nodePass = `1 n#$${randomBytes(9).toString("base64url")}`;
  const clientPass = `2 c#$${randomBytes(9).toString("base64url")}`;
  const secured = () =>
    server({
      config: NATS_CONFIGS.secured,
      // Quoted: nats-server parses the variable's value as a config value (see secured.conf).
      env: {
        PAXOSSTORE_N1_PASSWORD: JSON.stringify(nodePass),
        PAXOSSTORE_N2_PASSWORD: JSON.stringify(nodePass),
        PAXOSSTORE_N3_PASSWORD: JSON.stringify(nodePass),
        PAXOSSTORE_ALICE_PASSWORD: JSON.stringify(clientPass),
        PAXOSSTORE_BOB_PASSWORD: JSON.stringify(clientPass),
      },
    });

  it("lets clients call the API but not publish Paxos peer messages; nodes may", async () => {
    const s = await secured();

    // Two nodes: n1 answers the API (queue group) and listens on its peer subject.
    const n1 = await conn({ servers: s.url, user: "n1", pass: nodePass, inboxPrefix: "_INBOX_n1" });
    const n2 = await conn({ servers: s.url, user: "n2", pass: nodePass, inboxPrefix: "_INBOX_n2" });
    const peerFrames: string[] = [];
    n1.subscribe("paxosstore.dev.api", {
      queue: "api",
      callback: (_e, m) => {
        m.respond(enc.encode(`ok:${dec.decode(m.data)}`));
      },
    });
    n1.subscribe("paxosstore.dev.api.n1", {
      callback: (_e, m) => {
        m.respond(enc.encode(`n1:${dec.decode(m.data)}`));
      },
    });
    n1.subscribe("paxosstore.dev.peer.n1", {
      callback: (_e, m) => {
        peerFrames.push(dec.decode(m.data));
      },
    });
    await n1.flush();

    // A client: requests to the API subjects work (reply comes back on its _INBOX).
    const client = await conn({ servers: s.url, user: "alice", pass: clientPass, inboxPrefix: "_INBOX_alice" });
    const clientErrors = serverErrors(client);
    const r1 = await client.request("paxosstore.dev.api", enc.encode("get k"), { timeout: 2000 });
    expect(dec.decode(r1.data)).toBe("ok:get k");
    const r2 = await client.request("paxosstore.dev.api.n1", enc.encode("get k"), { timeout: 2000 });
    expect(dec.decode(r2.data)).toBe("n1:get k");

    // ...but a forged Paxos frame is refused by the server and never delivered.
    client.publish("paxosstore.dev.peer.n1", enc.encode("forged"));
    await client.flush();
    await until(() => clientErrors.length > 0);
    const err = clientErrors[0];
    expect(err).toBeInstanceOf(errors.PermissionViolationError);
    expect((err as InstanceType<typeof errors.PermissionViolationError>).operation).toBe("publish");
    expect((err as InstanceType<typeof errors.PermissionViolationError>).subject).toBe(
      "paxosstore.dev.peer.n1",
    );
    expect(client.isClosed()).toBe(false); // the connection survives the refusal

    // A node may send peer frames.
    n2.publish("paxosstore.dev.peer.n1", enc.encode("prepare"));
    await n2.flush();
    await n1.flush();
    await until(() => peerFrames.length > 0);
    expect(peerFrames).toEqual(["prepare"]);

    // A client may not listen in on peer traffic either.
    const spy = client.subscribe("paxosstore.dev.peer.>");
    const spyDone = (async () => {
      for await (const _m of spy) {
        // nothing may arrive
      }
    })();
    await expect(spyDone).rejects.toBeInstanceOf(errors.PermissionViolationError);
  });

  it("refuses a wrong password and connections without credentials", async () => {
    const s = await secured();
    await expect(
      connect({ servers: s.url, user: "alice", pass: "wrong", maxReconnectAttempts: 0 }),
    ).rejects.toThrow(/Authorization/i);
    await expect(connect({ servers: s.url, maxReconnectAttempts: 0 })).rejects.toThrow(
      /Authorization/i,
    );
  });
});
