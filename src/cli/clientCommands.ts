// `paxosstore get|put|delete|cas|txn|scan|status`: the client from the command line.
//
// With no options it reaches the local cluster `paxosstore dev` runs (nats://127.0.0.1:4222,
// cluster dev); flags and PAXOSSTORE_* environment variables reach any other. Output is for
// people by default and JSON with --json; errors are one line on stderr (never a stack trace)
// and an exit code a script can branch on (EXIT below, printed by --help).

import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import type { CompareRequest, TxnWriteRequest } from "../protocol/api.js";
import { valueAsText } from "../protocol/codec.js";
import { PaxosStoreError, toWireError } from "../protocol/errors.js";
import { validateRequest } from "../protocol/validate.js";
import { connect, DEFAULT_SERVERS, DEFAULT_TIMEOUT_MS, type ConnectOptions, type PaxosStoreClient } from "../client/client.js";
import type { Entry } from "../client/results.js";

/** Exit codes: API for scripts. Never renumber. */
export const EXIT = {
  ok: 0,
  /** get: the key does not exist. */
  notFound: 1,
  /** Bad usage or a request the cluster refused as malformed or too large. */
  usage: 2,
  /** cas: the key is at another version; txn: the compares failed (the failure branch ran). */
  conflict: 3,
  /** NATS or the cluster could not be reached, or the deadline passed (unavailable, timeout). */
  unavailable: 4,
  /** Anything else (an internal error on a node, an unexpected failure). */
  other: 5,
  /** NATS refused the credentials or the permissions (unauthorized): fix the config, do not retry. */
  unauthorized: 6,
} as const;

const EXIT_HELP = `
Exit codes:
  0  ok
  1  get: the key does not exist
  2  usage error, or the request was refused as bad_request / too_large
  3  conflict: cas found another version; txn compares failed (its failure branch ran)
  4  unavailable or timeout: NATS or the cluster cannot be reached, or no answer in time
     (a write that timed out may or may not have been applied: retry it with --request-id)
  5  any other error
  6  unauthorized: NATS refused the credentials, or this user may not use the subjects or
     inbox prefix the call needs (do not retry: fix the user, password or permissions)

Connection (flags win over environment variables):
  --servers     PAXOSSTORE_NATS          default ${DEFAULT_SERVERS}
  --cluster     PAXOSSTORE_CLUSTER       default dev
  --subject-prefix  PAXOSSTORE_PREFIX    default paxosstore.<cluster>
  --user/--pass PAXOSSTORE_NATS_USER, PAXOSSTORE_NATS_PASS
  --pass-file   PAXOSSTORE_NATS_PASS_FILE  (the password from a file: not in ps or history)
  --inbox-prefix  PAXOSSTORE_INBOX_PREFIX  default _INBOX (e.g. _INBOX_myapp: see OPERATIONS.md)
  --token       PAXOSSTORE_NATS_TOKEN
  --creds       PAXOSSTORE_NATS_CREDS    --nkey PAXOSSTORE_NATS_NKEY
  --tls-ca/--tls-cert/--tls-key  PAXOSSTORE_NATS_TLS_CA, _CERT, _KEY
  --encoding    PAXOSSTORE_ENCODING      default msgpack
  --timeout     PAXOSSTORE_TIMEOUT_MS    default ${DEFAULT_TIMEOUT_MS}`;

/** Our own usage errors (exit 2). */
class UsageError extends Error {}

/** Where the commands read and write: the process, or a test's buffers. */
export interface CliIo {
  readonly env: NodeJS.ProcessEnv;
  /** Standard input; when `isTTY`, no value or spec is read from it unless asked with `-`. */
  readonly stdin: AsyncIterable<Uint8Array | string> & { readonly isTTY?: boolean };
  out(chunk: string | Uint8Array): void;
  err(text: string): void;
  /** The command is done: exit with this code once output is flushed. */
  done(code: number): void;
  /** A usage error commander already reported: stop at once. */
  abort(code: number): never;
}

