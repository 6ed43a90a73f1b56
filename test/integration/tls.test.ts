// NATS over TLS with certificates made here with openssl (test/helpers/certs.ts, the same
// commands as docs/OPERATIONS.md): nats-server requires TLS and verifies client certificates
// (mutual TLS), a 3-node cluster and a client connect with the CA and their certificates and
// work; a client that does not trust the CA, or shows no certificate, or speaks plain NATS, is
// refused.

import { writeFileSync } from "node:fs";
import path from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNode, type NodeHandle } from "../../src/actors/node.js";
import { loadNodeConfig } from "../../src/actors/nodeConfig.js";
import { connect, type PaxosStoreClient } from "../../src/client/client.js";
import { PaxosStoreError } from "../../src/protocol/errors.js";
import { hasOpenssl, makeCerts, type TestCerts } from "../helpers/certs.js";
import { startNatsServer, type NatsServer } from "../helpers/natsServer.js";
import { tempDir, type TempDir } from "../helpers/tmp.js";

const MEMBERS = ["n1", "n2", "n3"];

describe.skipIf(!hasOpenssl())("NATS over TLS (openssl-made CA and certificates)", () => {
  let dir: TempDir;
  let certs: TestCerts;
  let nats: NatsServer;
  const nodes: NodeHandle[] = [];
  const clients: PaxosStoreClient[] = [];

  beforeAll(async () => {
    dir = await tempDir("tls");
    certs = makeCerts(dir.path);
    const conf = path.join(dir.path, "tls.conf");
    writeFileSync(
      conf,
      `host: 127.0.0.1\nport: 4222\nmax_payload: 1MB\ntls {\n  cert_file: "${certs.serverCert}"\n  key_file: "${certs.serverKey}"\n  ca_file: "${certs.caFile}"\n  verify: true\n  timeout: 2\n}\n`,
    );
    nats = await startNatsServer({ config: conf });
    // Together: a new node with an empty data directory asks its peers whether they have seen it.
    await Promise.all(MEMBERS.map(async (id) => {
      const config = loadNodeConfig(undefined, { PAXOSSTORE_NATS_TLS_CA: certs.caFile, PAXOSSTORE_NODE_NATS_TLS_CERT: certs.clientCert, PAXOSSTORE_NODE_NATS_TLS_KEY: certs.clientKey }, {
        nodeId: id,
        cluster: "tls",
        members: MEMBERS.join(","),
        nats: `tls://127.0.0.1:${nats.port}`,
        dataDir: path.join(dir.path, id),
        natsWait: "0",
      });
      nodes.push(await startNode(config, { logger: pino({ level: "warn" }) }));
    }));
  }, 60_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(nodes.map((n) => n.stop()));
    await nats?.stop();
    await dir?.cleanup();
  });

  it("a client with the CA and a certificate writes and reads through the TLS cluster", async () => {
    const c = await connect({ servers: `tls://127.0.0.1:${nats.port}`, cluster: "tls", tls: { caFile: certs.caFile, certFile: certs.clientCert, keyFile: certs.clientKey } });
    clients.push(c);
    await c.put("over-tls", "secret");
    expect((await c.get("over-tls")).text()).toBe("secret");
    expect([...(await c.status()).membersSeen].sort()).toEqual(MEMBERS);
  });

  it("a client that does not trust the CA is refused", async () => {
    const err = await connect({ servers: `tls://127.0.0.1:${nats.port}`, cluster: "tls", tls: { certFile: certs.clientCert, keyFile: certs.clientKey }, timeoutMs: 3_000 }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(PaxosStoreError);
    expect(String((err as Error).message)).toMatch(/certificate|self.signed|unable to verify/i);
  });

  it("a client without a certificate, or in plain text, is refused", async () => {
    const noCert = await connect({ servers: `tls://127.0.0.1:${nats.port}`, cluster: "tls", tls: { caFile: certs.caFile }, timeoutMs: 3_000 }).then(() => null, (e: unknown) => e);
    expect(noCert).toBeInstanceOf(PaxosStoreError);
    const plain = await connect({ servers: `nats://127.0.0.1:${nats.port}`, cluster: "tls", timeoutMs: 3_000 }).then(() => null, (e: unknown) => e);
    expect(plain).toBeInstanceOf(PaxosStoreError);
  });
});
