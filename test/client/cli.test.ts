// The `paxosstore` client commands against a live cluster: output, --json output, values from
// arguments, files and stdin, and exit codes.
//
// Every command runs at least once as a real process (`node --import tsx src/cli/main.ts ...`
// from the repository root), in one parallel batch: a process costs a second or more of
// start-up. The many variations run the same commands in this process, through
// registerClientCommands with buffers for stdin/stdout/stderr (CliIo), which is the same code
// minus the process around it.

import { spawn } from "node:child_process";
import { Readable } from "node:stream";
import { Command } from "commander";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectOptionsOf, EXIT, registerClientCommands, type CliIo } from "../../src/cli/clientCommands.js";
import { REPO_ROOT } from "../helpers/natsServer.js";
import { startCluster, type TestCluster } from "../helpers/cluster.js";
import { tempDir, type TempDir } from "../helpers/tmp.js";

let c: TestCluster;
let dir: TempDir;
beforeAll(async () => {
  [c, dir] = await Promise.all([startCluster({ nodes: 3, cluster: "cli" }), tempDir("cli")]);
});
afterAll(async () => {
  await c?.close();
  await dir?.cleanup();
});

interface Run {
  readonly code: number | null;
  readonly stdout: Buffer;
  readonly out: string;
  readonly err: string;
}

interface RunOptions {
  readonly stdin?: string | Uint8Array;
  /** Pretend stdin is a terminal (in-process runs only). */
  readonly tty?: boolean;
  readonly env?: Record<string, string>;
  /** Without the test cluster's --servers/--cluster flags. */
  readonly bare?: boolean;
}

/** Runs the CLI as a process with the test cluster's --servers/--cluster (unless `bare`), stdin closed or given. */
function proc(args: string[], options: RunOptions = {}): Promise<Run> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("PAXOSSTORE_") && v !== undefined) env[k] = v;
  Object.assign(env, options.env);
  const connection = options.bare ? [] : ["--servers", c.url, "--cluster", c.cluster];
  const child = spawn(process.execPath, ["--import", "tsx", path.join(REPO_ROOT, "src/cli/main.ts"), ...args, ...connection], {
    cwd: REPO_ROOT,
    env,
    stdio: ["pipe", "pipe", "pipe"],
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on("data", (d: Buffer) => out.push(d));
  child.stderr.on("data", (d: Buffer) => err.push(d));
  child.stdin.end(options.stdin ?? "");
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => {
      const stdout = Buffer.concat(out);
      resolve({ code, stdout, out: stdout.toString("utf8"), err: Buffer.concat(err).toString("utf8") });
    });
  });
}

class Aborted extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

/** Runs the same commands in this process, with buffers for stdio. */
async function cli(args: string[], options: RunOptions = {}): Promise<Run> {
  const out: Buffer[] = [];
  let err = "";
  let code: number | null = null;
  const env: Record<string, string> = { ...options.env };
  const stdin = Object.assign(Readable.from(options.stdin === undefined ? [] : [Buffer.from(options.stdin)]), { isTTY: options.tty === true });
  const io: CliIo = {
    env,
    stdin,
    out: (chunk) => void out.push(Buffer.from(chunk)),
    err: (text) => void (err += text),
    done: (c) => void (code = c),
    abort: (c) => {
      throw new Aborted(c);
    },
  };
  const program = new Command().name("paxosstore").exitOverride();
  registerClientCommands(program, io);
  const connection = options.bare ? [] : ["--servers", c.url, "--cluster", c.cluster];
  try {
    await program.parseAsync([...args, ...connection], { from: "user" });
  } catch (e) {
    if (!(e instanceof Aborted)) throw e;
    code = e.code;
  }
  const stdout = Buffer.concat(out);
  return { code, stdout, out: stdout.toString("utf8"), err };
}

const json = (r: Run): Record<string, any> => JSON.parse(r.out) as Record<string, any>;

