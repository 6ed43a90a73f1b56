// A node's configuration: from a JSON file, overridden by PAXOSSTORE_* environment variables,
// overridden by command-line flags. Every setting is in SETTINGS below (its file key, flag,
// environment name and default): `paxosstore node --help` and the start-up log are made from
// that table, and every value is checked here, once, with one clear line naming where the bad
// value came from, so a bad config fails at start and never later. Unknown file keys are
// errors too (a misspelt key silently ignored is a setting the operator thinks is on).
//
// Environment names: a node's NATS identity (user, password, token, creds, nkey, client
// certificate, inbox prefix) is read from PAXOSSTORE_NODE_NATS_* only. The CLI's
// PAXOSSTORE_NATS_USER and friends are a CLIENT's identity: a node never takes them (it says
// so in its start-up log when they are set), so a shell set up for the CLI cannot turn a node
// into a client. The cluster's address (PAXOSSTORE_NATS, PAXOSSTORE_CLUSTER, PAXOSSTORE_PREFIX,
// PAXOSSTORE_NATS_TLS_CA) is shared by both on purpose.

import { readFileSync } from "node:fs";
import { DEFAULT_LIMITS, DEFAULT_TIMING, type BreakName, type Timing } from "../protocol/config.js";
import { DEFAULT_MAY_WAIT_MS } from "../storage/writer.js";

export interface NatsOptions {
  /** e.g. ["nats://127.0.0.1:4222"] */
  readonly servers: readonly string[];
  readonly user?: string;
  readonly pass?: string;
  readonly token?: string;
  /** Path of a .creds file (JWT + nkey seed). */
  readonly credsFile?: string;
  /** Path of an nkey seed file. */
  readonly nkeySeedFile?: string;
  readonly tls?: { readonly caFile?: string; readonly certFile?: string; readonly keyFile?: string };
  /** Prefix of this connection's own reply subjects (NATS inboxPrefix). */
  readonly inboxPrefix?: string;
  /** Where `pass` was read from (kept for the start-up log; the password itself is never logged). */
  readonly passFile?: string;
}

export type SettingSource = "file" | "env" | "flag" | "default";

export interface NodeConfig {
  readonly nodeId: string;
  readonly cluster: string;
  /** Every node of the cluster, this one included. */
  readonly members: readonly string[];
  readonly nats: NatsOptions;
  /** How long a node started before NATS is up keeps trying to connect (0: once). */
  readonly natsWaitMs: number;
  readonly dataDir: string;
  /** Subject prefix; default `paxosstore.<cluster>`. */
  readonly prefix: string;
  /** Reply subjects the node answers on start with one of these (replySubject.ts). */
  readonly replyPrefixes: readonly string[];
  /** Replicas per key-group (3 by default; all members when fewer). */
  readonly replication: number;
  /** An idle key-group actor is stopped after this long (its state stays on disk). */
  readonly passivateAfterMs: number;
  /** Default client deadline when a request carries none. */
  readonly requestTimeoutMs: number;
  /**
   * Request ids each key-group remembers for dedupe: the at-most-once window, in writes to the
   * group (docs/API.md). Every replica applies the same rule to the same log, so it must be
   * equal on every node (checked against the peers at start: membership.ts).
   */
  readonly requestMemory: number;
  readonly timing: Timing;
  readonly logLevel: string;
  /**
   * The operator vouches that an EMPTY data directory is a brand-new node that never ran
   * (--new-node): skip asking the peers whether they have seen it (docs/OPERATIONS.md).
   */
  readonly newNode: boolean;
  /**
   * This node joins a running cluster (`paxosstore members add`, issue 13): `members` is the
   * cluster's FOUNDING member list, which need not name it. An empty data directory is new
   * unless a peer that answers has seen this node before (then its disk was lost: newOrLost.ts).
   */
  readonly join: boolean;
  /** Groups a second this node moves at most during a membership change. */
  readonly moveRatePerSecond: number;
  /**
   * Milliseconds a record nothing waits on (a learn whose answers already left) may wait for
   * the next synced batch instead of starting one (storage/writer.ts); 0: every record starts one.
   */
  readonly commitWaitMs: number;
  /** TEST-ONLY deliberate protocol bugs (PAXOSSTORE_BREAK, src/actors/testHooks.ts); unset in production. */
  readonly breaks?: ReadonlySet<BreakName>;
  /** Port of the Prometheus /metrics listener; 0 = off (the default). */
  readonly metricsPort: number;
  /**
   * At most this many key-groups held in memory; over it, the least recently used quiescent
   * groups are passivated first. Bounds a node's memory whatever the number of groups.
   */
  readonly maxActiveGroups: number;
  /** Health endpoint port (health.ts); 0: off. */
  readonly httpPort: number;
  readonly httpHost: string;
  /** Where each setting came from (by file key), for the start-up log. */
  readonly sources?: Readonly<Record<string, SettingSource>>;
}