export function processIo(): CliIo {
  return {
    env: process.env,
    stdin: process.stdin,
    out: (chunk) => void process.stdout.write(chunk),
    err: (text) => void process.stderr.write(text),
    done: (code) => void (process.exitCode = code),
    abort: (code) => process.exit(code),
  };
}

interface CommonOptions {
  servers?: string;
  cluster?: string;
  subjectPrefix?: string;
  node?: string;
  user?: string;
  pass?: string;
  passFile?: string;
  inboxPrefix?: string;
  token?: string;
  creds?: string;
  nkey?: string;
  tls?: boolean;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  encoding?: string;
  timeout?: string;
  json?: boolean;
}

export function registerClientCommands(program: Command, io: CliIo = processIo()): void {
  const command = (nameAndArgs: string, description: string): Command => program.command(nameAndArgs).description(description);
  const withConnection = (cmd: Command): Command => connectionOptions(cmd, io);
  const run = (name: string, handler: Handler): ((...args: any[]) => Promise<void>) => runner(name, handler, io);
  const log = (line: string): void => io.out(line + "\n");
  const printJson = (x: unknown): void => io.out(JSON.stringify(x) + "\n");

  withConnection(command("get <key>", "read a key (linearizable unless --stale); prints its value")
    .option("-g, --group <group>", "the key's group (default: the key is its own group)")
    .option("--stale", "read one replica's data without asking the others (faster, may be behind)")
    .option("--raw", "print the value's bytes exactly, with no newline added"))
    .action(run("get", async (client, key: string, o: CommonOptions & { group?: string; stale?: boolean; raw?: boolean }) => {
      const r = await client.group(o.group ?? key).get(key, { consistency: o.stale ? "stale" : "linearizable" });
      if (o.json) {
        printJson(r.found ? { ok: true, found: true, key, ...jsonValue(r.value), version: r.version, index: r.index } : { ok: true, found: false, key, index: r.index });
      } else if (r.found) {
        io.out(r.value);
        // A newline for the terminal, unless asked for the exact bytes or already there.
        if (o.raw !== true && (r.value.length === 0 || r.value[r.value.length - 1] !== 0x0a)) io.out("\n");
      }
      if (!r.found) {
        if (!o.json) io.err(`paxosstore get: not found: ${key}\n`);
        return EXIT.notFound;
      }
      return EXIT.ok;
    }));

  withConnection(command("put <key> [value]", "write a key; the value from the argument, --file PATH, or stdin (`-` or piped)")
    .option("-g, --group <group>", "the key's group (default: the key is its own group)")
    .option("-f, --file <path>", "read the value from this file")
    .option("--request-id <id>", "idempotency key: a retry with the same id is applied at most once"))
    .action(run("put", async (client, key: string, value: string | undefined, o: CommonOptions & { group?: string; file?: string; requestId?: string }) => {
      const bytes = await valueInput(value, o.file, io);
      const r = await client.group(o.group ?? key).put(key, bytes, { requestId: o.requestId });
      if (o.json) printJson({ ok: true, ...r });
      else log(`OK version ${r.version}`);
      return EXIT.ok;
    }));

  withConnection(command("delete <key>", "delete a key (deleting an absent key succeeds)")
    .alias("del")
    .option("-g, --group <group>", "the key's group (default: the key is its own group)")
    .option("--request-id <id>", "idempotency key: a retry with the same id is applied at most once"))
    .action(run("delete", async (client, key: string, o: CommonOptions & { group?: string; requestId?: string }) => {
      const r = await client.group(o.group ?? key).delete(key, { requestId: o.requestId });
      if (o.json) printJson({ ok: true, ...r });
      else log(`OK version ${r.version}${r.existed ? "" : " (the key did not exist)"}`);
      return EXIT.ok;
    }));

  withConnection(command("cas <key> <version> [value]", "write a key only if it is at <version> now (0: only if absent); exit 3 on conflict")
    .option("-g, --group <group>", "the key's group (default: the key is its own group)")
    .option("-f, --file <path>", "read the value from this file")
    .option("--request-id <id>", "idempotency key: a retry with the same id is applied at most once"))
    .action(run("cas", async (client, key: string, version: string, value: string | undefined, o: CommonOptions & { group?: string; file?: string; requestId?: string }) => {
      const expected = nonNegativeInt(version, "<version>");
      const bytes = await valueInput(value, o.file, io);
      const r = await client.group(o.group ?? key).cas(key, expected, bytes, { requestId: o.requestId });
      if (o.json) printJson({ ok: true, ...r });
      else log(`OK version ${r.version}`);
      return EXIT.ok;
    }));

  withConnection(command("txn [spec]", "an all-or-nothing txn in one group, from a JSON spec (argument, --file, or stdin); exit 3 when its compares fail")
    .option("-g, --group <group>", "the group (or \"group\" in the spec)")
    .option("-f, --file <path>", "read the spec from this file")
    .option("--request-id <id>", "idempotency key (or \"requestId\" in the spec)")
    .addHelpText(
      "after",
      `
The spec is the wire API's txn (docs/API.md) without "op":
  {"group":"user:42",
   "compares":[{"key":"balance","version":5},{"key":"lock","exists":false}],
   "success":[{"op":"put","key":"balance","value":"90"},{"op":"delete","key":"pending"}],
   "failure":[]}
Values are "value" (text) or "valueBase64" (bytes).`,
    ))
    .action(run("txn", async (client, spec: string | undefined, o: CommonOptions & { group?: string; file?: string; requestId?: string }) => {
      const t = await txnInput(spec, o, io);
      const r = await client.group(t.group).txn(t, { requestId: t.requestId });
      if (o.json) printJson({ ok: true, ...r });
      else if (r.succeeded) log(`OK succeeded at version ${r.version}`);
      else log(`compares failed: the failure branch ran at version ${r.version} (current versions ${r.currentVersions.join(", ") || "none"})`);
      return r.succeeded ? EXIT.ok : EXIT.conflict;
    }));

  withConnection(command("scan <group>", "list a group's keys in key order, a page at a time (--all for every page)")
    .option("-p, --prefix <prefix>", "only keys starting with this")
    .option("--after <key>", "start after this key (the `next` of the previous page)")
    .option("-l, --limit <n>", "keys per page, 1..1000 (default 100)")
    .option("-a, --all", "follow the cursor through every page")
    .option("--stale", "read one replica's data without asking the others"))
    .action(run("scan", async (client, group: string, o: CommonOptions & { prefix?: string; after?: string; limit?: string; all?: boolean; stale?: boolean }) => {
      const options = {
        prefix: o.prefix,
        after: o.after,
        limit: o.limit === undefined ? undefined : nonNegativeInt(o.limit, "--limit"),
        consistency: o.stale ? ("stale" as const) : ("linearizable" as const),
      };
      const g = client.group(group);
      const items: Entry[] = [];
      let next: string | undefined;
      let index = 0;
      for await (const page of o.all ? g.scanPages(options) : single(g.scan(options))) {
        if (o.json) items.push(...page.items);
        else for (const it of page.items) log(`${it.key}\t${displayValue(it.value)}`);
        next = page.next;
        index = page.index;
      }
      if (o.json) {
        const out = items.map((it) => ({ key: it.key, ...jsonValue(it.value), version: it.version }));
        printJson(next === undefined ? { ok: true, items: out, index } : { ok: true, items: out, next, index });
      } else if (next !== undefined) {
        io.err(`(more keys follow: --after ${shellQuote(next)}, or --all)\n`);
      }
      return EXIT.ok;
    }));

  withConnection(command("status", "ask every member (or --node) how it is; exit 4 unless all answer"))
    .action(run("status", async (client, o: CommonOptions) => {
      const timeoutMs = Math.min(client.timeoutMs, 2_000);
      const nodes = o.node !== undefined ? [o.node] : (client.members ?? (await client.status()).members);
      const answers = await Promise.all(
        nodes.map(async (node) => {
          try {
            return { node, ok: true as const, status: await client.status(node, { timeoutMs }) };
          } catch (e) {
            return { node, ok: false as const, error: asStoreError(e) };
          }
        }),
      );
      if (o.json) {
        printJson({
          ok: answers.every((a) => a.ok),
          cluster: client.cluster,
          nodes: answers.map((a) => (a.ok ? { ok: true, ...a.status } : { ok: false, node: a.node, error: toWireError(a.error) })),
        });
      } else {
        const first = answers.find((a) => a.ok);
        const members = first?.ok ? first.status.members : nodes;
        log(`cluster ${client.cluster}: ${members.length} member${members.length === 1 ? "" : "s"} (${members.join(", ")})`);
        const width = Math.max(...nodes.map((n) => n.length));
        for (const a of answers) {
          if (a.ok) {
            const s = a.status;
            log(`${a.node.padEnd(width)}  up    v${s.version}  uptime ${duration(s.uptimeMs)}  groups ${s.groupsActive}  sees ${s.membersSeen.join(",")}${s.membership !== undefined ? `  epoch ${s.membership.epoch} ${s.membership.phase}${s.membership.left > 0 ? ` (${s.membership.left} groups to move)` : ""}${s.membership.removed ? " REMOVED" : ""}` : ""}`);
          } else {
            log(`${a.node.padEnd(width)}  DOWN  ${a.error.message}`);
          }
        }
      }
      return answers.every((a) => a.ok) ? EXIT.ok : EXIT.unavailable;
    }));

  withConnection(command("members [action] [node] [with]", "the membership: show (default) | add <node> | remove <node> | replace <node> <with> | advance; --wait follows a change to its end"))
    .option("--wait", "after the change: advance it step by step, printing progress, until it is stable")
    .option("--wait-timeout <ms>", "give up waiting after this long (exit 4)", "600000")
    .action(run("members", async (client, action: string | undefined, node: string | undefined, by: string | undefined, o: CommonOptions & { wait?: boolean; waitTimeout: string }) => {
      const act = (action ?? "show") as "show" | "add" | "remove" | "replace" | "advance";
      if (!["show", "add", "remove", "replace", "advance"].includes(act)) throw new UsageError(`unknown action ${JSON.stringify(action)}: show | add | remove | replace | advance`);
      if ((act === "add" || act === "remove" || act === "replace") && node === undefined) throw new UsageError(`members ${act} needs a node id`);
      if (act === "replace" && by === undefined) throw new UsageError("members replace needs the node to replace and its replacement");
      const show = (r: Awaited<ReturnType<typeof client.membersAdmin>>): void => {
        if (o.json) return printJson({ ok: true, ...r });
        const v = r.view;
        log(`epoch ${v.epoch} ${v.phase}: members ${v.members.join(",")}${v.previous.length > 0 ? ` (from ${v.previous.join(",")})` : ""}; groups moved ${r.moved}, left ${r.left}${r.waitingFor !== null ? `; waiting for ${r.waitingFor}` : ""}`);
        for (const n of r.nodes) {
          const m = n.membership;
          log(m === null ? `  ${n.node}  no answer` : `  ${n.node}  epoch ${m.epoch} ${m.phase}  holds ${m.held}  moved ${m.moved}  left ${m.left}${m.removedHeld > 0 ? `  old copies ${m.removedHeld}` : ""}${m.removed ? "  REMOVED (may be stopped)" : ""}`);
        }
      };
      let r = await client.membersAdmin(act, node, by);
      show(r);
      if (!o.wait) return EXIT.ok;
      const until = Date.now() + Number(o.waitTimeout);
      while (r.view.phase !== "stable") {
        if (Date.now() > until) return EXIT.unavailable;
        await new Promise((res) => setTimeout(res, 1_000));
        try {
          r = await client.membersAdmin("advance");
        } catch (e) {
          log(`(advance: ${(e as Error).message}; retrying)`);
          continue;
        }
        show(r);
      }
      return EXIT.ok;
    }));

  program.addHelpText("after", "\nget, put, delete, cas, txn, scan, status: see `paxosstore help <command>` for options and exit codes.");
}