/** An error run: the exit code, one line on stderr, no stack trace. */
function expectFailure(r: Run, code: number, pattern: RegExp): void {
  expect(r.code, `${r.out}\n${r.err}`).toBe(code);
  expect(r.err).toMatch(pattern);
  expect(r.err.trim().split("\n"), r.err).toHaveLength(1);
  expect(r.err).not.toMatch(/\n\s+at /);
}

it("defaults reach the local dev cluster; flags win over PAXOSSTORE_* variables", () => {
  expect(connectOptionsOf({}, {})).toMatchObject({ servers: "nats://127.0.0.1:4222", cluster: "dev", encoding: "msgpack", timeoutMs: 5000 });
  const env = { PAXOSSTORE_NATS: "nats://a:1", PAXOSSTORE_CLUSTER: "envc", PAXOSSTORE_NATS_USER: "u", PAXOSSTORE_NATS_PASS: "p", PAXOSSTORE_TIMEOUT_MS: "700", PAXOSSTORE_ENCODING: "json", PAXOSSTORE_NATS_TLS_CA: "/ca.pem" };
  expect(connectOptionsOf({}, env)).toMatchObject({ servers: "nats://a:1", cluster: "envc", user: "u", pass: "p", timeoutMs: 700, encoding: "json", tls: { caFile: "/ca.pem" } });
  expect(connectOptionsOf({ servers: "nats://b:2", cluster: "flag", token: "t" }, env)).toMatchObject({ servers: "nats://b:2", cluster: "flag", token: "t" });
});

it("every command as a real process: output, --json, stdin, exit codes, one-line errors", async () => {
  // The headline: put greeting hello, then get greeting prints hello.
  const put = await proc(["put", "greeting", "hello"]);
  expect(put.code, put.err).toBe(EXIT.ok);
  expect(put.out).toMatch(/^OK version \d+\n$/);
  // Data for the others, written in-process (fast).
  const casKey = await cli(["cas", "proc-counter", "0", "1", "--json"]);
  await cli(["put", "proc-doomed", "x"]);
  await cli(["txn", JSON.stringify({ group: "proc-scan", success: [{ op: "put", key: "a", value: "1" }, { op: "put", key: "b", value: "2" }] })]);
  const txnSpec = JSON.stringify({ group: "proc-txn", compares: [{ key: "k", exists: false }], success: [{ op: "put", key: "k", value: "v" }] });

  const [get, getJson, piped, missing, del, conflict, txn, scan, status, usage, noNats, fromEnv] = await pool(4, [
    () => proc(["get", "greeting"]),
    () => proc(["get", "greeting", "--json", "--encoding", "json"]),
    () => proc(["put", "proc-piped"], { stdin: "from a pipe" }),
    () => proc(["get", "proc-missing"]),
    () => proc(["delete", "proc-doomed", "--json"]),
    () => proc(["cas", "proc-counter", "0", "2"]),
    () => proc(["txn", "-"], { stdin: txnSpec }),
    () => proc(["scan", "proc-scan", "--limit", "1"]),
    () => proc(["status"]),
    () => proc(["cas", "k"]),
    () => proc(["get", "k", "--servers", "nats://127.0.0.1:1", "--timeout", "1000"], { bare: true }),
    () => proc(["get", "greeting"], { bare: true, env: { PAXOSSTORE_NATS: c.url, PAXOSSTORE_CLUSTER: c.cluster } }),
  ]);
  expect(get.code, get.err).toBe(EXIT.ok);
  expect(get.out).toBe("hello\n");
  expect(get.err).toBe("");
  expect(json(getJson)).toEqual({ ok: true, found: true, key: "greeting", value: "hello", version: Number(/\d+/.exec(put.out)![0]), index: expect.any(Number) });
  expect(piped.code, piped.err).toBe(EXIT.ok);
  expect((await cli(["get", "proc-piped", "--raw"])).out).toBe("from a pipe");
  expectFailure(missing, EXIT.notFound, /^paxosstore get: not found: proc-missing\n$/);
  expect(missing.out).toBe("");
  expect(json(del)).toEqual({ ok: true, version: expect.any(Number), existed: true });
  expectFailure(conflict, EXIT.conflict, new RegExp(`^paxosstore cas: conflict: cas on "proc-counter" expected version 0, the key is at version ${json(casKey).version}; nothing was written\n$`));
  expect(txn.code, txn.err).toBe(EXIT.ok);
  expect(txn.out).toMatch(/^OK succeeded at version \d+\n$/);
  expect(scan.out).toBe("a\t1\n");
  expect(scan.err).toBe("(more keys follow: --after a, or --all)\n");
  expect(status.code, status.err).toBe(EXIT.ok);
  expect(status.out).toMatch(/^cluster cli: 3 members \(n1, n2, n3\)\nn1  up /);
  expectFailure(usage, EXIT.usage, /^error: missing required argument 'version'\n$/);
  expectFailure(noNats, EXIT.unavailable, /^paxosstore get: cannot connect to NATS at nats:\/\/127\.0\.0\.1:1/);
  expect(fromEnv.out).toBe("hello\n");
}, 240_000); // a dozen processes of a second or more each; much more on a loaded machine