export class ConfigError extends Error {
  readonly code = "CONFIG_INVALID";
}

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

type Kind = "token" | "string" | "list" | "int" | "bool" | "level" | "object";

export interface SettingSpec {
  /** The config file key (dotted for nested objects). */
  readonly key: string;
  /** The command-line flag, or null when file/env only. */
  readonly flag: string | null;
  /** The environment variable, or null when file only. */
  readonly env: string | null;
  readonly kind: Kind;
  /** For people: the default, as --help shows it. */
  readonly defaultText: string;
  readonly help: string;
  /** Never logged (passwords, tokens). */
  readonly secret?: boolean;
  readonly min?: number;
  readonly max?: number;
}

export const SETTINGS: readonly SettingSpec[] = [
  { key: "nodeId", flag: "--node-id", env: "PAXOSSTORE_NODE_ID", kind: "token", defaultText: "required", help: "this node's id" },
  { key: "cluster", flag: "--cluster", env: "PAXOSSTORE_CLUSTER", kind: "token", defaultText: "dev", help: "cluster name" },
  { key: "members", flag: "--members", env: "PAXOSSTORE_MEMBERS", kind: "list", defaultText: "required", help: "node ids of every member, comma-separated (file: array)" },
  { key: "nats.servers", flag: "--nats", env: "PAXOSSTORE_NATS", kind: "list", defaultText: "nats://127.0.0.1:4222", help: "NATS server URLs, comma-separated" },
  { key: "nats.user", flag: "--user", env: "PAXOSSTORE_NODE_NATS_USER", kind: "string", defaultText: "none", help: "NATS user of this node" },
  { key: "nats.pass", flag: "--pass", env: "PAXOSSTORE_NODE_NATS_PASS", kind: "string", defaultText: "none", help: "NATS password (visible in ps: prefer --pass-file)", secret: true },
  { key: "nats.passFile", flag: "--pass-file", env: "PAXOSSTORE_NODE_NATS_PASS_FILE", kind: "string", defaultText: "none", help: "file holding the NATS password (its first line)" },
  { key: "nats.token", flag: "--token", env: "PAXOSSTORE_NODE_NATS_TOKEN", kind: "string", defaultText: "none", help: "NATS token", secret: true },
  { key: "nats.credsFile", flag: "--creds", env: "PAXOSSTORE_NODE_NATS_CREDS", kind: "string", defaultText: "none", help: "NATS .creds file" },
  { key: "nats.nkeySeedFile", flag: "--nkey", env: "PAXOSSTORE_NODE_NATS_NKEY", kind: "string", defaultText: "none", help: "NATS nkey seed file" },
  { key: "nats.tls.caFile", flag: "--tls-ca", env: "PAXOSSTORE_NATS_TLS_CA", kind: "string", defaultText: "none", help: "CA certificate (PEM) the NATS server's certificate must chain to" },
  { key: "nats.tls.certFile", flag: "--tls-cert", env: "PAXOSSTORE_NODE_NATS_TLS_CERT", kind: "string", defaultText: "none", help: "this node's client certificate (mutual TLS)" },
  { key: "nats.tls.keyFile", flag: "--tls-key", env: "PAXOSSTORE_NODE_NATS_TLS_KEY", kind: "string", defaultText: "none", help: "this node's client key (mutual TLS)" },
  { key: "nats.inboxPrefix", flag: "--inbox-prefix", env: "PAXOSSTORE_NODE_INBOX_PREFIX", kind: "string", defaultText: "_INBOX_<nodeId>", help: "prefix of this node's own reply subjects" },
  { key: "natsWaitMs", flag: "--nats-wait", env: "PAXOSSTORE_NATS_WAIT_MS", kind: "int", defaultText: "60000", help: "ms to keep retrying when NATS is not up at start (0: try once)", min: 0, max: 86_400_000 },
  { key: "dataDir", flag: "--data-dir", env: "PAXOSSTORE_DATA_DIR", kind: "string", defaultText: "./.data/<nodeId>", help: "LevelDB directory" },
  { key: "prefix", flag: "--prefix", env: "PAXOSSTORE_PREFIX", kind: "string", defaultText: "paxosstore.<cluster>", help: "NATS subject prefix" },
  { key: "replyPrefixes", flag: "--reply-prefixes", env: "PAXOSSTORE_REPLY_PREFIXES", kind: "list", defaultText: "_INBOX", help: "answer only reply subjects starting with one of these + '.' or '_'" },
  { key: "replication", flag: "--replication", env: "PAXOSSTORE_REPLICATION", kind: "int", defaultText: "3", help: "replicas per key-group (all members when fewer)", min: 1, max: 7 },
  { key: "passivateAfterMs", flag: "--passivate-after", env: "PAXOSSTORE_PASSIVATE_AFTER_MS", kind: "int", defaultText: "60000", help: "ms before an idle key-group actor is stopped", min: 10, max: 86_400_000 },
  { key: "requestTimeoutMs", flag: "--request-timeout", env: "PAXOSSTORE_REQUEST_TIMEOUT_MS", kind: "int", defaultText: "5000", help: "deadline of a request that carries none (ms)", min: 10, max: 600_000 },
  { key: "requestMemory", flag: "--request-memory", env: "PAXOSSTORE_REQUEST_MEMORY", kind: "int", defaultText: String(DEFAULT_LIMITS.requestMemory), help: "request ids each key-group remembers for retries: the at-most-once window, in writes; the SAME on every node", min: 1, max: 1_000_000 },
  { key: "newNode", flag: "--new-node", env: "PAXOSSTORE_NEW_NODE", kind: "bool", defaultText: "false", help: "an EMPTY data dir is a brand-new node: do not ask the peers whether they have seen it (never after a lost disk: docs/OPERATIONS.md)" },
  { key: "join", flag: "--join", env: "PAXOSSTORE_JOIN", kind: "bool", defaultText: "false", help: "a node added to a running cluster (paxosstore members add): --members is the FOUNDING list, which need not name this node" },
  { key: "moveRatePerSecond", flag: "--move-rate", env: "PAXOSSTORE_MOVE_RATE", kind: "int", defaultText: "50", help: "key-groups this node moves a second at most while the members change", min: 1, max: 100_000 },
  { key: "commitWaitMs", flag: "--commit-wait", env: "PAXOSSTORE_COMMIT_WAIT_MS", kind: "int", defaultText: String(DEFAULT_MAY_WAIT_MS), help: "ms a learned value's record may wait to ride the next fsync instead of one of its own (0: never waits)", min: 0, max: 1_000 },
  { key: "httpPort", flag: "--http-port", env: "PAXOSSTORE_HTTP_PORT", kind: "int", defaultText: "0 (off)", help: "port of the health endpoint (/livez, /readyz, /status.json)", min: 0, max: 65_535 },
  { key: "metricsPort", flag: "--metrics-port", env: "PAXOSSTORE_METRICS_PORT", kind: "int", defaultText: "0 (off)", help: "serve Prometheus metrics at http://<host>:<port>/metrics", min: 0, max: 65_535 },
  { key: "maxActiveGroups", flag: "--max-active-groups", env: "PAXOSSTORE_MAX_ACTIVE_GROUPS", kind: "int", defaultText: "50000", help: "key-groups held in memory at most; least recently used idle ones are passivated first", min: 10, max: 100_000_000 },
  { key: "httpHost", flag: "--http-host", env: "PAXOSSTORE_HTTP_HOST", kind: "string", defaultText: "127.0.0.1", help: "address the health endpoint listens on" },
  { key: "logLevel", flag: "--log-level", env: "PAXOSSTORE_LOG_LEVEL", kind: "level", defaultText: "info", help: LOG_LEVELS.join("|") },
  { key: "timing", flag: null, env: null, kind: "object", defaultText: "built in", help: "Paxos timing overrides (file only; keys of Timing in src/protocol/config.ts)" },
];