/** The connection and output options, the exit-code help, and usage errors as exit 2. */
function connectionOptions(cmd: Command, io: CliIo): Command {
  return cmd
    .option("-s, --servers <urls>", "NATS server URLs, comma-separated")
    .option("-c, --cluster <name>", "cluster name")
    .option("--subject-prefix <prefix>", "NATS subject prefix of the cluster")
    .option("-n, --node <id>", "send to this node only (no failover)")
    .option("--user <user>", "NATS user")
    .option("--pass <pass>", "NATS password (visible in ps: prefer --pass-file)")
    .option("--pass-file <file>", "read the NATS password from this file (first line)")
    .option("--inbox-prefix <prefix>", "prefix of this client's reply subjects, e.g. _INBOX_myapp")
    .option("--token <token>", "NATS token")
    .option("--creds <file>", "NATS .creds file")
    .option("--nkey <file>", "NATS nkey seed file")
    .option("--tls", "use TLS (implied by the --tls-* files)")
    .option("--tls-ca <file>", "CA certificate for TLS")
    .option("--tls-cert <file>", "client certificate for TLS")
    .option("--tls-key <file>", "client key for TLS")
    .option("--encoding <encoding>", "json or msgpack")
    .option("-t, --timeout <ms>", "deadline of the call, retries included")
    .option("--json", "print JSON (errors too, on stdout; one line also on stderr)")
    .addHelpText("after", EXIT_HELP)
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    // Help is not an error; any other commander error is a usage error (it has already
    // printed its one line).
    .exitOverride((err) => io.abort(err.exitCode === 0 ? EXIT.ok : EXIT.usage));
}