/** Runs the tasks, at most `n` at a time, and gives their results in order. */
async function pool<T>(n: number, tasks: readonly (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = new Array<T>(tasks.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, tasks.length) }, async () => {
      while (next < tasks.length) {
        const i = next++;
        results[i] = await tasks[i]!();
      }
    }),
  );
  return results;
}

describe("put and get", () => {
  it("put greeting hello, then get greeting prints hello; --json gives the API's shape", async () => {
    const put = await cli(["put", "inproc-greeting", "hello"]);
    expect(put.code, put.err).toBe(EXIT.ok);
    expect(put.out).toMatch(/^OK version \d+\n$/);
    const version = Number(/\d+/.exec(put.out)![0]);
    const [get, getJson, putJson] = await Promise.all([
      cli(["get", "inproc-greeting"]),
      cli(["get", "inproc-greeting", "--json", "--encoding", "json"]),
      cli(["put", "inproc-greeting2", "hi", "--json"]),
    ]);
    expect(get.code).toBe(EXIT.ok);
    expect(get.out).toBe("hello\n");
    expect(get.err).toBe("");
    expect(json(getJson)).toEqual({ ok: true, found: true, key: "inproc-greeting", value: "hello", version, index: expect.any(Number) });
    expect(json(putJson)).toEqual({ ok: true, version: expect.any(Number) });
  });

  it("values from stdin (`-` and piped), from --file (binary), and --raw / --stale reads", async () => {
    const bytes = new Uint8Array([0, 1, 2, 0xff, 10, 0x80, 13]);
    const file = path.join(dir.path, "blob.bin");
    await writeFile(file, bytes);
    const [dash, piped, fromFile, group] = await Promise.all([
      cli(["put", "from-dash", "-"], { stdin: "line one\nline two\n" }),
      cli(["put", "from-pipe"], { stdin: "piped" }),
      cli(["put", "blob", "--file", file]),
      cli(["put", "profile", "Ann", "--group", "user:7"]),
    ]);
    for (const r of [dash, piped, fromFile, group]) expect(r.code, r.err).toBe(EXIT.ok);
    const [getDash, getPipe, raw, blobJson, stale, inGroup, notInOwnGroup] = await Promise.all([
      cli(["get", "from-dash"]),
      cli(["get", "from-pipe", "--raw"]),
      cli(["get", "blob", "--raw"]),
      cli(["get", "blob", "--json"]),
      cli(["get", "from-pipe", "--stale"]),
      cli(["get", "profile", "-g", "user:7"]),
      cli(["get", "profile"]),
    ]);
    expect(getDash.out).toBe("line one\nline two\n"); // a value ending in a newline gets no second one
    expect(getPipe.out).toBe("piped"); // --raw: exactly the bytes
    expect(new Uint8Array(raw.stdout)).toEqual(bytes);
    expect(json(blobJson)).toMatchObject({ found: true, valueBase64: Buffer.from(bytes).toString("base64") });
    expect(stale.out).toBe("piped\n");
    expect(inGroup.out).toBe("Ann\n");
    expect(notInOwnGroup.code).toBe(EXIT.notFound);
  });

  it("get of a missing key: exit 1, a line on stderr; --json says found:false", async () => {
    const [missing, missingJson] = await Promise.all([cli(["get", "no-such-key"]), cli(["get", "no-such-key", "--json"])]);
    expectFailure(missing, EXIT.notFound, /^paxosstore get: not found: no-such-key\n$/);
    expect(missing.out).toBe("");
    expect(missingJson.code).toBe(EXIT.notFound);
    expect(json(missingJson)).toEqual({ ok: true, found: false, key: "no-such-key", index: expect.any(Number) });
  });
});