/**
 * CLI variables that name a client's identity. A node ignores them (and says so): its own
 * are the PAXOSSTORE_NODE_NATS_* names above.
 */
export const CLIENT_ONLY_ENV = [
  "PAXOSSTORE_NATS_USER",
  "PAXOSSTORE_NATS_PASS",
  "PAXOSSTORE_NATS_PASS_FILE",
  "PAXOSSTORE_NATS_TOKEN",
  "PAXOSSTORE_NATS_CREDS",
  "PAXOSSTORE_NATS_NKEY",
  "PAXOSSTORE_NATS_TLS_CERT",
  "PAXOSSTORE_NATS_TLS_KEY",
  "PAXOSSTORE_INBOX_PREFIX",
  "PAXOSSTORE_ENCODING",
  "PAXOSSTORE_TIMEOUT_MS",
] as const;

/** `--node-id` -> `nodeId`: how commander names a flag's option. */
export function flagOption(flag: string): string {
  return flag.replace(/^--/, "").replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** The settings as `paxosstore node --help` shows them. */
export function settingsHelp(): string {
  const rows = SETTINGS.map((s) => [s.key, s.flag ?? "(file only)", s.env ?? "", s.defaultText]);
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i]!.length), ["file key", "flag", "environment"][i]!.length));
  const line = (r: string[]): string => `  ${r[0]!.padEnd(widths[0]!)}  ${r[1]!.padEnd(widths[1]!)}  ${r[2]!.padEnd(widths[2]!)}  ${r[3]}`;
  return [
    "Settings (later wins: config file < environment < flag):",
    line(["file key", "flag", "environment", "default"]),
    ...rows.map(line),
    "",
    "A node never reads the CLI's identity variables (" + CLIENT_ONLY_ENV.join(", ") + "): its own are PAXOSSTORE_NODE_NATS_*.",
  ].join("\n");
}