type Handler = (client: PaxosStoreClient, ...args: any[]) => Promise<number>;

/** Wraps a command's work: connect, run, map every failure to one stderr line and an exit code. */
function runner(name: string, handler: Handler, io: CliIo): (...args: any[]) => Promise<void> {
  return async (...args: any[]) => {
    // commander passes the arguments, then the options object, then the command.
    const options = args[args.length - 2] as CommonOptions;
    let client: PaxosStoreClient | null = null;
    let code: number;
    try {
      client = await connect(connectOptionsOf(options, io.env));
      if (client.members === null && options.node === undefined) {
        // Nobody answered the status at connect: one quick try more gives a clear error now
        // rather than a call that retries until its deadline.
        await client.refreshMembers(client.timeoutMs, 1);
      }
      code = await handler(client, ...args.slice(0, -1));
    } catch (e) {
      code = report(name, e, options.json === true, io);
    } finally {
      await client?.close();
    }
    io.done(code);
  };
}

function report(name: string, e: unknown, json: boolean, io: CliIo): number {
  if (e instanceof UsageError) {
    io.err(`paxosstore ${name}: ${e.message}\n`);
    if (json) io.out(JSON.stringify({ ok: false, error: { code: "usage", message: e.message } }) + "\n");
    return EXIT.usage;
  }
  const error = asStoreError(e);
  io.err(`paxosstore ${name}: ${oneLine(error.message)}\n`);
  if (json) io.out(JSON.stringify({ ok: false, error: toWireError(error) }) + "\n");
  switch (error.code) {
    case "bad_request":
    case "too_large":
      return EXIT.usage;
    case "conflict":
      return EXIT.conflict;
    case "unavailable":
    case "timeout":
      return EXIT.unavailable;
    case "unauthorized":
      return EXIT.unauthorized;
    default:
      return EXIT.other;
  }
}