describe("delete and cas", () => {
  it("delete says whether the key existed; cas succeeds at the right version and exits 3 on conflict", async () => {
    await cli(["put", "doomed", "x"]);
    const del = await cli(["delete", "doomed"]);
    expect(del.code).toBe(EXIT.ok);
    expect(del.out).toMatch(/^OK version \d+\n$/);
    const [again, alias] = await Promise.all([cli(["delete", "doomed", "--json"]), cli(["del", "never-there"])]);
    expect(json(again)).toEqual({ ok: true, version: expect.any(Number), existed: false });
    expect(alias.out).toMatch(/did not exist/);

    const created = await cli(["cas", "counter", "0", "1", "--json"]);
    expect(created.code, created.err).toBe(EXIT.ok);
    const v1 = json(created).version as number;
    const updated = await cli(["cas", "counter", String(v1), "-"], { stdin: "2" });
    expect(updated.code, updated.err).toBe(EXIT.ok);
    const v2 = Number(/\d+/.exec(updated.out)![0]);
    const [conflict, conflictJson] = await Promise.all([cli(["cas", "counter", String(v1), "3"]), cli(["cas", "counter", "0", "3", "--json"])]);
    expectFailure(conflict, EXIT.conflict, new RegExp(`^paxosstore cas: conflict: .*at version ${v2}; nothing was written\\n$`));
    expect(conflictJson.code).toBe(EXIT.conflict);
    expect(json(conflictJson)).toMatchObject({ ok: false, error: { code: "conflict", details: { key: "counter", expected: 0, current: v2 } } });
    expect((await cli(["get", "counter"])).out).toBe("2\n");
  });

  it("a request id makes a retried put answer the first result", async () => {
    const first = await cli(["put", "idem", "v", "--request-id", "cli-req-1", "--json"]);
    const retry = await cli(["put", "idem", "v", "--request-id", "cli-req-1", "--json"]);
    expect(json(retry).version).toBe(json(first).version);
  });
});

