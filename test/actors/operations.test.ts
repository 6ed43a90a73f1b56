// The node's operator-facing pieces that need no server: which reply subjects a node answers
// on, the rate limit on per-message warnings, and the node's configuration (unknown keys and
// bad values are one clear error, each setting's source is known, the CLI's identity
// variables are never a node's).

import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, describeSettings, loadNodeConfig, SETTINGS, settingsHelp } from "../../src/actors/nodeConfig.js";
import { RateLimitedLog } from "../../src/actors/rateLimitedLog.js";
import { replySubjectProblem } from "../../src/actors/replySubject.js";
import { connectOptionsOf } from "../../src/cli/clientCommands.js";

describe("reply subjects a node answers on", () => {
  it("answers inboxes, default and per-application", () => {
    for (const ok of ["_INBOX.abc.1", "_INBOX_alice.xyz.2", "_INBOX_n1.q"]) expect(replySubjectProblem(ok, "paxosstore.t")).toBeNull();
  });
  it("never answers under the cluster's prefix (peer or api subjects), wildcards, or non-inboxes", () => {
    for (const bad of ["paxosstore.t.peer.n2", "paxosstore.t.api", "paxosstore.t", "_INBOX.>", "_INBOX.*", "orders.new", "_INBOX", "_INBOXY.x".replace("Y", " ")])
      expect(replySubjectProblem(bad, "paxosstore.t"), bad).not.toBeNull();
  });
  it("takes configured prefixes, and still refuses the cluster's own subjects", () => {
    expect(replySubjectProblem("replies.app1.7", "paxosstore.t", ["replies"])).toBeNull();
    expect(replySubjectProblem("paxosstore.t.peer.n2", "paxosstore.t", ["paxosstore"])).toMatch(/prefix/);
  });
});

describe("RateLimitedLog", () => {
  it("logs `burst` lines per interval and kind, then counts; the next window's first line says how many were left out", () => {
    const lines: Record<string, unknown>[] = [];
    let now = 0;
    const log = new RateLimitedLog({ warn: ((o: Record<string, unknown>) => void lines.push(o)) as never }, { burst: 3, intervalMs: 1000, now: () => now });
    for (let i = 0; i < 10; i++) log.warn("bad_frame", { i }, "dropped");
    log.warn("other", {}, "another kind is limited apart");
    expect(lines.map((l) => l.i ?? l.event)).toEqual([0, 1, 2, "other"]);
    now = 1000;
    log.warn("bad_frame", { i: 10 }, "dropped");
    expect(lines.at(-1)).toMatchObject({ i: 10, suppressed: 7, event: "bad_frame" });
  });
});