function asStoreError(e: unknown): PaxosStoreError {
  if (e instanceof PaxosStoreError) return e;
  const message = e instanceof Error ? e.message : String(e);
  // Files we were asked to read (--file, --creds, ...) fail with Node's errors: say which.
  const code = (e as { code?: unknown } | null)?.code;
  return new PaxosStoreError("internal", typeof code === "string" && code.startsWith("E") ? message : `unexpected error: ${message}`);
}

export function connectOptionsOf(o: CommonOptions, env: NodeJS.ProcessEnv): ConnectOptions {
  const pick = (flag: string | undefined, name: string): string | undefined => {
    const v = flag ?? env[name];
    return v === undefined || v === "" ? undefined : v;
  };
  const encoding = pick(o.encoding, "PAXOSSTORE_ENCODING") ?? "msgpack";
  if (encoding !== "json" && encoding !== "msgpack") throw new UsageError(`--encoding must be json or msgpack, got ${JSON.stringify(encoding)}`);
  const timeout = pick(o.timeout, "PAXOSSTORE_TIMEOUT_MS");
  const timeoutMs = timeout === undefined ? DEFAULT_TIMEOUT_MS : nonNegativeInt(timeout, "--timeout");
  if (timeoutMs < 1) throw new UsageError("--timeout must be at least 1 (ms)");
  const caFile = pick(o.tlsCa, "PAXOSSTORE_NATS_TLS_CA");
  const certFile = pick(o.tlsCert, "PAXOSSTORE_NATS_TLS_CERT");
  const keyFile = pick(o.tlsKey, "PAXOSSTORE_NATS_TLS_KEY");
  const tls = caFile !== undefined || certFile !== undefined || keyFile !== undefined ? { caFile, certFile, keyFile } : o.tls === true ? true : undefined;
  const clean = <T extends object>(x: T): T => Object.fromEntries(Object.entries(x).filter(([, v]) => v !== undefined)) as T;
  return clean({
    servers: pick(o.servers, "PAXOSSTORE_NATS") ?? DEFAULT_SERVERS,
    cluster: pick(o.cluster, "PAXOSSTORE_CLUSTER") ?? "dev",
    prefix: pick(o.subjectPrefix, "PAXOSSTORE_PREFIX"),
    node: o.node,
    user: pick(o.user, "PAXOSSTORE_NATS_USER"),
    pass: passwordOf(pick(o.pass, "PAXOSSTORE_NATS_PASS"), pick(o.passFile, "PAXOSSTORE_NATS_PASS_FILE")),
    inboxPrefix: pick(o.inboxPrefix, "PAXOSSTORE_INBOX_PREFIX"),
    token: pick(o.token, "PAXOSSTORE_NATS_TOKEN"),
    credsFile: pick(o.creds, "PAXOSSTORE_NATS_CREDS"),
    nkeySeedFile: pick(o.nkey, "PAXOSSTORE_NATS_NKEY"),
    tls: tls === undefined ? undefined : tls === true ? true : clean(tls),
    encoding,
    timeoutMs,
    name: "paxosstore-cli",
  });
}