/** Reads the file (if any) and the environment; `overrides` are command-line flags by option name (`nodeId`, `pass`, ...). */
export function loadNodeConfig(file: string | undefined, env: NodeJS.ProcessEnv, overrides: Record<string, unknown> = {}): NodeConfig {
  let fromFile: Record<string, unknown> = {};
  if (file !== undefined) {
    try {
      fromFile = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
    } catch (e) {
      throw new ConfigError(`cannot read config file ${file}: ${(e as Error).message}`);
    }
    if (typeof fromFile !== "object" || fromFile === null || Array.isArray(fromFile))
      throw new ConfigError(`config file ${file} must hold a JSON object`);
    checkKnownKeys(fromFile, file);
  }
  const sources: Record<string, SettingSource> = {};
  const values = new Map<string, { value: unknown; where: string }>();
  for (const s of SETTINGS) {
    const flagValue = s.flag === null ? undefined : overrides[flagOption(s.flag)];
    const envValue = s.env === null ? undefined : env[s.env];
    const fileValue = fileValueAt(fromFile, s.key);
    if (flagValue !== undefined && flagValue !== "") {
      values.set(s.key, { value: flagValue, where: s.flag! });
      sources[s.key] = "flag";
    } else if (envValue !== undefined && envValue !== "") {
      values.set(s.key, { value: envValue, where: s.env! });
      sources[s.key] = "env";
    } else if (fileValue !== undefined) {
      values.set(s.key, { value: fileValue, where: `"${s.key}" in ${file}` });
      sources[s.key] = "file";
    } else {
      sources[s.key] = "default";
    }
  }
  const spec = (key: string): SettingSpec => SETTINGS.find((s) => s.key === key)!;
  const get = (key: string): { value: unknown; where: string } | undefined => values.get(key);
  const str = (key: string, fallback?: string): string | undefined => {
    const v = get(key);
    if (v === undefined) return fallback;
    if (typeof v.value !== "string" || v.value === "") throw new ConfigError(`${key} (${v.where}) must be a non-empty string, got ${show(v.value)}`);
    return v.value;
  };
  const required = (key: string): string => {
    const v = str(key);
    if (v === undefined) throw new ConfigError(`missing ${key}: give ${spec(key).flag}, ${spec(key).env} or "${key}" in a config file`);
    return v;
  };
  const token = (key: string, fallback?: string): string => {
    const v = key === "nodeId" ? required(key) : str(key, fallback)!;
    if (!TOKEN.test(v)) throw new ConfigError(`${key} "${v}" (${get(key)?.where ?? "default"}) may use only letters, digits, "_" and "-" (it is part of NATS subjects)`);
    return v;
  };
  const list = (key: string, fallback?: string[]): string[] => {
    const v = get(key);
    if (v === undefined) {
      if (fallback === undefined) throw new ConfigError(`missing ${key}: give ${spec(key).flag}, ${spec(key).env} or "${key}" in a config file`);
      return fallback;
    }
    const items = Array.isArray(v.value) ? v.value : typeof v.value === "string" ? v.value.split(",") : null;
    if (items === null || items.some((x) => typeof x !== "string")) throw new ConfigError(`${key} (${v.where}) must be a list of strings, got ${show(v.value)}`);
    const out = (items as string[]).map((x) => x.trim()).filter((x) => x.length > 0);
    if (out.length === 0) throw new ConfigError(`${key} (${v.where}) is empty`);
    return out;
  };
  const bool = (key: string, fallback: boolean): boolean => {
    const v = get(key);
    if (v === undefined) return fallback;
    if (v.value === true || v.value === "true" || v.value === "1") return true;
    if (v.value === false || v.value === "false" || v.value === "0") return false;
    throw new ConfigError(`${key} (${v.where}) must be true or false, got ${show(v.value)}`);
  };
  const int = (key: string, fallback: number): number => {
    const v = get(key);
    if (v === undefined) return fallback;
    const n = typeof v.value === "number" ? v.value : typeof v.value === "string" && /^\s*-?\d+\s*$/.test(v.value) ? Number(v.value) : NaN;
    const { min = 0, max = Number.MAX_SAFE_INTEGER } = spec(key);
    if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`${key} (${v.where}) must be an integer in [${min}, ${max}], got ${show(v.value)}`);
    return n;
  };

  const nodeId = token("nodeId");
  const cluster = token("cluster", "dev");
  const members = list("members");
  for (const id of members)
    if (!TOKEN.test(id)) throw new ConfigError(`member "${id}" may use only letters, digits, "_" and "-" (it is part of NATS subjects)`);
  const join = bool("join", false);
  if (!join && !members.includes(nodeId)) throw new ConfigError(`nodeId "${nodeId}" is not one of the members ${members.join(",")}`);
  if (new Set(members).size !== members.length) throw new ConfigError(`members list has duplicates: ${members.join(",")}`);

  const logLevel = str("logLevel", "info")!;
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel))
    throw new ConfigError(`logLevel (${get("logLevel")!.where}) must be one of ${LOG_LEVELS.join("|")}, got ${show(logLevel)}`);

  const pass = str("nats.pass");
  const passFile = str("nats.passFile");
  if (pass !== undefined && passFile !== undefined) throw new ConfigError("give the NATS password (nats.pass) or a password file (nats.passFile), not both");
  const caFile = str("nats.tls.caFile");
  const certFile = str("nats.tls.certFile");
  const keyFile = str("nats.tls.keyFile");
  if ((certFile === undefined) !== (keyFile === undefined)) throw new ConfigError("nats.tls.certFile and nats.tls.keyFile go together (mutual TLS): give both or neither");
  for (const [key, path] of [["nats.passFile", passFile], ["nats.credsFile", str("nats.credsFile")], ["nats.nkeySeedFile", str("nats.nkeySeedFile")], ["nats.tls.caFile", caFile], ["nats.tls.certFile", certFile], ["nats.tls.keyFile", keyFile]] as const) {
    if (path !== undefined) readable(key, path, get(key)!.where);
  }
  const inboxPrefix = str("nats.inboxPrefix", `_INBOX_${nodeId}`)!;
  if (!SUBJECT_TOKENS.test(inboxPrefix)) throw new ConfigError(`nats.inboxPrefix "${inboxPrefix}" must be NATS subject tokens without wildcards`);
  const nats: NatsOptions = {
    servers: list("nats.servers", ["nats://127.0.0.1:4222"]),
    user: str("nats.user"),
    pass: passFile !== undefined ? readPassword(passFile) : pass,
    passFile,
    token: str("nats.token"),
    credsFile: str("nats.credsFile"),
    nkeySeedFile: str("nats.nkeySeedFile"),
    tls: caFile || certFile || keyFile ? { caFile, certFile, keyFile } : undefined,
    inboxPrefix,
  };
  for (const url of nats.servers)
    if (!/^(nats|tls|wss?):\/\/[^\s]+$/.test(url) && !/^[A-Za-z0-9.-]+:\d+$/.test(url)) throw new ConfigError(`nats.servers: "${url}" is not a NATS URL (nats://host:port)`);

  const prefix = str("prefix", `paxosstore.${cluster}`)!;
  if (!SUBJECT_TOKENS.test(prefix)) throw new ConfigError(`prefix "${prefix}" must be NATS subject tokens without wildcards`);
  const replyPrefixes = list("replyPrefixes", ["_INBOX"]);
  for (const p of replyPrefixes) {
    if (!SUBJECT_TOKENS.test(p)) throw new ConfigError(`replyPrefixes: "${p}" must be NATS subject tokens without wildcards`);
    if (p === prefix || p.startsWith(`${prefix}.`) || prefix.startsWith(`${p}.`)) throw new ConfigError(`replyPrefixes: "${p}" overlaps the cluster's prefix ${prefix}: nodes would answer on their own subjects`);
  }

  return {
    nodeId,
    cluster,
    members,
    nats,
    natsWaitMs: int("natsWaitMs", 60_000),
    dataDir: str("dataDir", `./.data/${nodeId}`)!,
    prefix,
    replyPrefixes,
    replication: int("replication", 3),
    passivateAfterMs: int("passivateAfterMs", 60_000),
    requestTimeoutMs: int("requestTimeoutMs", 5_000),
    requestMemory: int("requestMemory", DEFAULT_LIMITS.requestMemory),
    timing: timingOf(get("timing")),
    logLevel,
    // --join no longer implies --new-node: an empty directory is still asked about, because the
    // same command line restarts a node added earlier whose disk was lost (newOrLost.ts).
    newNode: bool("newNode", false),
    join,
    moveRatePerSecond: int("moveRatePerSecond", 50),
    commitWaitMs: int("commitWaitMs", DEFAULT_MAY_WAIT_MS),
    httpPort: int("httpPort", 0),
    httpHost: str("httpHost", "127.0.0.1")!,
    metricsPort: int("metricsPort", 0),
    maxActiveGroups: int("maxActiveGroups", 50_000),
    sources,
  };
}