describe("txn and scan", () => {
  it("txn from an argument, stdin and a file; exit 3 when the compares fail; bad specs exit 2", async () => {
    const spec = {
      group: "acct:1",
      compares: [{ key: "balance", exists: false }],
      success: [
        { op: "put", key: "balance", value: "100" },
        { op: "put", key: "raw", valueBase64: Buffer.from([1, 2, 3]).toString("base64") },
      ],
      failure: [{ op: "put", key: "seen-failure", value: "yes" }],
    };
    const ok = await cli(["txn", JSON.stringify(spec)]);
    expect(ok.code, ok.err).toBe(EXIT.ok);
    expect(ok.out).toMatch(/^OK succeeded at version \d+\n$/);
    // The same spec again: balance exists now, so the failure branch runs: exit 3.
    const failed = await cli(["txn", "-", "--json"], { stdin: JSON.stringify(spec) });
    expect(failed.code).toBe(EXIT.conflict);
    expect(json(failed)).toMatchObject({ ok: true, succeeded: false, currentVersions: [json(failed).currentVersions[0]], results: [{ op: "put" }] });
    const file = path.join(dir.path, "txn.json");
    const { group: _g, ...withoutGroup } = { ...spec, compares: [{ key: "balance", value: "100" }], success: [{ op: "delete", key: "seen-failure" }] };
    await writeFile(file, JSON.stringify(withoutGroup));
    const fromFile = await cli(["txn", "--file", file, "--group", "acct:1", "--json"]);
    expect(fromFile.code, fromFile.err).toBe(EXIT.ok);
    expect(json(fromFile)).toMatchObject({ succeeded: true, results: [{ op: "delete", existed: true }] });
    const raw = await cli(["get", "raw", "-g", "acct:1", "--raw"]);
    expect(new Uint8Array(raw.stdout)).toEqual(new Uint8Array([1, 2, 3]));

    const [typo, notJson, noGroup, usage] = await Promise.all([
      cli(["txn", JSON.stringify({ group: "acct:1", sucess: [] })]),
      cli(["txn", "{nope"]),
      cli(["txn", JSON.stringify({ success: [] })]),
      cli(["txn"], { stdin: "" }),
    ]);
    expectFailure(typo, EXIT.usage, /^paxosstore txn: bad request: sucess: unknown field/);
    expectFailure(notJson, EXIT.usage, /^paxosstore txn: the txn spec is not JSON/);
    expectFailure(noGroup, EXIT.usage, /group: missing/);
    expectFailure(usage, EXIT.usage, /not JSON/);
  });

  it("scan prints a page and says how to get the next; --all follows the cursors; --json", async () => {
    const keys = Array.from({ length: 7 }, (_, i) => `item/${i}`);
    const spec = { group: "scan:1", success: [...keys.map((key, i) => ({ op: "put", key, value: `value ${i}` })), { op: "put", key: "multi", value: "a\tb\nc" }] };
    expect((await cli(["txn", JSON.stringify(spec)])).code).toBe(EXIT.ok);
    const [page, all, allJson, pageJson, multi] = await Promise.all([
      cli(["scan", "scan:1", "--prefix", "item/", "--limit", "3"]),
      cli(["scan", "scan:1", "-p", "item/", "-l", "2", "--all"]),
      cli(["scan", "scan:1", "--all", "--limit", "3", "--json", "--encoding", "json"]),
      cli(["scan", "scan:1", "--after", "item/5", "--json"]),
      cli(["scan", "scan:1", "--prefix", "multi"]),
    ]);
    expect(page.code, page.err).toBe(EXIT.ok);
    expect(page.out).toBe("item/0\tvalue 0\nitem/1\tvalue 1\nitem/2\tvalue 2\n");
    expect(page.err).toBe("(more keys follow: --after item/2, or --all)\n");
    expect(all.out.trim().split("\n")).toEqual(keys.map((k, i) => `${k}\tvalue ${i}`));
    expect(all.err).toBe("");
    const items = json(allJson).items as { key: string }[];
    expect(items.map((i) => i.key)).toEqual([...keys, "multi"]);
    expect(json(allJson).next).toBeUndefined();
    expect(json(pageJson)).toMatchObject({ ok: true, items: [{ key: "item/6", value: "value 6", version: expect.any(Number) }, { key: "multi" }] });
    expect(multi.out).toBe('multi\t"a\\tb\\nc"\n');
  });
});