/** The password given directly or read from a file (its first line), never both. */
function passwordOf(pass: string | undefined, file: string | undefined): string | undefined {
  if (file === undefined) return pass;
  if (pass !== undefined) throw new UsageError("give the NATS password with --pass or --pass-file, not both");
  try {
    return readFileSync(file, "utf8").split(/\r?\n/)[0]!;
  } catch (e) {
    throw new UsageError(`cannot read the password file ${file}: ${(e as Error).message}`);
  }
}

// ---- Input ------------------------------------------------------------------------------------

/** A value from the argument, --file, or stdin (`-`, or no argument with stdin not a terminal). */
async function valueInput(value: string | undefined, file: string | undefined, io: CliIo): Promise<Uint8Array | string> {
  if (file !== undefined) {
    if (value !== undefined) throw new UsageError("give the value as an argument or with --file, not both");
    return readInput(file);
  }
  if (value === "-" || (value === undefined && io.stdin.isTTY !== true)) return readStdin(io);
  if (value === undefined) throw new UsageError("no value: give it as an argument, with --file PATH, or on stdin (`-` or a pipe)");
  return value;
}

async function readInput(path: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (e) {
    throw new UsageError(`cannot read ${path}: ${(e as Error).message}`);
  }
}

async function readStdin(io: CliIo): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const chunk of io.stdin) chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  return new Uint8Array(Buffer.concat(chunks));
}