/**
 * The settings as the start-up log shows them: each value (secrets as "(set)") and where it
 * came from, plus the CLI-only variables that are set and ignored.
 */
export function describeSettings(config: NodeConfig, env: NodeJS.ProcessEnv): { settings: Record<string, { value: unknown; from: SettingSource }>; ignoredEnv: string[] } {
  const settings: Record<string, { value: unknown; from: SettingSource }> = {};
  for (const s of SETTINGS) {
    const from = config.sources?.[s.key] ?? "default";
    let value = fileValueAt(config as unknown as Record<string, unknown>, s.key);
    if (s.key === "timing") value = from === "default" ? "built in" : "overridden";
    if (value === undefined) continue;
    // A password read from a file shows as set, from the file setting's source.
    settings[s.key] = { value: s.secret === true || (s.key === "nats.pass" && from === "default") ? "(set)" : value, from: s.key === "nats.pass" && from === "default" ? (config.sources?.["nats.passFile"] ?? "default") : from };
  }
  return { settings, ignoredEnv: CLIENT_ONLY_ENV.filter((name) => env[name] !== undefined && env[name] !== "") };
}

const TOKEN = /^[A-Za-z0-9_-]+$/;
const SUBJECT_TOKENS = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

/** Every key of the file must be a setting (nested objects: nats, nats.tls, timing). */
function checkKnownKeys(fromFile: Record<string, unknown>, file: string): void {
  const known = new Set(SETTINGS.map((s) => s.key));
  const objects = new Set(["nats", "nats.tls"]);
  const walk = (obj: Record<string, unknown>, path: string): void => {
    for (const [k, v] of Object.entries(obj)) {
      const key = path === "" ? k : `${path}.${k}`;
      if (objects.has(key)) {
        if (typeof v !== "object" || v === null || Array.isArray(v)) throw new ConfigError(`config file ${file}: "${key}" must be an object`);
        walk(v as Record<string, unknown>, key);
      } else if (!known.has(key)) {
        throw new ConfigError(`config file ${file}: unknown key "${key}" (known: ${[...known].join(", ")})`);
      }
    }
  };
  walk(fromFile, "");
}