describe("node configuration", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "paxosstore-config-"));
  const file = (name: string, content: unknown): string => {
    const p = path.join(dir, name);
    writeFileSync(p, typeof content === "string" ? content : JSON.stringify(content));
    return p;
  };
  const base = { nodeId: "n1", members: "n1,n2,n3" };

  it("refuses unknown file keys, nested ones too, naming the key", () => {
    expect(() => loadNodeConfig(file("a.json", { nodeId: "n1", members: ["n1"], natz: {} }), {})).toThrow(/unknown key "natz"/);
    expect(() => loadNodeConfig(file("b.json", { nodeId: "n1", members: ["n1"], nats: { sever: ["x"] } }), {})).toThrow(/unknown key "nats.sever"/);
    expect(() => loadNodeConfig(file("c.json", { nodeId: "n1", members: ["n1"], timing: { phaseTimeout: 5 } }), {})).toThrow(/timing.phaseTimeout/);
  });

  it("refuses bad values with where they came from", () => {
    expect(() => loadNodeConfig(undefined, {}, { ...base, logLevel: "loud" })).toThrow(/logLevel \(--log-level\) must be one of/);
    expect(() => loadNodeConfig(undefined, { PAXOSSTORE_LOG_LEVEL: "verbose" }, base)).toThrow(/PAXOSSTORE_LOG_LEVEL/);
    expect(() => loadNodeConfig(undefined, { PAXOSSTORE_REPLICATION: "three" }, base)).toThrow(/replication \(PAXOSSTORE_REPLICATION\) must be an integer/);
    expect(() => loadNodeConfig(file("d.json", { nodeId: "n1", members: ["n1"], httpPort: "80x" }), {})).toThrow(/httpPort \("httpPort" in .*d.json\)/);
    expect(() => loadNodeConfig(undefined, {}, { ...base, passFile: "/nonexistent/pw" })).toThrow(/passFile.*ENOENT/);
    expect(() => loadNodeConfig(undefined, {}, { ...base, replyPrefixes: "paxosstore.dev.peer" })).toThrow(/overlaps/);
    expect(() => loadNodeConfig(undefined, {}, { members: "n1" })).toThrow(ConfigError);
  });

  it("knows where each setting came from, reads the password file, and shows no secret", () => {
    const pw = file("pw", "s3cret pass\n");
    const config = loadNodeConfig(file("e.json", { nodeId: "n1", members: ["n1", "n2", "n3"], cluster: "prod", dataDir: "/from/file" }), { PAXOSSTORE_DATA_DIR: "/from/env", PAXOSSTORE_NODE_NATS_USER: "n1" }, { dataDir: "/from/flag", passFile: pw });
    expect(config.nats.pass).toBe("s3cret pass");
    expect(config.sources).toMatchObject({ cluster: "file", dataDir: "flag", "nats.user": "env", "nats.passFile": "flag", replication: "default" });
    const { settings } = describeSettings(config, {});
    expect(settings.dataDir).toEqual({ value: "/from/flag", from: "flag" });
    expect(settings["nats.pass"]).toEqual({ value: "(set)", from: "flag" });
    expect(JSON.stringify(settings)).not.toContain("s3cret");
  });

  it("never takes the CLI's identity variables, and says which were set", () => {
    const env = { PAXOSSTORE_NATS_USER: "client", PAXOSSTORE_NATS_PASS: "client-pw", PAXOSSTORE_NATS_TOKEN: "t" };
    const config = loadNodeConfig(undefined, env, base);
    expect(config.nats.user).toBeUndefined();
    expect(config.nats.pass).toBeUndefined();
    expect(config.nats.token).toBeUndefined();
    expect(describeSettings(config, env).ignoredEnv).toEqual(["PAXOSSTORE_NATS_USER", "PAXOSSTORE_NATS_PASS", "PAXOSSTORE_NATS_TOKEN"]);
  });

  it("--help lists every setting with its environment name", () => {
    const help = settingsHelp();
    for (const s of SETTINGS) {
      expect(help).toContain(s.key);
      if (s.env !== null) expect(help).toContain(s.env);
    }
  });
});

describe("CLI connection options", () => {
  it("--inbox-prefix and PAXOSSTORE_INBOX_PREFIX; --pass-file reads the first line; not both --pass and --pass-file", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "paxosstore-cli-"));
    const pw = path.join(dir, "pw");
    writeFileSync(pw, "alice secret\nignored\n");
    expect(connectOptionsOf({ inboxPrefix: "_INBOX_alice", user: "alice", passFile: pw }, {})).toMatchObject({ inboxPrefix: "_INBOX_alice", user: "alice", pass: "alice secret" });
    expect(connectOptionsOf({}, { PAXOSSTORE_INBOX_PREFIX: "_INBOX_bob", PAXOSSTORE_NATS_PASS_FILE: pw })).toMatchObject({ inboxPrefix: "_INBOX_bob", pass: "alice secret" });
    expect(() => connectOptionsOf({ pass: "x", passFile: pw }, {})).toThrow(/not both/);
    expect(() => connectOptionsOf({ passFile: path.join(dir, "missing") }, {})).toThrow(/cannot read the password file/);
  });
});