describe("errors and status", () => {
  it("usage errors exit 2; refused requests exit 2; an unreachable NATS or cluster exits 4; all one line", async () => {
    const big = path.join(dir.path, "big.bin");
    await writeFile(big, new Uint8Array(300_000));
    const [missingArg, unknownOpt, badVersion, badTimeout, tooLarge, emptyKey, noNats, noCluster, missingFile] = await Promise.all([
      cli(["get"]),
      cli(["get", "k", "--frobnicate"]),
      cli(["cas", "k", "minus-one", "v"]),
      cli(["get", "k", "--timeout", "soon"]),
      cli(["put", "big", "--file", big]),
      cli(["put", "", "v"]),
      cli(["get", "k", "--servers", "nats://127.0.0.1:1", "--timeout", "1000"], { bare: true }),
      cli(["get", "k", "--servers", c.url, "--cluster", "nobody-here", "--timeout", "3000"], { bare: true }),
      cli(["put", "k", "--file", path.join(dir.path, "no-such-file")]),
    ]);
    expectFailure(missingArg, EXIT.usage, /missing required argument 'key'/);
    expectFailure(unknownOpt, EXIT.usage, /unknown option '--frobnicate'/);
    expectFailure(badVersion, EXIT.usage, /<version> must be a non-negative integer/);
    expectFailure(badTimeout, EXIT.usage, /--timeout must be a non-negative integer/);
    expectFailure(tooLarge, EXIT.usage, /too large: value is 300000 bytes, over valueBytesMax/);
    expectFailure(emptyKey, EXIT.usage, /bad request: key/);
    expectFailure(noNats, EXIT.unavailable, /^paxosstore get: cannot connect to NATS at nats:\/\/127\.0\.0\.1:1/);
    expectFailure(noCluster, EXIT.unavailable, /no node answered on paxosstore\.nobody-here\.api.*is cluster "nobody-here" running/);
    expectFailure(missingFile, EXIT.usage, /cannot read .*no-such-file/);
  });

  it("environment variables reach the cluster without flags", async () => {
    expect((await cli(["put", "env-greeting", "hello"])).code).toBe(EXIT.ok);
    const r = await cli(["get", "env-greeting"], { bare: true, env: { PAXOSSTORE_NATS: c.url, PAXOSSTORE_CLUSTER: c.cluster, PAXOSSTORE_ENCODING: "json" } });
    expect(r.code, r.err).toBe(EXIT.ok);
    expect(r.out).toBe("hello\n");
  });

  it("status lists every member; --node asks one; exit 4 and DOWN when a member does not answer", async () => {
    expect((await cli(["put", "status-greeting", "hello"])).code).toBe(EXIT.ok);
    const [all, one, allJson] = await Promise.all([cli(["status"]), cli(["status", "--node", "n2", "--json"]), cli(["status", "--json"])]);
    expect(all.code, all.err).toBe(EXIT.ok);
    expect(all.out).toMatch(/^cluster cli: 3 members \(n1, n2, n3\)\n/);
    for (const n of c.members) expect(all.out).toMatch(new RegExp(`^${n}  up    v\\d+\\.\\d+\\.\\d+  uptime \\d+`, "m"));
    expect(json(one)).toMatchObject({ ok: true, cluster: "cli", nodes: [{ ok: true, node: "n2", members: c.members }] });
    expect((json(allJson).nodes as unknown[]).length).toBe(3);

    await c.kill9("n3");
    const [down, downJson, node3] = await Promise.all([cli(["status", "--timeout", "1500"]), cli(["status", "--json", "--timeout", "1500"]), cli(["get", "status-greeting", "--node", "n3", "--timeout", "800"])]);
    expect(down.code).toBe(EXIT.unavailable);
    expect(down.out).toMatch(/^n3  DOWN  unavailable: no node answered on paxosstore\.cli\.api\.n3/m);
    expect(down.out).toMatch(/^n1  up/m);
    expect(json(downJson)).toMatchObject({ ok: false, nodes: [{ ok: true }, { ok: true }, { ok: false, node: "n3", error: { code: "unavailable" } }] });
    expectFailure(node3, EXIT.unavailable, /no node answered/);
    // The other two still serve.
    expect((await cli(["get", "status-greeting"])).out).toBe("hello\n");
  });
});
