// A node's configuration: from a JSON file, overridden by PAXOSSTORE_* environment variables,
// overridden by command-line flags. Every field is checked here, once, with a clear message,
// so a bad config fails at start and never later.

import { readFileSync } from "node:fs";
import { DEFAULT_LIMITS, DEFAULT_TIMING, type BreakName, type Timing } from "../protocol/config.js";

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
}

export interface NodeConfig {
  readonly nodeId: string;
  readonly cluster: string;
  /** Every node of the cluster, this one included. */
  readonly members: readonly string[];
  readonly nats: NatsOptions;
  readonly dataDir: string;
  /** Subject prefix; default `paxosstore.<cluster>`. */
  readonly prefix: string;
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
  /** TEST-ONLY deliberate protocol bugs (PAXOSSTORE_BREAK, src/actors/testHooks.ts); unset in production. */
  readonly breaks?: ReadonlySet<BreakName>;
  /** Port of the Prometheus /metrics listener; 0 = off (the default). */
  readonly metricsPort: number;
  /**
   * At most this many key-groups held in memory; over it, the least recently used quiescent
   * groups are passivated first. Bounds a node's memory whatever the number of groups.
   */
  readonly maxActiveGroups: number;
}

export class ConfigError extends Error {
  readonly code = "CONFIG_INVALID";
}

const TOKEN = /^[A-Za-z0-9_-]+$/;

/** Reads the file (if any) and the environment; `overrides` are command-line flags. */
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
  }
  const fileNats = (fromFile.nats ?? {}) as Record<string, unknown>;
  const pick = (flag: string, envName: string, fileValue: unknown): unknown =>
    overrides[flag] ?? env[envName] ?? fileValue;

  const nodeId = str(pick("nodeId", "PAXOSSTORE_NODE_ID", fromFile.nodeId), "nodeId (PAXOSSTORE_NODE_ID)");
  const cluster = str(pick("cluster", "PAXOSSTORE_CLUSTER", fromFile.cluster) ?? "dev", "cluster (PAXOSSTORE_CLUSTER)");
  const members = list(pick("members", "PAXOSSTORE_MEMBERS", fromFile.members), "members (PAXOSSTORE_MEMBERS)");
  for (const id of [nodeId, cluster, ...members])
    if (!TOKEN.test(id)) throw new ConfigError(`"${id}" may use only letters, digits, "_" and "-" (it is part of NATS subjects)`);
  if (!members.includes(nodeId)) throw new ConfigError(`nodeId "${nodeId}" is not one of the members ${members.join(",")}`);
  if (new Set(members).size !== members.length) throw new ConfigError(`members list has duplicates: ${members.join(",")}`);
  const servers = list(pick("nats", "PAXOSSTORE_NATS", fileNats.servers) ?? "nats://127.0.0.1:4222", "nats servers (PAXOSSTORE_NATS)");
  const optional = (flag: string, envName: string, v: unknown): string | undefined => {
    const x = pick(flag, envName, v);
    return x === undefined || x === "" ? undefined : String(x);
  };
  const tlsFile = fileNats.tls as Record<string, unknown> | undefined;
  const caFile = optional("tlsCa", "PAXOSSTORE_NATS_TLS_CA", tlsFile?.caFile);
  const certFile = optional("tlsCert", "PAXOSSTORE_NATS_TLS_CERT", tlsFile?.certFile);
  const keyFile = optional("tlsKey", "PAXOSSTORE_NATS_TLS_KEY", tlsFile?.keyFile);
  const nats: NatsOptions = {
    servers,
    user: optional("user", "PAXOSSTORE_NATS_USER", fileNats.user),
    pass: optional("pass", "PAXOSSTORE_NATS_PASS", fileNats.pass),
    token: optional("token", "PAXOSSTORE_NATS_TOKEN", fileNats.token),
    credsFile: optional("creds", "PAXOSSTORE_NATS_CREDS", fileNats.credsFile),
    nkeySeedFile: optional("nkey", "PAXOSSTORE_NATS_NKEY", fileNats.nkeySeedFile),
    tls: caFile || certFile || keyFile ? { caFile, certFile, keyFile } : undefined,
  };
  const dataDir = str(pick("dataDir", "PAXOSSTORE_DATA_DIR", fromFile.dataDir) ?? `./.data/${nodeId}`, "dataDir (PAXOSSTORE_DATA_DIR)");
  const prefix = str(pick("prefix", "PAXOSSTORE_PREFIX", fromFile.prefix) ?? `paxosstore.${cluster}`, "prefix");
  return {
    nodeId,
    cluster,
    members,
    nats,
    dataDir,
    prefix,
    replication: int(pick("replication", "PAXOSSTORE_REPLICATION", fromFile.replication) ?? 3, "replication", 1, 7),
    passivateAfterMs: int(pick("passivateAfterMs", "PAXOSSTORE_PASSIVATE_AFTER_MS", fromFile.passivateAfterMs) ?? 60_000, "passivateAfterMs", 10, 86_400_000),
    requestTimeoutMs: int(pick("requestTimeoutMs", "PAXOSSTORE_REQUEST_TIMEOUT_MS", fromFile.requestTimeoutMs) ?? 5_000, "requestTimeoutMs", 10, 600_000),
    requestMemory: int(pick("requestMemory", "PAXOSSTORE_REQUEST_MEMORY", fromFile.requestMemory) ?? DEFAULT_LIMITS.requestMemory, "requestMemory", 1, 1_000_000),
    timing: { ...DEFAULT_TIMING, ...((fromFile.timing as Partial<Timing>) ?? {}) },
    logLevel: str(pick("logLevel", "PAXOSSTORE_LOG_LEVEL", fromFile.logLevel) ?? "info", "logLevel"),
    newNode: bool(pick("newNode", "PAXOSSTORE_NEW_NODE", fromFile.newNode) ?? false, "newNode (PAXOSSTORE_NEW_NODE)"),
    ...capacitySettings(pick, fromFile),
  };
}

