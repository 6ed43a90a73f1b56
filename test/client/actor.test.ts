// The nact form of the client inside a real nact system, against a real cluster: requests are
// messages with a replyTo and a tag, and the answers come back as messages to that actor.

import { dispatch, spawn, spawnStateless, start, stop, type ActorSystemRef, type Ref } from "nact";
import { afterAll, beforeAll, expect, it } from "vitest";
import { BadRequestError, ConflictError, connect, spawnClientActor, type ClientReply, type ClientRequest } from "../../src/client/index.js";
import { startCluster, type TestCluster } from "../helpers/cluster.js";

let c: TestCluster;
let system: ActorSystemRef;
beforeAll(async () => {
  c = await startCluster({ nodes: 3, cluster: "act" });
  system = start();
});
afterAll(async () => {
  if (system !== undefined) stop(system);
  await c?.close();
});

/** An actor that hands every reply it receives to whoever waits for its tag. */
function inbox(): { ref: Ref<ClientReply<string>>; next(tag: string, timeoutMs?: number): Promise<ClientReply<string>>; all: ClientReply<string>[] } {
  const waiting = new Map<string, (r: ClientReply<string>) => void>();
  const early = new Map<string, ClientReply<string>>();
  const all: ClientReply<string>[] = [];
  const ref = spawnStateless(system, (msg: ClientReply<string>) => {
    all.push(msg);
    const w = waiting.get(msg.tag);
    if (w === undefined) early.set(msg.tag, msg);
    else {
      waiting.delete(msg.tag);
      w(msg);
    }
  });
  return {
    ref,
    all,
    next(tag, timeoutMs = 15_000) {
      const got = early.get(tag);
      if (got !== undefined) {
        early.delete(tag);
        return Promise.resolve(got);
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no reply for ${tag}`)), timeoutMs);
        waiting.set(tag, (r) => {
          clearTimeout(timer);
          resolve(r);
        });
      });
    },
  };
}

it("every op as messages: replies carry the tag, the op and a result or a typed error", async () => {
  const store = spawnClientActor<string>(system, { servers: c.url, cluster: c.cluster, encoding: "msgpack", name: "store" });
  const me = inbox();
  type Ask = ClientRequest<string> extends infer T ? (T extends unknown ? Omit<T, "replyTo"> : never) : never;
  const ask = async (msg: Ask): Promise<ClientReply<string>> => {
    dispatch(store, { ...msg, replyTo: me.ref } as ClientRequest<string>);
    return me.next(msg.tag);
  };

  const put = await ask({ op: "put", key: "greeting", value: "hello", tag: "p1" });
  expect(put).toMatchObject({ tag: "p1", op: "put", ok: true, result: { version: expect.any(Number) } });
  const get = await ask({ op: "get", key: "greeting", tag: "g1" });
  if (!(get.ok && get.op === "get" && get.result.found)) throw new Error(`unexpected ${JSON.stringify(get)}`);
  expect(get.result.text()).toBe("hello");

  const cas = await ask({ op: "cas", key: "greeting", version: 1_000_000, value: "x", tag: "c1" });
  expect(cas.ok).toBe(false);
  if (cas.ok) throw new Error("unreachable");
  expect(cas.error).toBeInstanceOf(ConflictError);
  expect((cas.error as ConflictError).details.current).toBe((put as { result: { version: number } }).result.version);

  const txn = await ask({ op: "txn", group: "actor:g", success: [{ op: "put", key: "a", value: "1" }, { op: "put", key: "b", value: new Uint8Array([2]) }], tag: "t1" });
  expect(txn).toMatchObject({ ok: true, op: "txn", result: { succeeded: true } });
  const scan = await ask({ op: "scan", group: "actor:g", limit: 1, tag: "s1" });
  if (!(scan.ok && scan.op === "scan")) throw new Error(`unexpected ${JSON.stringify(scan)}`);
  expect(scan.result.items.map((i) => i.key)).toEqual(["a"]);
  expect(scan.result.next).toBe("a");
  const inGroup = await ask({ op: "get", group: "actor:g", key: "b", consistency: "stale", tag: "g2" });
  expect(inGroup.ok && inGroup.op === "get" && inGroup.result.value).toEqual(new Uint8Array([2]));
  const del = await ask({ op: "delete", key: "greeting", tag: "d1" });
  expect(del).toMatchObject({ ok: true, result: { existed: true } });
  const status = await ask({ op: "status", node: "n3", tag: "st" });
  expect(status).toMatchObject({ ok: true, op: "status", result: { node: "n3", members: c.members } });

  // Bad requests answer with typed errors; an unknown op too; a message with no replyTo is dropped.
  const bad = await ask({ op: "put", key: "", value: "x", tag: "b1" });
  expect(bad.ok === false && bad.error).toBeInstanceOf(BadRequestError);
  dispatch(store, { op: "nonsense", key: "k", replyTo: me.ref, tag: "b2" } as unknown as ClientRequest<string>);
  const unknown = await me.next("b2");
  expect(unknown).toMatchObject({ ok: false, op: "nonsense", error: { code: "bad_request", details: { field: "op" } } });
  dispatch(store, { op: "get", key: "k", tag: "lost" } as unknown as ClientRequest<string>);
  expect(await ask({ op: "get", key: "greeting", tag: "g3" })).toMatchObject({ ok: true, result: { found: false } });
  stop(store);
});

it("many requests at once: each reply comes back exactly once, to its own tag", async () => {
  const store = spawnClientActor<string>(system, { servers: c.url, cluster: c.cluster, encoding: "json" });
  const me = inbox();
  const n = 300;
  for (let i = 0; i < n; i++) dispatch(store, { op: "put", group: `many-${i % 20}`, key: `k${i}`, value: `v${i}`, replyTo: me.ref, tag: `put-${i}` });
  const puts = await Promise.all(Array.from({ length: n }, (_, i) => me.next(`put-${i}`)));
  expect(puts.every((r) => r.ok)).toBe(true);
  for (let i = 0; i < n; i++) dispatch(store, { op: "get", group: `many-${i % 20}`, key: `k${i}`, replyTo: me.ref, tag: `get-${i}` });
  const gets = await Promise.all(Array.from({ length: n }, (_, i) => me.next(`get-${i}`)));
  gets.forEach((r, i) => {
    if (!(r.ok && r.op === "get" && r.result.found)) throw new Error(`get-${i}: ${JSON.stringify(r)}`);
    expect(r.result.text()).toBe(`v${i}`);
  });
  expect(me.all).toHaveLength(2 * n); // no reply twice, none crossed over
  stop(store);
});

it("an actor that uses the client: it sends with replyTo = itself and handles the answers as messages", async () => {
  const client = await connect({ servers: c.url, cluster: c.cluster });
  // Shared: the actor uses this client and leaves it open when it stops.
  const store = spawnClientActor(system, { client });
  type CounterMsg = { kind: "bump"; done: (n: number) => void } | ClientReply<number>;
  interface CounterState {
    readonly done: Map<number, (n: number) => void>;
    next: number;
  }
  // A counter actor: each bump reads-then-cas'es through the client actor, all by messages.
  const counter = spawn(
    system,
    (state: CounterState, msg: CounterMsg, ctx) => {
      const self = ctx.self as unknown as Ref<ClientReply<number>>;
      if ("kind" in msg) {
        const tag = state.next++;
        state.done.set(tag, msg.done);
        dispatch(store, { op: "get", key: "actor-counter", replyTo: self, tag });
        return state;
      }
      if (!msg.ok) {
        // A cas lost to another bump: read again and retry.
        dispatch(store, { op: "get", key: "actor-counter", replyTo: self, tag: msg.tag });
        return state;
      }
      if (msg.op === "get") {
        const n = msg.result.found ? Number(msg.result.text()) : 0;
        dispatch(store, { op: "cas", key: "actor-counter", version: msg.result.version, value: String(n + 1), replyTo: self, tag: msg.tag });
      } else if (msg.op === "cas") {
        const done = state.done.get(msg.tag);
        state.done.delete(msg.tag);
        done?.(msg.tag);
      }
      return state;
    },
    "counter",
    { initialState: { done: new Map(), next: 0 } },
  );
  const bumps = 10;
  await Promise.all(Array.from({ length: bumps }, () => new Promise<number>((done) => dispatch(counter, { kind: "bump", done }))));
  expect((await client.get("actor-counter")).text()).toBe(String(bumps));
  stop(counter);
  stop(store);
  await new Promise((r) => setTimeout(r, 50));
  expect((await client.get("actor-counter")).found).toBe(true); // the shared client is still open
  await client.close();
});

it("a client actor that cannot connect answers every request with UnavailableError", async () => {
  const store = spawnClientActor<string>(system, { servers: "nats://127.0.0.1:1", timeoutMs: 500 });
  const me = inbox();
  dispatch(store, { op: "get", key: "k", replyTo: me.ref, tag: "x" });
  dispatch(store, { op: "status", replyTo: me.ref, tag: "y" });
  for (const tag of ["x", "y"]) {
    const r = await me.next(tag);
    expect(r).toMatchObject({ tag, ok: false, error: { code: "unavailable" } });
  }
  stop(store);
});