function fileValueAt(obj: Record<string, unknown>, key: string): unknown {
  let x: unknown = obj;
  for (const part of key.split(".")) {
    if (typeof x !== "object" || x === null) return undefined;
    x = (x as Record<string, unknown>)[part];
  }
  return x;
}

function timingOf(v: { value: unknown; where: string } | undefined): Timing {
  if (v === undefined) return DEFAULT_TIMING;
  if (typeof v.value !== "object" || v.value === null || Array.isArray(v.value)) throw new ConfigError(`timing (${v.where}) must be an object`);
  const out: Record<string, number> = { ...(DEFAULT_TIMING as unknown as Record<string, number>) };
  for (const [k, x] of Object.entries(v.value)) {
    if (!(k in DEFAULT_TIMING)) throw new ConfigError(`timing.${k} (${v.where}) is not a timing setting (known: ${Object.keys(DEFAULT_TIMING).join(", ")})`);
    if (typeof x !== "number" || !Number.isFinite(x) || x < 0) throw new ConfigError(`timing.${k} (${v.where}) must be a non-negative number, got ${show(x)}`);
    out[k] = x;
  }
  return out as unknown as Timing;
}

function readable(key: string, path: string, where: string): void {
  try {
    readFileSync(path);
  } catch (e) {
    throw new ConfigError(`${key} (${where}): cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** The first line of a password file (a trailing newline is not part of the password). */
export function readPassword(path: string): string {
  const first = readFileSync(path, "utf8").split(/\r?\n/)[0]!;
  if (first === "") throw new ConfigError(`nats.passFile ${path}: the first line is empty`);
  return first;
}

function show(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 80 ? `${s.slice(0, 80)}...` : s;
}