/** Metrics and memory bounds (issue 11). */
function capacitySettings(
  pick: (flag: string, envName: string, fileValue: unknown) => unknown,
  fromFile: Record<string, unknown>,
): Pick<NodeConfig, "metricsPort" | "maxActiveGroups"> {
  return {
    metricsPort: int(pick("metricsPort", "PAXOSSTORE_METRICS_PORT", fromFile.metricsPort) ?? 0, "metricsPort", 0, 65535),
    maxActiveGroups: int(pick("maxActiveGroups", "PAXOSSTORE_MAX_ACTIVE_GROUPS", fromFile.maxActiveGroups) ?? 50_000, "maxActiveGroups", 10, 100_000_000),
  };
}

function str(v: unknown, what: string): string {
  if (v === undefined || v === null || v === "") throw new ConfigError(`missing ${what}`);
  if (typeof v !== "string") throw new ConfigError(`${what} must be a string`);
  return v;
}

function list(v: unknown, what: string): string[] {
  if (v === undefined || v === null || v === "") throw new ConfigError(`missing ${what}`);
  const items = Array.isArray(v) ? v.map(String) : String(v).split(",");
  const out = items.map((s) => s.trim()).filter((s) => s.length > 0);
  if (out.length === 0) throw new ConfigError(`${what} is empty`);
  return out;
}

function int(v: unknown, what: string, min: number, max: number): number {
  const n = typeof v === "number" ? v : Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`${what} must be an integer in [${min}, ${max}], got ${String(v)}`);
  return n;
}

function bool(v: unknown, what: string): boolean {
  if (v === true || v === "true" || v === "1") return true;
  if (v === false || v === "false" || v === "0" || v === "") return false;
  throw new ConfigError(`${what} must be true or false, got ${String(v)}`);
}