interface TxnInput {
  readonly group: string;
  readonly compares?: readonly CompareRequest[];
  readonly success?: readonly TxnWriteRequest[];
  readonly failure?: readonly TxnWriteRequest[];
  readonly requestId?: string;
}

/** The txn spec (JSON) from the argument, --file or stdin, checked like a node would. */
async function txnInput(spec: string | undefined, o: { group?: string; file?: string; requestId?: string }, io: CliIo): Promise<TxnInput> {
  let text: string;
  if (o.file !== undefined) {
    if (spec !== undefined) throw new UsageError("give the spec as an argument or with --file, not both");
    text = new TextDecoder().decode(await readInput(o.file));
  } else if (spec === "-" || (spec === undefined && io.stdin.isTTY !== true)) {
    text = new TextDecoder().decode(await readStdin(io));
  } else if (spec === undefined) {
    throw new UsageError("no txn spec: give it as an argument, with --file PATH, or on stdin");
  } else {
    text = spec;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`the txn spec is not JSON: ${(e as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new UsageError('the txn spec must be a JSON object like {"group":"g","success":[...]}');
  const body = { ...(parsed as Record<string, unknown>) };
  if ("op" in body && body.op !== "txn") throw new UsageError(`the txn spec has "op": ${JSON.stringify(body.op)}`);
  delete body.op;
  if (o.group !== undefined) {
    if (body.group !== undefined && body.group !== null && body.group !== o.group) throw new UsageError(`--group ${o.group} and the spec's group ${JSON.stringify(body.group)} differ`);
    body.group = o.group;
  }
  if (o.requestId !== undefined) body.requestId = o.requestId;
  // The same checks as the nodes', for the same one-line errors before anything is sent.
  const checked = validateRequest({ op: "txn", ...body });
  if (!checked.ok) throw checked.error;
  const list = (x: unknown): Record<string, unknown>[] | undefined => (Array.isArray(x) ? x.map((item) => withBytes(item as Record<string, unknown>)) : undefined);
  return {
    group: body.group as string,
    compares: list(body.compares) as CompareRequest[] | undefined,
    success: list(body.success) as TxnWriteRequest[] | undefined,
    failure: list(body.failure) as TxnWriteRequest[] | undefined,
    requestId: typeof body.requestId === "string" ? body.requestId : undefined,
  };
}

/** A spec item with nulls dropped and `valueBase64` turned into a `value` of bytes. */
function withBytes(item: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(item)) {
    if (v === null) continue;
    if (k === "valueBase64") out.value = new Uint8Array(Buffer.from(v as string, "base64"));
    else out[k] = v;
  }
  return out;
}

function nonNegativeInt(s: string, what: string): number {
  if (!/^\d+$/.test(s.trim())) throw new UsageError(`${what} must be a non-negative integer, got ${JSON.stringify(s)}`);
  const n = Number(s);
  if (!Number.isSafeInteger(n)) throw new UsageError(`${what} is too large: ${s}`);
  return n;
}

// ---- Output -----------------------------------------------------------------------------------

/** A value in JSON output: `value` when it is text, else `valueBase64` (as the wire API does). */
function jsonValue(value: Uint8Array): { value: string } | { valueBase64: string } {
  const text = valueAsText(value);
  return text === null ? { valueBase64: Buffer.from(value).toString("base64") } : { value: text };
}

/** A value on one line: text as is when it has no tab or newline, else quoted; bytes as base64. */
function displayValue(value: Uint8Array): string {
  const text = valueAsText(value);
  if (text === null) return `base64:${Buffer.from(value).toString("base64")}`;
  return /[\t\n\r]/.test(text) || text.startsWith('"') || text.startsWith("base64:") ? JSON.stringify(text) : text;
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, " ");
}

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_\-./:@%+=,]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`;
}

function duration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${s % 60}s`;
  const h = Math.floor(m / 60);
  return h < 48 ? `${h}h${m % 60}m` : `${Math.floor(h / 24)}d${h % 24}h`;
}

async function* single<T>(p: Promise<T>): AsyncGenerator<T, void, undefined> {
  yield await p;
}
